package org.seq4j.reference;

/**
 * Every error budget of the test suite, in one place, with its reason.
 *
 * <p>A float32 kernel is compared with a float64 reference. Summing k products in float32 has a
 * worst-case relative error of about k·ε (ε = 2^-24 ≈ 6e-8) of the sum of magnitudes; blocked and
 * pairwise summation, as GEMM kernels do, keep it near log2(k)·ε. As in oneDNN's benchdnn, the
 * budget grows with log2 of the accumulation length, with a safety factor for the FMA/non-FMA
 * difference and the split of k into blocks.
 */
public final class Tolerances {
  /** Unit roundoff of float32. */
  public static final double FLOAT_EPSILON = Math.ulp(1.0f) / 2;

  private Tolerances() {}

  /**
   * The allowed |result − reference| of one output of a matrix product, relative to {@code Σ
   * |a||b|} over its k terms (plus the previous output's rounding when accumulating).
   */
  public static double matmulRelative(int k) {
    return 8 * FLOAT_EPSILON * (Math.log(Math.max(k, 1)) / Math.log(2) + 2);
  }

  /** Elementwise ops round once per operation: 2 ulps. */
  public static final double ELEMENTWISE_RELATIVE = 2 * 2 * FLOAT_EPSILON;
}
