package org.seq4j.reference;

import java.util.function.DoubleSupplier;

/** Central finite differences: the reference gradient of every backward pass. */
public final class FiniteDifferences {
  private FiniteDifferences() {}

  /**
   * dL/dv for every element of v, by (L(v + εe_i) − L(v − εe_i)) / 2ε, with ε = step·max(1, |v_i|).
   * Perturbs v in place and restores it exactly.
   */
  public static double[] gradient(double[] v, DoubleSupplier loss, double step) {
    double[] gradient = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      double original = v[i];
      double epsilon = step * Math.max(1, Math.abs(original));
      v[i] = original + epsilon;
      double plus = loss.getAsDouble();
      v[i] = original - epsilon;
      double minus = loss.getAsDouble();
      v[i] = original;
      gradient[i] = (plus - minus) / (2 * epsilon);
    }
    return gradient;
  }
}
