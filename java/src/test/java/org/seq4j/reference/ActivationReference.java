package org.seq4j.reference;

/**
 * Float64 references of the activations, from their definitions: ReLU, the exact GELU
 * x · Φ(x) = x/2 · (1 + erf(x / √2)), and its tanh approximation x/2 · (1 + tanh(√(2/π) · (x +
 * 0.044715 x³))). erf and erfc are summed here from a series and a continued fraction rather than
 * taken from a library, so the reference shares nothing with the kernels (a Chebyshev fit of erfc
 * and their own exp). Their derivatives are checked by finite differences of these functions, and
 * against the analytic derivatives below.
 */
public final class ActivationReference {
  private ActivationReference() {}

  /** max(x, 0). */
  public static double relu(double x) {
    return Math.max(x, 0);
  }

  /**
   * x/2 · (1 + erf(x / √2)) = x · Φ(x), with Φ(x) = erfc(−x/√2) / 2 for x &lt; 0, so that the
   * result keeps its relative accuracy where 1 + erf cancels (x below about −5).
   */
  public static double gelu(double x) {
    return x * gaussianCdf(x);
  }

  /** The Gaussian CDF Φ(x), accurate relatively in both tails. */
  public static double gaussianCdf(double x) {
    double z = x / Math.sqrt(2);
    return z < 0 ? 0.5 * erfc(-z) : 1 - 0.5 * erfc(z);
  }

  /** d/dx of {@link #gelu}: Φ(x) + x φ(x), φ the Gaussian density. */
  public static double geluDerivative(double x) {
    return gaussianCdf(x) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  }

  /**
   * x/2 · (1 + tanh(u)), u = √(2/π) · (x + 0.044715 x³), PyTorch's {@code approximate="tanh"}, as
   * x / (1 + e^(−2u)) (the same function; no cancellation in 1 + tanh u for negative x).
   */
  public static double geluTanh(double x) {
    double u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
    return x / (1 + Math.exp(-2 * u));
  }

  /** d/dx of {@link #geluTanh}: σ + 2 x σ (1 − σ) u', σ = 1 / (1 + e^(−2u)). */
  public static double geluTanhDerivative(double x) {
    double u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
    double e = Math.exp(-2 * u);
    double sigma = 1 / (1 + e);
    double du = Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * x * x);
    return sigma + 2 * x * sigma * (e * sigma) * du;
  }

  /**
   * erfc(z) for z &gt;= 0: 1 − erf(z) by the series below while z &lt; 2 (erfc(2) ≈ 0.005, so the
   * subtraction loses under 8 bits of double's 53), else the continued fraction e^(−z²)/√π / (z +
   * (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated from depth 200 back (it converges faster the
   * larger z is).
   */
  public static double erfc(double z) {
    if (Double.isNaN(z)) {
      return Double.NaN;
    }
    if (z < 2) {
      return 1 - erf(z);
    }
    if (Double.isInfinite(z)) {
      return 0;
    }
    double fraction = z;
    for (int k = 200; k >= 1; k--) {
      fraction = z + (k / 2.0) / fraction;
    }
    return Math.exp(-z * z) / Math.sqrt(Math.PI) / fraction;
  }

  /**
   * erf by the series 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3···(2n+1)), whose terms are all
   * positive: no cancellation at any x, unlike the alternating Taylor series. Summed until a term
   * is below 1e-18 of the sum (far below double's rounding), at most 400 terms: terms shrink once
   * 2n + 1 exceeds 2x², so that is ample for the |x| &lt; 8 of the tests (147 terms at 8).
   */
  public static double erf(double x) {
    double term = x;
    double sum = x;
    for (int n = 1; n < 400 && Math.abs(term) > 1e-18 * Math.abs(sum); n++) {
      term *= 2 * x * x / (2 * n + 1);
      sum += term;
    }
    return 2 / Math.sqrt(Math.PI) * Math.exp(-x * x) * sum;
  }
}
