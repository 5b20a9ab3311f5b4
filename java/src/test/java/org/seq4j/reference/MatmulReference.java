package org.seq4j.reference;

/**
 * Float64 matrix product written from the definition, loop by loop: the reference for {@code
 * TensorOps.matmul} on every backend. Shares no code with the kernels.
 */
public final class MatmulReference {
  private MatmulReference() {}

  /**
   * {@code alpha * op(a) op(b) + beta * c} in double precision, row-major.
   *
   * @param a stored (m, k), or (k, m) when transA
   * @param b stored (k, n), or (n, k) when transB
   * @param c (m, n), the previous contents of the output
   * @return the (m, n) result
   */
  public static double[] matmul(float[] a, float[] b, float[] c, int m, int n, int k,
      boolean transA, boolean transB, double alpha, double beta) {
    double[] out = new double[m * n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double sum = 0;
        for (int p = 0; p < k; p++) {
          double x = transA ? a[p * m + i] : a[i * k + p];
          double y = transB ? b[j * k + p] : b[p * n + j];
          sum += x * y;
        }
        out[i * n + j] = alpha * sum + (beta == 0 ? 0 : beta * c[i * n + j]);
      }
    }
    return out;
  }

  /** {@code Σ_p |op(a)[i,p]| |op(b)[p,j]|} per output: the scale of the rounding error. */
  public static double[] magnitude(float[] a, float[] b, int m, int n, int k, boolean transA,
      boolean transB) {
    double[] out = new double[m * n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double sum = 0;
        for (int p = 0; p < k; p++) {
          sum += Math.abs(transA ? a[p * m + i] : a[i * k + p])
              * Math.abs(transB ? b[j * k + p] : b[p * n + j]);
        }
        out[i * n + j] = sum;
      }
    }
    return out;
  }
}
