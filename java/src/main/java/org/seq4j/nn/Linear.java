package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.random.RandomGenerator;
import org.seq4j.MatmulOptions;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.Autograd;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.NativeBindings;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;

/**
 * A fully connected layer, PyTorch's {@code nn.Linear}: {@code y = x·Wᵀ + b} over the last
 * dimension, with {@code weight (out, in)} and {@code bias (out)} initialised uniform in
 * ±1/√in. Every leading dimension is a row: {@code (..., in) -> (..., out)}.
 *
 * <p>Its backward needs only the forward's input: {@code backward(arena, input, gradOutput)}
 * returns the gradient of the input and adds into the parameters' gradients. Inference calls may
 * run concurrently; backward calls of one layer may not. While gradients are recorded (see {@link
 * Autograd}) every forward is recorded, and an explicit {@code backward} of a recorded forward's
 * input counts as its one backward.
 */
public final class Linear extends Module implements Layer {
  private final long inputSize;
  private final long outputSize;
  private final Arena arena;
  private final Parameter weight;
  private final Parameter bias;
  private final CallGuard guard = new CallGuard("Linear", "layer");
  /** Recorded forwards by input, so that an explicit backward of one claims its backward. */
  private final java.util.Map<Tensor, java.lang.ref.WeakReference<Autograd.Recording>>
      recordings =
      java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

  /**
   * {@code nn.Linear(inputSize, outputSize)}: with bias, initialised from the next default seed
   * (layers made in the same order get the same values on every run).
   */
  public Linear(long inputSize, long outputSize) {
    this(inputSize, outputSize, true, Seeds.nextDefaultSeed());
  }

  /** A layer with or without bias and PyTorch's default initialisation from {@code seed}. */
  public Linear(long inputSize, long outputSize, boolean bias, long seed) {
    if (inputSize < 1 || outputSize < 1) {
      throw new IllegalArgumentException("inputSize, outputSize: expected >= 1, got " + inputSize
          + " and " + outputSize);
    }
    Checks.multiply(Checks.multiply(outputSize, inputSize, "inputSize, outputSize",
        "weight (" + outputSize + ", " + inputSize + ")"), Float.BYTES, "inputSize, outputSize",
        "weight (" + outputSize + ", " + inputSize + ")");
    this.inputSize = inputSize;
    this.outputSize = outputSize;
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation frees the ones before it
      RandomGenerator random = Seeds.generator(seed);
      double bound = 1 / Math.sqrt(inputSize);
      this.weight = new Parameter("weight", uniform(random, bound, outputSize, inputSize),
          Tensor.zeros(arena, outputSize, inputSize));
      this.bias = bias ? new Parameter("bias", uniform(random, bound, outputSize),
          Tensor.zeros(arena, outputSize)) : null;
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
    registerParameter(weight);
    if (this.bias != null) {
      registerParameter(this.bias);
    }
    reclaimWhenUnreachable(arena);
  }

