package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Reductions (sum, mean, max) and softmax / log-softmax over a dimension, forward and backward
 * side by side. Dims follow PyTorch: negative dims count from the end, and a scalar (rank 0)
 * accepts dim 0 or -1 as if it were of shape (1). Sums accumulate in float64.
 *
 * <p>A dimension-wise op views its input as {@code (outer, n, inner)} with {@code n} the size of
 * the dimension: element {@code (o, j, i)} sits at {@code (o · n + j) · inner + i}.
 */
final class ReductionOps {
  private ReductionOps() {}

  /** {@code dim} resolved against {@code rank} (a scalar's rank counts as 1). */
  static int resolveDim(int dim, int rank, Shape shape) {
    int r = Math.max(rank, 1);
    if (dim < -r || dim >= r) {
      throw new IndexOutOfBoundsException("dim: expected -" + r + " <= dim < " + r + " for shape "
          + shape + ", got " + dim);
    }
    return dim < 0 ? dim + r : dim;
  }

  /** The dims as a mask over the input's (rank ≥ 1) dimensions; an empty list means all. */
  private static boolean[] reducedMask(int[] dims, Shape shape) {
    int r = Math.max(shape.rank(), 1);
    boolean[] mask = new boolean[r];
    if (dims.length == 0) {
      java.util.Arrays.fill(mask, true);
      return mask;
    }
    for (int dim : dims) {
      int d = resolveDim(dim, shape.rank(), shape);
      if (mask[d]) {
        throw new IllegalArgumentException("dim: dimension " + d + " appears more than once in "
            + java.util.Arrays.toString(dims));
      }
      mask[d] = true;
    }
    return mask;
  }

  private static long[] dimsOf(Shape shape) {
    return shape.rank() == 0 ? new long[] {1} : shape.dims();
  }

  /** The shape with the masked dims set to 1 (keepDim), or removed. */
  private static long[] reducedDims(Shape shape, boolean[] mask, boolean keepDim) {
    long[] dims = dimsOf(shape);
    int kept = 0;
    for (boolean m : mask) {
      kept += m ? 0 : 1;
    }
    long[] out = new long[keepDim ? dims.length : kept];
    for (int i = 0, k = 0; i < dims.length; i++) {
      if (keepDim) {
        out[i] = mask[i] ? 1 : dims[i];
      } else if (!mask[i]) {
        out[k++] = dims[i];
      }
    }
    if (shape.rank() == 0 && keepDim) {
      return new long[0]; // a scalar stays a scalar, as in PyTorch
    }
    return out;
  }

  // ---- sum, mean

  static Tensor sum(Tensor x) {
    return sum(x, new int[0], false, false, "Tensor.sum");
  }

  static Tensor sum(Tensor x, int[] dims, boolean keepDim) {
    return sum(x, requireDims(dims), keepDim, false, "Tensor.sum");
  }

  static Tensor mean(Tensor x) {
    return sum(x, new int[0], false, true, "Tensor.mean");
  }

  static Tensor mean(Tensor x, int[] dims, boolean keepDim) {
    return sum(x, requireDims(dims), keepDim, true, "Tensor.mean");
  }

  private static int[] requireDims(int[] dims) {
    if (dims == null) {
      throw new NullPointerException("dim");
    }
    return dims;
  }

