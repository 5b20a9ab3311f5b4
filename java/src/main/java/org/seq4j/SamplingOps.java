package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;
import org.seq4j.internal.NativeBindings;

/**
 * Selection and sampling: argmax, top-k, multinomial sampling (no gradient: their indices are
 * not differentiable; top-k's values are, through a gather) and dropout (with gradient).
 *
 * <p>Indices come back as float tensors of integral values, so that they keep the shape PyTorch
 * gives them and feed {@link Tensor#gather(int, Tensor)} directly; a float holds every index
 * below 2^24 exactly, and a dimension longer than that is refused.
 */
final class SamplingOps {
  private SamplingOps() {}

  /** The seeded generator multinomial uses for a seed: the same as Tensor's random tensors. */
  static RandomGenerator generator(long seed) {
    return RandomGeneratorFactory.of("L64X128MixRandom").create(seed);
  }

  private static void requireExactIndices(long length, int d, Tensor x) {
    if (length > IndexOps.FLOAT_EXACT) {
      throw new IllegalArgumentException("dim: dimension " + d + " of shape " + x.shape()
          + " is longer than 2^24, beyond the indices a float holds exactly");
    }
  }

  // ---- argmax

  /**
   * torch.argmax(dim, keepdim): the index of the first largest value along dim (NaN counts as
   * larger than every number, as in PyTorch).
   */
  static Tensor argmax(Tensor x, int dim, boolean keepDim) {
    ShapeOps.usable(x, "tensor");
    Arena arena = ShapeOps.arenaOf(x, "tensor");
    long[] dims = x.shape().dims();
    if (dims.length == 0) {
      ShapeOps.resolveDim(dim, 1, "dim");
      return Tensor.zeros(arena);
    }
    int d = ShapeOps.resolveDim(dim, dims.length, "dim");
    long length = dims[d];
    if (length == 0) {
      throw new IllegalArgumentException("tensor: argmax along dimension " + d + " of size 0 of"
          + " shape " + x.shape() + " has no answer");
    }
    requireExactIndices(length, d, x);
    long outer = ShapeOps.product(dims, 0, d);
    long inner = ShapeOps.product(dims, d + 1, dims.length);
    long[] outDims = keepDim ? dims.clone() : new long[dims.length - 1];
    if (keepDim) {
      outDims[d] = 1;
    } else {
      System.arraycopy(dims, 0, outDims, 0, d);
      System.arraycopy(dims, d + 1, outDims, d, dims.length - d - 1);
    }
    Tensor out = Tensor.uninitialized(arena, outDims);
    MemorySegment s = x.segment();
    for (long o = 0; o < outer; o++) {
      for (long i = 0; i < inner; i++) {
        long base = o * length * inner + i;
        long best = 0;
        float max = s.getAtIndex(JAVA_FLOAT, base);
        for (long j = 1; j < length && !Float.isNaN(max); j++) {
          float v = s.getAtIndex(JAVA_FLOAT, base + j * inner);
          if (v > max || Float.isNaN(v)) {
            max = v;
            best = j;
          }
        }
        out.segment().setAtIndex(JAVA_FLOAT, o * inner + i, best);
      }
    }
    return out;
  }

  // ---- top-k