  private Tensor uniform(RandomGenerator random, double bound, long... dims) {
    Tensor t = Tensor.zeros(arena, dims);
    for (long i = 0; i < t.size(); i++) {
      t.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i,
          (float) ((random.nextDouble() * 2 - 1) * bound));
    }
    return t;
  }

  /** The weight {@code (out, in)}. */
  public Parameter weight() {
    return weight;
  }

  /** The bias {@code (out)}, or null. */
  public Parameter bias() {
    return bias;
  }

  /** {@code x·Wᵀ + b} for {@code x (..., in)}; the result {@code (..., out)} in x's arena. */
  @Override
  public Tensor forward(Tensor input) {
    return forward(arenaOf(input, "input"), input);
  }

  /** {@code x·Wᵀ + b} for {@code x (..., in)}; the result {@code (..., out)} lives in arena. */
  public Tensor forward(Arena arena, Tensor input) {
    guard.enter();
    try {
      return forwardUnguarded(arena, input);
    } finally {
      guard.exit();
    }
  }

  private Tensor forwardUnguarded(Arena arena, Tensor input) {
    long rows = rows(input, "input", inputSize);
    long[] dims = input.shape().dims();
    dims[dims.length - 1] = outputSize;
    Tensor output = Tensor.uninitialized(arena, dims);
    Checks.usable(input.segment(), "input");
    // one native product that adds the bias in its epilogue: no pass over the output of its own
    NativeBindings.linear(output.segment(), input.segment(), weight.data().segment(),
        bias == null ? MemorySegment.NULL : bias.data().segment(), rows, inputSize, outputSize,
        AbiConstants.BACKEND_AUTO);
    output.markChanged();
    java.util.List<Tensor> inputs = new java.util.ArrayList<>(java.util.Arrays.asList(
        input, weight.data(), bias == null ? null : bias.data()));
    Autograd.Recording recording = Autograd.recordConsumable("Linear.forward", inputs,
        List.of(output), List.of(input, weight.data()),
        (scratch, gradients) -> new Tensor[] {
            gradients[0] == null ? null : backwardFromGraph(scratch, input, gradients[0]),
            null, null});
    if (recording != null) {
      recordings.put(input, new java.lang.ref.WeakReference<>(recording));
    }
    return output;
  }

  private Tensor backwardFromGraph(Arena scratch, Tensor input, Tensor gradOutput) {
    guard.enter();
    try {
      return backwardUnguarded(scratch, input, gradOutput);
    } finally {
      guard.exit();
    }
  }

  /**
   * The gradient of the input for {@code gradOutput (..., out)}, given the forward's input; adds
   * {@code gradOutputᵀ·input} into the weight's gradient and the row sums into the bias's.
   */
  public Tensor backward(Arena arena, Tensor input, Tensor gradOutput) {
    guard.enter();
    try {
      var held = input == null ? null : recordings.remove(input);
      Autograd.Recording recording = held == null ? null : held.get();
      if (recording != null) {
        recording.consumeExplicitly("Linear.backward");
      }
      return backwardUnguarded(arena, input, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private Tensor backwardUnguarded(Arena arena, Tensor input, Tensor gradOutput) {
    long rows = rows(input, "input", inputSize);
    long gradRows = rows(gradOutput, "gradOutput", outputSize);
    if (gradRows != rows) {
      throw new IllegalArgumentException("gradOutput: expected " + rows + " rows (as input "
          + input.shape() + "), got shape " + gradOutput.shape());
    }
    Tensor gradInput = Tensor.uninitialized(arena, input.shape().dims());
    try (Autograd.Scope off = Autograd.noGrad()) {
      Tensor dy = gradOutput.reshape(rows, outputSize);
      Tensor x = input.reshape(rows, inputSize);
      TensorOps.matmul(dy, weight.data(), gradInput.reshape(rows, inputSize));
      if (weight.requiresGrad()) {
        TensorOps.matmul(dy, x, weight.grad(),
            MatmulOptions.DEFAULT.transposeA(true).accumulate());
      }
      if (bias != null && bias.requiresGrad()) {
        NativeBindings.addColumnSums(bias.grad().segment(), dy.segment(), rows, outputSize);
        bias.grad().markChanged();
      }
    }
    return gradInput;
  }

  private long rows(Tensor t, String name, long features) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (t.shape().rank() < 1 || t.dim(-1) != features) {
      throw new IllegalArgumentException(
          name + ": expected shape (..., " + features + "), got " + t.shape());
    }
    Checks.usable(t.segment(), name);
    return t.size() / features;
  }

  /** Sets the gradients to zero. */
  @Override
  public void zeroGrad() {
    guard.enter();
    try {
      super.zeroGrad();
    } finally {
      guard.exit();
    }
  }

  /**
   * Frees the parameters, after waiting for the calls in flight on other threads; calls that
   * start later throw {@link IllegalStateException}.
   */
  @Override
  protected void closeResources() {
    guard.close(arena::close);
  }

  @Override
  public String toString() {
    return "Linear(" + inputSize + ", " + outputSize + (bias == null ? ", bias=false" : "") + ")";
  }
}