  private static Tensor sum(Tensor x, int[] dims, boolean keepDim, boolean mean, String name) {
    Arena arena = ElementwiseOps.arenaOf(x);
    Shape shape = x.shape();
    boolean[] mask = reducedMask(dims, shape);
    long[] keptShape = reducedDims(shape, mask, true);
    long[] outDims = reducedDims(shape, mask, false);
    long[] xDims = shape.dims();
    long count = Shape.of(keptShape).size() == 0 ? 0 : x.size() / Shape.of(keptShape).size();
    Tensor out = Tensor.uninitialized(arena, keepDim ? keptShape : outDims);
    ElementwiseOps.sumInto(x, keptShape, out.segment());
    if (mean) {
      // 0/0 = NaN for a mean over nothing, as PyTorch's
      MemorySegment s = out.segment();
      for (long i = 0; i < out.size(); i++) {
        s.setAtIndex(JAVA_FLOAT, i, (float) ((double) s.getAtIndex(JAVA_FLOAT, i) / count));
      }
    }
    Autograd.record(name, List.of(x), List.of(out), List.of(), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[] {null};
      }
      Tensor grad = g[0].view(keptShape);
      if (mean) {
        grad = ElementwiseOps.compute(scratch, ElementwiseOps.MUL, grad,
            Tensor.full(scratch, (float) (1.0 / count)));
      }
      Tensor dx = ElementwiseOps.expand(scratch, grad, xDims);
      return new Tensor[] {dx};
    });
    return out;
  }

  // ---- max

  static Tensor.MaxResult max(Tensor x, int dim, boolean keepDim) {
    Arena arena = ElementwiseOps.arenaOf(x);
    Shape shape = x.shape();
    int d = resolveDim(dim, shape.rank(), shape);
    long[] dims = dimsOf(shape);
    long n = dims[d];
    if (n == 0) {
      throw new IllegalArgumentException("dim: max over dimension " + d + " of shape " + shape
          + ", which has size 0 (a maximum needs at least one element)");
    }
    long outer = product(dims, 0, d);
    long inner = product(dims, d + 1, dims.length);
    boolean[] mask = new boolean[dims.length];
    mask[d] = true;
    Tensor values = Tensor.uninitialized(arena, reducedDims(shape, mask, keepDim));
    long count = outer * inner;
    if (count > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("tensor: " + count + " maxima do not fit in a long[]");
    }
    long[] indices = new long[(int) count];
    MemorySegment xs = x.segment();
    MemorySegment vs = values.segment();
    for (long o = 0; o < outer; o++) {
      for (long i = 0; i < inner; i++) {
        long base = o * n * inner + i;
        float best = xs.getAtIndex(JAVA_FLOAT, base);
        long at = 0;
        for (long j = 1; j < n && !Float.isNaN(best); j++) {
          float v = xs.getAtIndex(JAVA_FLOAT, base + j * inner);
          // the first maximum on ties; a NaN wins and stops the search, as in PyTorch
          if (v > best || Float.isNaN(v)) {
            best = v;
            at = j;
          }
        }
        vs.setAtIndex(JAVA_FLOAT, o * inner + i, best);
        indices[(int) (o * inner + i)] = at;
      }
    }
    long[] xDims = shape.dims();
    Autograd.record("Tensor.max", List.of(x), List.of(values), List.of(), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[] {null};
      }
      Tensor dx = Tensor.zeros(scratch, xDims);
      MemorySegment gs = g[0].segment();
      MemorySegment ds = dx.segment();
      for (long o = 0; o < outer; o++) {
        for (long i = 0; i < inner; i++) {
          long k = o * inner + i;
          ds.setAtIndex(JAVA_FLOAT, o * n * inner + indices[(int) k] * inner + i,
              gs.getAtIndex(JAVA_FLOAT, k));
        }
      }
      return new Tensor[] {dx};
    });
    return new Tensor.MaxResult(values, indices.clone());
  }

  /** The maximum of every element, a scalar; its gradient is shared evenly among ties. */
  static Tensor max(Tensor x) {
    Arena arena = ElementwiseOps.arenaOf(x);
    if (x.size() == 0) {
      throw new IllegalArgumentException("tensor: max() of shape " + x.shape() + ", which has"
          + " no elements (a maximum needs at least one)");
    }
    MemorySegment xs = x.segment();
    float best = xs.getAtIndex(JAVA_FLOAT, 0);
    for (long j = 1, n = x.size(); j < n && !Float.isNaN(best); j++) {
      float v = xs.getAtIndex(JAVA_FLOAT, j);
      if (v > best || Float.isNaN(v)) {
        best = v;
      }
    }
    Tensor out = Tensor.full(arena, best);
    float max = best;
    Autograd.record("Tensor.max", List.of(x), List.of(out), List.of(x), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[] {null};
      }
      // PyTorch's evenly_distribute_backward: every element equal to the maximum (every NaN when
      // it is NaN) gets gradient / count
      boolean nan = Float.isNaN(max);
      long ties = 0;
      for (long j = 0, n = x.size(); j < n; j++) {
        float v = xs.getAtIndex(JAVA_FLOAT, j);
        ties += (nan ? Float.isNaN(v) : v == max) ? 1 : 0;
      }
      float share = g[0].segment().getAtIndex(JAVA_FLOAT, 0) / ties;
      Tensor dx = Tensor.zeros(scratch, x.shape().dims());
      for (long j = 0, n = x.size(); j < n; j++) {
        float v = xs.getAtIndex(JAVA_FLOAT, j);
        if (nan ? Float.isNaN(v) : v == max) {
          dx.segment().setAtIndex(JAVA_FLOAT, j, share);
        }
      }
      return new Tensor[] {dx};
    });
    return out;
  }

  private static long product(long[] dims, int from, int to) {
    long p = 1;
    for (int i = from; i < to; i++) {
      p *= dims[i];
    }
    return p;
  }

  // ---- softmax, log-softmax

  static Tensor softmax(Tensor x, int dim) {
    return softmax(x, dim, false);
  }

  static Tensor logSoftmax(Tensor x, int dim) {
    return softmax(x, dim, true);
  }

  private static Tensor softmax(Tensor x, int dim, boolean log) {
    Arena arena = ElementwiseOps.arenaOf(x);
    Shape shape = x.shape();
    int d = resolveDim(dim, shape.rank(), shape);
    long[] dims = dimsOf(shape);
    long n = dims[d];
    long outer = product(dims, 0, d);
    long inner = product(dims, d + 1, dims.length);
    Tensor out = Tensor.uninitialized(arena, shape.dims());
    MemorySegment xs = x.segment();
    MemorySegment ys = out.segment();
    for (long o = 0; o < outer; o++) {
      for (long i = 0; i < inner; i++) {
        long base = o * n * inner + i;
        // the maximum subtracted first, so that exp never overflows
        float max = Float.NEGATIVE_INFINITY;
        for (long j = 0; j < n; j++) {
          max = Math.max(max, xs.getAtIndex(JAVA_FLOAT, base + j * inner));
        }
        double total = 0;
        for (long j = 0; j < n; j++) {
          total += Math.exp((double) xs.getAtIndex(JAVA_FLOAT, base + j * inner) - max);
        }
        double logTotal = Math.log(total);
        for (long j = 0; j < n; j++) {
          double shifted = (double) xs.getAtIndex(JAVA_FLOAT, base + j * inner) - max;
          ys.setAtIndex(JAVA_FLOAT, base + j * inner,
              (float) (log ? shifted - logTotal : Math.exp(shifted) / total));
        }
      }
    }
    String name = log ? "Tensor.logSoftmax" : "Tensor.softmax";
    Autograd.record(name, List.of(x), List.of(out), List.of(out), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[] {null};
      }
      Tensor dx = Tensor.uninitialized(scratch, shape.dims());
      MemorySegment gs = g[0].segment();
      MemorySegment ds = dx.segment();
      for (long o = 0; o < outer; o++) {
        for (long i = 0; i < inner; i++) {
          long base = o * n * inner + i;
          // softmax: dx = y ⊙ (g − Σ g·y); log-softmax: dx = g − exp(y) · Σ g
          double dot = 0;
          for (long j = 0; j < n; j++) {
            long k = base + j * inner;
            dot += log ? gs.getAtIndex(JAVA_FLOAT, k)
                : (double) gs.getAtIndex(JAVA_FLOAT, k) * ys.getAtIndex(JAVA_FLOAT, k);
          }
          for (long j = 0; j < n; j++) {
            long k = base + j * inner;
            double y = ys.getAtIndex(JAVA_FLOAT, k);
            double gk = gs.getAtIndex(JAVA_FLOAT, k);
            ds.setAtIndex(JAVA_FLOAT, k, (float) (log ? gk - Math.exp(y) * dot : y * (gk - dot)));
          }
        }
      }
      return new Tensor[] {dx};
    });
    return out;
  }
}