  /** torch.topk(k, dim) with largest and sorted: descending values, ties by the lower index. */
  static Tensor.TopK topk(Tensor x, int k, int dim) {
    ShapeOps.usable(x, "tensor");
    Arena arena = ShapeOps.arenaOf(x, "tensor");
    long[] dims = x.shape().dims();
    if (dims.length == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) has no dimension for topk");
    }
    int d = ShapeOps.resolveDim(dim, dims.length, "dim");
    long length = dims[d];
    if (k < 0 || k > length) {
      throw new IllegalArgumentException("k: expected 0 <= k <= " + length + " (dimension " + d
          + " of shape " + x.shape() + "), got " + k);
    }
    requireExactIndices(length, d, x);
    long outer = ShapeOps.product(dims, 0, d);
    long inner = ShapeOps.product(dims, d + 1, dims.length);
    long[] outDims = dims.clone();
    outDims[d] = k;
    long count = Shape.of(outDims).size();
    if (count > Integer.MAX_VALUE - 8 || length > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("k: " + count + " results do not fit in a Java array");
    }
    long[] index = new long[(int) count];
    MemorySegment s = x.segment();
    Integer[] order = new Integer[(int) length];
    float[] row = new float[(int) length];
    for (long o = 0; o < outer; o++) {
      for (long i = 0; i < inner; i++) {
        long base = o * length * inner + i;
        for (int j = 0; j < length; j++) {
          row[j] = s.getAtIndex(JAVA_FLOAT, base + j * inner);
          order[j] = j;
        }
        // stable sort, descending, NaN first (largest, as in PyTorch)
        java.util.Arrays.sort(order, (p, q) -> Float.compare(row[q], row[p]));
        for (int j = 0; j < k; j++) {
          index[(int) ((o * k + j) * inner + i)] = order[j];
        }
      }
    }
    Tensor values = IndexOps.gather(x, d, index, outDims); // records the values' gradient
    return new Tensor.TopK(values, IndexOps.floatIndices(arena, index, outDims));
  }

  // ---- multinomial

  /**
   * torch.multinomial over the last dimension of (C) or (N, C) non-negative weights (which need
   * not sum to 1): numSamples class indices per row, drawn with or without replacement.
   */
  static Tensor multinomial(Tensor probs, int numSamples, boolean replacement,
      RandomGenerator random) {
    ShapeOps.usable(probs, "probs");
    if (random == null) {
      throw new NullPointerException("random");
    }
    Arena arena = ShapeOps.arenaOf(probs, "probs");
    long[] dims = probs.shape().dims();
    if (dims.length != 1 && dims.length != 2) {
      throw new IllegalArgumentException("probs: expected shape (C) or (N, C), got "
          + probs.shape());
    }
    long rows = dims.length == 1 ? 1 : dims[0];
    long classes = dims[dims.length - 1];
    if (classes > IndexOps.FLOAT_EXACT) {
      throw new IllegalArgumentException("probs: " + classes + " classes exceed 2^24, beyond the"
          + " indices a float holds exactly");
    }
    if (numSamples < 0) {
      throw new IllegalArgumentException("numSamples: expected >= 0, got " + numSamples);
    }
    if (!replacement && numSamples > classes) {
      throw new IllegalArgumentException("numSamples: expected at most " + classes + " (the"
          + " number of classes) without replacement, got " + numSamples);
    }
    long[] outDims = dims.length == 1 ? new long[] {numSamples} : new long[] {rows, numSamples};
    Tensor out = Tensor.uninitialized(arena, outDims);
    MemorySegment s = probs.segment();
    double[] weights = new double[(int) classes];
    double[] cumulative = new double[(int) classes];
    for (long r = 0; r < rows; r++) {
      int positive = 0;
      for (int c = 0; c < classes; c++) {
        float w = s.getAtIndex(JAVA_FLOAT, r * classes + c);
        if (!(w >= 0) || Float.isInfinite(w)) {
          throw new IllegalArgumentException("probs: expected finite non-negative weights, got "
              + w + " at " + (dims.length == 1 ? "[" + c + "]" : "[" + r + ", " + c + "]"));
        }
        weights[c] = w;
        positive += w > 0 ? 1 : 0;
      }
      if (positive == 0 && (numSamples > 0 || classes == 0)) {
        throw new IllegalArgumentException("probs: row " + r + " sums to 0; every row needs a"
            + " positive weight to sample from");
      }
      if (!replacement && numSamples > positive) {
        throw new IllegalArgumentException("numSamples: row " + r + " has only " + positive
            + " classes of positive weight, fewer than the " + numSamples + " samples asked"
            + " for without replacement");
      }
      for (int sample = 0; sample < numSamples; sample++) {
        double total = 0;
        for (int c = 0; c < classes; c++) {
          total += weights[c];
          cumulative[c] = total;
        }
        double u = random.nextDouble() * total;
        int drawn = firstAbove(cumulative, u);
        out.segment().setAtIndex(JAVA_FLOAT, r * numSamples + sample, drawn);
        if (!replacement) {
          weights[drawn] = 0;
        }
      }
    }
    return out;
  }

  /**
   * The first class whose cumulative weight exceeds u: a class of weight 0 never is, since its
   * cumulative weight equals its predecessor's. u < the total, so one always does, but rounding
   * of u * total may reach it: then the last positive class.
   */
  private static int firstAbove(double[] cumulative, double u) {
    int low = 0;
    int high = cumulative.length - 1;
    if (!(cumulative[high] > u)) {
      while (high > 0 && cumulative[high - 1] == cumulative[high]) {
        high--;
      }
      return high;
    }
    while (low < high) {
      int mid = (low + high) >>> 1;
      if (cumulative[mid] > u) {
        high = mid;
      } else {
        low = mid + 1;
      }
    }
    return low;
  }

  // ---- dropout

  /**
   * Inverted dropout: each element kept with probability 1 - p and scaled by 1 / (1 - p), the
   * mask a function of (seed, position); x itself when not training or p = 0, zeros when p = 1.
   * Its backward applies the same mask (the same seed) to the gradient.
   */
  static Tensor dropout(Tensor x, float p, boolean training, long seed) {
    ShapeOps.usable(x, "tensor");
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException("p: expected a probability in [0, 1], got " + p);
    }
    if (!training || p == 0) {
      return x;
    }
    Arena arena = ShapeOps.arenaOf(x, "tensor");
    Tensor out = apply(arena, x, p, seed);
    Autograd.record("Tensor.dropout", List.of(x), List.of(out), List.of(),
        (scratch, g) -> new Tensor[] {g[0] == null ? null : apply(scratch, g[0], p, seed)});
    return out;
  }

  private static Tensor apply(Arena arena, Tensor x, float p, long seed) {
    if (p == 1) {
      return Tensor.zeros(arena, x.shape().dims());
    }
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.dropout(out.segment(), x.segment(), x.size(), p, seed);
    return out;
  }
}
