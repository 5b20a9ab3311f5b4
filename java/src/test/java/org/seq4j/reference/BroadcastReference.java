package org.seq4j.reference;

import java.util.function.DoubleBinaryOperator;

/**
 * Float64 references of NumPy/PyTorch broadcasting and of reductions and softmax over dimensions,
 * written from the definitions with explicit multi-indices (one coordinate per dimension, decoded
 * from the flat index each time), sharing nothing with the strided kernels.
 *
 * <p>Broadcasting: align the shapes at their last dimension, pad the shorter with 1s; sizes must
 * be equal or 1; an operand of size 1 along a dimension is read at coordinate 0 there.
 */
public final class BroadcastReference {
  private BroadcastReference() {}

  /** The broadcast shape of a and b. */
  public static long[] shape(long[] a, long[] b) {
    int rank = Math.max(a.length, b.length);
    long[] out = new long[rank];
    for (int i = 0; i < rank; i++) {
      long x = padded(a, rank, i);
      long y = padded(b, rank, i);
      if (x != y && x != 1 && y != 1) {
        throw new IllegalArgumentException("shapes do not broadcast");
      }
      out[i] = x == 1 ? y : x;
    }
    return out;
  }

  private static long padded(long[] dims, int rank, int i) {
    int shift = rank - dims.length;
    return i < shift ? 1 : dims[i - shift];
  }

  /** The number of elements of a shape. */
  public static int size(long[] dims) {
    long n = 1;
    for (long d : dims) {
      n *= d;
    }
    return Math.toIntExact(n);
  }

  /** The coordinates of flat index {@code flat} in a row-major shape. */
  public static long[] coordinates(long flat, long[] dims) {
    long[] c = new long[dims.length];
    for (int i = dims.length - 1; i >= 0; i--) {
      c[i] = flat % dims[i];
      flat /= dims[i];
    }
    return c;
  }

  /** The flat index in shape {@code dims} read at the broadcast coordinates {@code c}. */
  public static int flatBroadcast(long[] c, long[] dims) {
    int shift = c.length - dims.length;
    long flat = 0;
    for (int i = 0; i < dims.length; i++) {
      long coordinate = dims[i] == 1 ? 0 : c[i + shift];
      flat = flat * dims[i] + coordinate;
    }
    return Math.toIntExact(flat);
  }

  /** {@code op(a, b)} broadcast, in the broadcast shape. */
  public static double[] apply(double[] a, long[] aDims, double[] b, long[] bDims,
      DoubleBinaryOperator op) {
    long[] out = shape(aDims, bDims);
    double[] result = new double[size(out)];
    for (int k = 0; k < result.length; k++) {
      long[] c = coordinates(k, out);
      result[k] = op.applyAsDouble(a[flatBroadcast(c, aDims)], b[flatBroadcast(c, bDims)]);
    }
    return result;
  }

  /** The sum over the dims marked in {@code reduced} (resolved, non-negative), keepDim shape. */
  public static double[] sum(double[] x, long[] dims, boolean[] reduced) {
    long[] kept = dims.clone();
    for (int i = 0; i < dims.length; i++) {
      if (reduced[i]) {
        kept[i] = 1;
      }
    }
    double[] out = new double[size(kept)];
    for (int k = 0; k < x.length; k++) {
      out[flatBroadcast(coordinates(k, dims), kept)] += x[k];
    }
    return out;
  }

  /** The maxima along {@code dim} and their first positions (a NaN wins), keepDim order. */
  public static double[][] max(double[] x, long[] dims, int dim) {
    long[] kept = dims.clone();
    kept[dim] = 1;
    double[] values = new double[size(kept)];
    double[] positions = new double[values.length];
    java.util.Arrays.fill(values, Double.NEGATIVE_INFINITY);
    java.util.Arrays.fill(positions, -1);
    for (int k = 0; k < x.length; k++) {
      long[] c = coordinates(k, dims);
      int at = flatBroadcast(c, kept);
      boolean nanSeen = Double.isNaN(values[at]);
      if (!nanSeen && (positions[at] < 0 || x[k] > values[at] || Double.isNaN(x[k]))) {
        values[at] = x[k];
        positions[at] = c[dim];
      }
    }
    return new double[][] {values, positions};
  }

  /** Softmax (or log-softmax) along {@code dim}, from the definition exp(x_j) / Σ_k exp(x_k). */
  public static double[] softmax(double[] x, long[] dims, int dim, boolean log) {
    boolean[] along = new boolean[dims.length];
    along[dim] = true;
    double[] exps = new double[x.length];
    for (int k = 0; k < x.length; k++) {
      exps[k] = Math.exp(x[k]);
    }
    double[] totals = sum(exps, dims, along);
    long[] kept = dims.clone();
    kept[dim] = 1;
    double[] out = new double[x.length];
    for (int k = 0; k < x.length; k++) {
      double total = totals[flatBroadcast(coordinates(k, dims), kept)];
      out[k] = log ? x[k] - Math.log(total) : exps[k] / total;
    }
    return out;
  }
}
