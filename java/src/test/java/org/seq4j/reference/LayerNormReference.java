package org.seq4j.reference;

/**
 * Float64 reference of layer normalisation over the last dimension, from the definition, loop by
 * loop: y = (x − mean) / √(variance + eps) · weight + bias, with the mean and the biased variance
 * (divided by the row length, as PyTorch's {@code LayerNorm}) of each row. The variance is taken
 * in two passes, around the mean, so rows far from zero keep their digits. Shares no code with the
 * kernels.
 */
public final class LayerNormReference {
  /** PyTorch's default eps of {@code LayerNorm}, and seq4j's. */
  public static final double DEFAULT_EPS = 1e-5;

  private LayerNormReference() {}

  /**
   * y for {@code rows} rows of length {@code cols}, row-major.
   *
   * @param x (rows, cols)
   * @param weight (cols), the scale
   * @param bias (cols), the shift
   * @param eps added to the variance before the square root
   * @return (rows, cols)
   */
  public static double[] forward(double[] x, double[] weight, double[] bias, int rows, int cols,
      double eps) {
    double[] y = new double[x.length];
    for (int r = 0; r < rows; r++) {
      double mean = 0;
      for (int c = 0; c < cols; c++) {
        mean += x[r * cols + c];
      }
      mean /= cols;
      double variance = 0;
      for (int c = 0; c < cols; c++) {
        variance += (x[r * cols + c] - mean) * (x[r * cols + c] - mean);
      }
      variance /= cols;
      for (int c = 0; c < cols; c++) {
        y[r * cols + c] = (x[r * cols + c] - mean) / Math.sqrt(variance + eps) * weight[c]
            + bias[c];
      }
    }
    return y;
  }

  /** {@link #forward(double[], double[], double[], int, int, double)} with {@link #DEFAULT_EPS}. */
  public static double[] forward(double[] x, double[] weight, double[] bias, int rows, int cols) {
    return forward(x, weight, bias, rows, cols, DEFAULT_EPS);
  }
}
