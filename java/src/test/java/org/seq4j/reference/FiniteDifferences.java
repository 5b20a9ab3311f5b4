package org.seq4j.reference;

import java.util.function.DoubleSupplier;

/**
 * Central finite differences: the reference gradient of every backward pass.
 *
 * <p>For a scalar loss L that reads an array v, the derivative along element i is estimated as
 * {@code (L(v + ε e_i) − L(v − ε e_i)) / 2ε}. Its truncation error is {@code ε² |L'''| / 6} and
 * its rounding error about {@code δ |L| / ε} (δ ≈ 1.1e-16 in double), so ε = 1e-6 relative to
 * the element's size leaves about 1e-10 relative error on smooth float64 functions: far below the
 * tolerance of a float32 kernel. At a kink (relu at 0) the estimate is the average of the two
 * one-sided slopes.
 */
public final class FiniteDifferences {
  /** The default relative step: balances truncation (ε²) against rounding (1/ε) in double. */
  public static final double DEFAULT_STEP = 1e-6;

  private FiniteDifferences() {}

  /** {@link #gradient(double[], DoubleSupplier, double)} with {@link #DEFAULT_STEP}. */
  public static double[] gradient(double[] v, DoubleSupplier loss) {
    return gradient(v, loss, DEFAULT_STEP);
  }

  /**
   * dL/dv for every element of v: {@code (L(v + εe_i) − L(v − εe_i)) / 2ε} with {@code ε =
   * step · max(1, |v_i|)}. Perturbs v in place, one element at a time, and restores each element
   * exactly before moving on, so {@code loss} must read v itself (not a copy).
   *
   * @param v the variable; unchanged on return
   * @param loss L, evaluated 2·v.length times
   * @param step the relative step, > 0
   * @return the estimated gradient, the same length as v
   */
  public static double[] gradient(double[] v, DoubleSupplier loss, double step) {
    if (!(step > 0)) {
      throw new IllegalArgumentException("step must be > 0, got " + step);
    }
    double[] gradient = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      double original = v[i];
      double epsilon = step * Math.max(1, Math.abs(original));
      v[i] = original + epsilon;
      double plus = loss.getAsDouble();
      v[i] = original - epsilon;
      double minus = loss.getAsDouble();
      v[i] = original;
      // the step actually taken, after rounding original ± ε to double
      gradient[i] = (plus - minus) / ((original + epsilon) - (original - epsilon));
    }
    return gradient;
  }
}
