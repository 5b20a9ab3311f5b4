package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.random.RandomGenerator;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.Autograd;

/**
 * A lookup table of vectors, PyTorch's {@code nn.Embedding(vocabulary, dim)}: {@code weight
 * (vocabulary, dim)} starts standard normal; the forward gathers one row per index and the backward
 * adds the gradients into the rows looked up.
 */
public final class Embedding extends Module implements Layer {
  private final long vocabulary;
  private final long dim;
  private final Arena arena;
  private final Parameter weight;
  private final CallGuard guard = new CallGuard("Embedding", "layer");
  /** Recorded forwards by their indices array, so that an explicit backward claims its one. */
  private final java.util.Map<long[], java.lang.ref.WeakReference<Autograd.Recording>>
      recordings =
      java.util.Collections.synchronizedMap(new java.util.WeakHashMap<>());

  /**
   * {@code nn.Embedding(vocabulary, dim)}: initialised from the next default seed (layers made in
   * the same order get the same values on every run).
   */
  public Embedding(long vocabulary, long dim) {
    this(vocabulary, dim, Seeds.nextDefaultSeed());
  }

  /** A table of {@code vocabulary} vectors of {@code dim} values, initialised from {@code seed}. */
  public Embedding(long vocabulary, long dim, long seed) {
    if (vocabulary < 1 || dim < 1) {
      throw new IllegalArgumentException(
          "vocabulary, dim: expected >= 1, got " + vocabulary + " and " + dim);
    }
    Checks.multiply(Checks.multiply(vocabulary, dim, "vocabulary, dim",
        "weight (" + vocabulary + ", " + dim + ")"), Float.BYTES, "vocabulary, dim",
        "weight (" + vocabulary + ", " + dim + ")");
    this.vocabulary = vocabulary;
    this.dim = dim;
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation (the gradient's) frees the table
      Tensor data = Tensor.zeros(arena, vocabulary, dim);
      RandomGenerator random = Seeds.generator(seed);
      for (long i = 0; i < data.size(); i++) {
        data.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i,
            (float) random.nextGaussian());
      }
      this.weight = new Parameter("weight", data, Tensor.zeros(arena, vocabulary, dim));
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
    registerParameter(weight);
    reclaimWhenUnreachable(arena);
  }

  /** The table. */
  public Parameter weight() {
    return weight;
  }

  /**
   * The vectors of {@code indices}, a tensor of integral values in {@code [0, vocabulary)} (exact
   * up to 2^24), arranged as {@code (indices.shape..., dim)} in its arena: the form {@link
   * Sequential} chains.
   */
  @Override
  public Tensor forward(Tensor indices) {
    Arena arena = arenaOf(indices, "indices");
    Checks.usable(indices.segment(), "indices");
    float[] values = indices.toArray();
    long[] rows = new long[values.length];
    for (int i = 0; i < values.length; i++) {
      float v = values[i];
      if (v != Math.rint(v)) {
        throw new IllegalArgumentException(
            "indices[" + i + "]: expected an integral value, got " + v);
      }
      rows[i] = (long) v;
    }
    return forward(arena, rows, indices.shape().dims());
  }

  /**
   * The vectors of {@code indices}, arranged as {@code (shape..., dim)}.
   *
   * @param indices each in {@code [0, vocabulary)}
   * @param shape the layout of the indices (their product is {@code indices.length})
   */
  public Tensor forward(Arena arena, long[] indices, long... shape) {
    guard.enter();
    try {
      return forwardUnguarded(arena, indices, shape);
    } finally {
      guard.exit();
    }
  }

