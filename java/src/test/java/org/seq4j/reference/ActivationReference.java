package org.seq4j.reference;

/**
 * Float64 references of the activations, from their definitions: ReLU, the exact GELU
 * x · Φ(x) = x/2 · (1 + erf(x / √2)), and its tanh approximation x/2 · (1 + tanh(√(2/π) · (x +
 * 0.044715 x³))). erf is summed here from its series rather than taken from a library, so the
 * reference shares nothing with the kernels (which call the C library's erf and tanh). Their
 * derivatives are checked by finite differences of these functions.
 */
public final class ActivationReference {
  private ActivationReference() {}

  /** max(x, 0). */
  public static double relu(double x) {
    return Math.max(x, 0);
  }

  /** x/2 · (1 + erf(x / √2)). */
  public static double gelu(double x) {
    return 0.5 * x * (1 + erf(x / Math.sqrt(2)));
  }

  /** x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³))), PyTorch's {@code approximate="tanh"}. */
  public static double geluTanh(double x) {
    return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
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
