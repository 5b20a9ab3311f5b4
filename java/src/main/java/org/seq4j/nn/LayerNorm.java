package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.Autograd;

/**
 * Layer normalisation over the last dimension, PyTorch's {@code nn.LayerNorm(size)}: {@code y =
 * (x − mean) / √(var + eps) · weight + bias}, with {@code weight} starting at ones and {@code bias}
 * at zeros. The forward keeps each row's mean and reciprocal standard deviation for the backward.
 */
public final class LayerNorm extends Module implements Layer {
  private final long size;
  private final float eps;
  private final Arena arena;
  private final Parameter weight;
  private final Parameter bias;
  private final CallGuard guard = new CallGuard("LayerNorm", "layer");

  /** What a forward keeps for its backward. */
  public static final class Context {
    private final LayerNorm owner;
    private final Tensor input;
    private final Tensor mean;
    private final Tensor rstd;
    private volatile Autograd.Recording recording;

    private Context(LayerNorm owner, Tensor input, Tensor mean, Tensor rstd) {
      this.owner = owner;
      this.input = input;
      this.mean = mean;
      this.rstd = rstd;
    }
  }

  /** The output and the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /** A layer norm over {@code size} features with learnable weight and bias (eps 1e-5). */
  public LayerNorm(long size) {
    this(size, 1e-5f, true);
  }

  /** A layer norm over {@code size} features; without {@code affine}, no parameters. */
  public LayerNorm(long size, float eps, boolean affine) {
    if (size < 1) {
      throw new IllegalArgumentException("size: expected >= 1, got " + size);
    }
    if (!(eps > 0)) {
      throw new IllegalArgumentException("eps: expected > 0, got " + eps);
    }
    // checked here, so that an overflow names size rather than the factory's "shape"
    org.seq4j.internal.Checks.multiply(size, Float.BYTES, "size", "weight (" + size + ")");
    this.size = size;
    this.eps = eps;
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation frees the ones before it
      this.weight = affine ? new Parameter("weight", Tensor.ones(arena, size),
          Tensor.zeros(arena, size)) : null;
      this.bias = affine ? new Parameter("bias", Tensor.zeros(arena, size),
          Tensor.zeros(arena, size)) : null;
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
    if (weight != null) {
      registerParameter(weight);
      registerParameter(bias);
    }
    reclaimWhenUnreachable(arena);
  }

  /** Normalises {@code x (..., size)}; the result lives in x's arena. */
  @Override
  public Tensor forward(Tensor x) {
    return forward(arenaOf(x, "x"), x).output();
  }

  /** Normalises {@code x (..., size)}; the result lives in {@code arena}. */
  public Result forward(Arena arena, Tensor x) {
    guard.enter();
    try {
      return forwardUnguarded(arena, x);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor x) {
    long rows = rows(x, "x");
    Checks.usable(x.segment(), "x");
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    Tensor mean = Tensor.uninitialized(arena, rows);
    Tensor rstd = Tensor.uninitialized(arena, rows);
    NativeBindings.layerNormForward(out.segment(), mean.segment(), rstd.segment(), x.segment(),
        segment(weight, false), segment(bias, false), rows, size, eps);
    Context context = new Context(this, x, mean, rstd);
    java.util.List<Tensor> inputs = new java.util.ArrayList<>(java.util.Arrays.asList(
        x, weight == null ? null : weight.data(), bias == null ? null : bias.data()));
    context.recording = Autograd.recordConsumable("LayerNorm.forward", inputs, List.of(out),
        weight == null ? List.of(x) : List.of(x, weight.data()),
        (scratch, gradients) -> new Tensor[] {
            gradients[0] == null ? null : backwardFromGraph(scratch, context, gradients[0]),
            null, null});
    return new Result(out, context);
  }

  private Tensor backwardFromGraph(Arena scratch, Context context, Tensor gradOutput) {
    guard.enter();
    try {
      return backwardUnguarded(scratch, context, gradOutput);
    } finally {
      guard.exit();
    }
  }

  /** The gradient of the input; adds into the weight's and bias's gradients. */
  public Tensor backward(Arena arena, Context context, Tensor gradOutput) {
    guard.enter();
    try {
      Autograd.Recording recording = context == null ? null : context.recording;
      if (recording != null && context.owner == this) {
        recording.consumeExplicitly("LayerNorm.backward");
      }
      return backwardUnguarded(arena, context, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private Tensor backwardUnguarded(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another LayerNorm; pass the"
          + " context of this layer's forward");
    }
    if (!context.input.isUsable()) {
      throw new IllegalStateException("context: the arena of its forward pass is closed (or owned"
          + " by another thread)");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (!gradOutput.shape().equals(context.input.shape())) {
      throw new IllegalArgumentException("gradOutput: expected shape " + context.input.shape()
          + " (the input's), got " + gradOutput.shape());
    }
    Checks.usable(gradOutput.segment(), "gradOutput");
    Checks.usable(context.input.segment(), "context");
    long rows = rows(context.input, "context");
    Tensor dx = Tensor.uninitialized(arena, context.input.shape().dims());
    NativeBindings.layerNormBackward(dx.segment(), segment(weight, true), segment(bias, true),
        gradOutput.segment(), context.input.segment(), context.mean.segment(),
        context.rstd.segment(), segment(weight, false), rows, size);
    return dx;
  }

  private long rows(Tensor x, String name) {
    if (x == null) {
      throw new NullPointerException(name);
    }
    if (x.shape().rank() < 1 || x.dim(-1) != size) {
      throw new IllegalArgumentException(
          name + ": expected shape (..., " + size + "), got " + x.shape());
    }
    return x.size() / size;
  }

  private static MemorySegment segment(Parameter p, boolean gradient) {
    return p == null ? MemorySegment.NULL : gradient ? p.grad().segment() : p.data().segment();
  }

  /**
   * Frees the parameters, after waiting for the calls in flight on other threads; calls that
   * start later throw {@link IllegalStateException}.
   */
  @Override
  protected void closeResources() {
    guard.close(arena::close);
  }
}