  private Tensor forwardUnguarded(Arena arena, long[] indices, long... shape) {
    check(indices, shape);
    long[] dims = java.util.Arrays.copyOf(shape, shape.length + 1);
    dims[shape.length] = dim;
    Tensor out = Tensor.uninitialized(arena, dims);
    NativeBindings.embeddingForward(out.segment(), weight.data().segment(), indices, vocabulary,
        dim);
    long[] saved = indices.clone();
    Autograd.Recording recording = Autograd.recordConsumable("Embedding.forward", List.of(weight.data()), List.of(out), List.of(),
        (scratch, gradients) -> {
          if (gradients[0] != null && weight.requiresGrad()) {
            backward(saved, gradients[0]);
          }
          return new Tensor[] {null};
        });
    if (recording != null) {
      recordings.put(indices, new java.lang.ref.WeakReference<>(recording));
    }
    return out;
  }

  /** Adds {@code gradOutput (shape..., dim)} into the rows of {@code indices}. */
  public void backward(long[] indices, Tensor gradOutput) {
    guard.enter();
    try {
      backwardUnguarded(indices, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private void backwardUnguarded(long[] indices, Tensor gradOutput) {
    var held = indices == null ? null : recordings.remove(indices);
    Autograd.Recording recording = held == null ? null : held.get();
    if (recording != null) {
      recording.consumeExplicitly("Embedding.backward");
    }
    if (indices == null) {
      throw new NullPointerException("indices");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    long rows;
    try {
      rows = Math.multiplyExact(indices.length, dim);
    } catch (ArithmeticException overflow) {
      throw new IllegalArgumentException("indices: " + indices.length + " rows of " + dim
          + " overflow a long", overflow);
    }
    if (gradOutput.shape().rank() < 1 || gradOutput.size() != rows
        || gradOutput.dim(-1) != dim) {
      throw new IllegalArgumentException("gradOutput: expected " + indices.length + " rows of "
          + dim + ", got shape " + gradOutput.shape());
    }
    checkIndices(indices);
    Checks.usable(gradOutput.segment(), "gradOutput");
    NativeBindings.embeddingBackward(weight.grad().segment(), gradOutput.segment(), indices,
        vocabulary, dim);
  }

  private void check(long[] indices, long[] shape) {
    if (indices == null) {
      throw new NullPointerException("indices");
    }
    if (shape == null) {
      throw new NullPointerException("shape");
    }
    if (Shape.of(shape).size() != indices.length) {
      throw new IllegalArgumentException("shape: " + Shape.of(shape) + " holds "
          + Shape.of(shape).size() + " indices, got " + indices.length);
    }
    checkIndices(indices);
  }

  private void checkIndices(long[] indices) {
    for (int i = 0; i < indices.length; i++) {
      if (indices[i] < 0 || indices[i] >= vocabulary) {
        throw new IllegalArgumentException("indices[" + i + "]: expected 0 <= index < "
            + vocabulary + ", got " + indices[i]);
      }
    }
  }

  /**
   * Frees the table, after waiting for the calls in flight on other threads; calls that
   * start later throw {@link IllegalStateException}.
   */
  @Override
  protected void closeResources() {
    guard.close(arena::close);
  }

  /**
   * The sinusoidal positional encoding of "Attention Is All You Need": a {@code (length, dim)}
   * table with {@code pe[p, 2i] = sin(p / 10000^(2i/dim))} and {@code pe[p, 2i+1] = cos(...)}. Add it
   * to the embeddings; it has no parameters, and the gradient of {@code x + pe} with respect to
   * {@code x} is the output's gradient unchanged.
   */
  public static Tensor sinusoidalPositions(Arena arena, long length, long dim) {
    if (length < 1 || dim < 1) {
      throw new IllegalArgumentException(
          "length, dim: expected >= 1, got " + length + " and " + dim);
    }
    Tensor table = Tensor.zeros(arena, length, dim);
    for (long p = 0; p < length; p++) {
      for (long i = 0; i < dim; i++) {
        double angle = p / Math.pow(10000, (double) (i / 2 * 2) / dim);
        table.set((float) (i % 2 == 0 ? Math.sin(angle) : Math.cos(angle)), p, i);
      }
    }
    return table;
  }
}
