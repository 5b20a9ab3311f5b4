package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.reference.ActivationReference;
import org.seq4j.reference.Tolerances;

/**
 * The GELU kernels (exact and tanh form, forward and backward) in every ISA copy this CPU runs,
 * on a dense grid over [-12, 12] and at the special values, against the float64 references: each
 * output relative to its own size, so that the far negative tail (values down to 1e-32, where
 * x/2 · (1 + erf) in double would have lost every digit) is held as tightly as the rest.
 */
class ActivationKernelsTest {
  private static final int POINTS = 240_001;

  @AfterEach
  void restoreBestKernels() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  private static float[] grid() {
    float[] x = new float[POINTS];
    for (int i = 0; i < POINTS; i++) {
      x[i] = (float) (-12 + 24.0 * i / (POINTS - 1));
    }
    return x;
  }

  /**
   * Each output within tolerance · scale(x) of the reference, scale the size of the terms the
   * value is made of (the value itself for the functions; for the derivatives the sum of their two
   * terms' sizes, as they cancel near the derivative's zero at x ≈ -0.75).
   */
  private static void assertRelative(float[] x, float[] actual, DoubleUnaryOperator reference,
      DoubleUnaryOperator scale, double tolerance, String what) {
    for (int i = 0; i < x.length; i++) {
      double expected = reference.applyAsDouble(x[i]);
      double allowed = tolerance * scale.applyAsDouble(x[i]) + Float.MIN_NORMAL;
      if (!(Math.abs(actual[i] - expected) <= allowed)) {
        throw new AssertionError(what + "(" + x[i] + ") = " + actual[i] + ", expected " + expected
            + " within " + allowed);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void geluMatchesTheReferenceOverItsWholeRange(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    float[] x = grid();
    try (Arena arena = Arena.ofConfined()) {
      Tensor input = Tensor.fromArray(arena, x, POINTS);
      Tensor ones = Tensor.ones(arena, POINTS);
      assertRelative(x, Activation.GELU.forward(arena, input).toArray(), ActivationReference::gelu,
          v -> Math.abs(ActivationReference.gelu(v)), Tolerances.GELU_RELATIVE, isa + " gelu");
      assertRelative(x, Activation.GELU.backward(arena, input, ones).toArray(),
          ActivationReference::geluDerivative,
          v -> ActivationReference.gaussianCdf(v)
              + Math.abs(v) * Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI),
          Tolerances.GELU_RELATIVE, isa + " gelu'");
      assertRelative(x, Activation.GELU_TANH.forward(arena, input).toArray(),
          ActivationReference::geluTanh, v -> Math.abs(ActivationReference.geluTanh(v)),
          Tolerances.GELU_RELATIVE, isa + " gelu_tanh");
      assertRelative(x, Activation.GELU_TANH.backward(arena, input, ones).toArray(),
          ActivationReference::geluTanhDerivative,
          v -> {
            double u = Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v);
            double sigma = 1 / (1 + Math.exp(-2 * u));
            double du = Math.sqrt(2 / Math.PI) * (1 + 3 * 0.044715 * v * v);
            return sigma + Math.abs(2 * v * sigma * (1 - sigma) * du);
          },
          Tolerances.GELU_RELATIVE, isa + " gelu_tanh'");
    }
  }

  /**
   * The layers keep only ReLU's output (after dropout) for the backward: its derivative read from
   * there gives the same bits as read from the input, for negatives, zeros of both signs, NaN and
   * dropped entries (whose incoming gradient dropout has already made 0), on every copy.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void reluDerivativeFromItsDroppedOutputEqualsTheOneFromItsInput(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    int n = 50_001;
    java.util.Random random = new java.util.Random(3);
    float[] x = new float[n];
    float[] g = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = switch (i % 97) {
        case 0 -> 0f;
        case 1 -> -0f;
        case 2 -> Float.NaN;
        default -> (float) random.nextGaussian();
      };
      g[i] = i % 89 == 0 ? Float.NaN : (float) random.nextGaussian();
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor input = Tensor.fromArray(arena, x, n);
      Tensor hidden = input.copy(arena);
      Tensor[] outAndSaved = Activation.RELU.forwardForLayer(arena, hidden);
      Tensor activated = ResidualOps.dropout(arena, outAndSaved[0], 0.3f, 11, true);
      Tensor gradDropped = ResidualOps.dropout(arena, Tensor.fromArray(arena, g, n), 0.3f, 11, true);
      float[] fromInput = Activation.RELU.backward(arena, input, gradDropped).toArray();
      float[] fromOutput = Activation.RELU.backward(arena, activated, gradDropped).toArray();
      for (int i = 0; i < n; i++) {
        assertEquals(Float.floatToIntBits(fromInput[i]), Float.floatToIntBits(fromOutput[i]),
            isa + " element " + i + " (x = " + x[i] + ")");
      }
    }
  }

  /**
   * NaN stays NaN, +inf gives +inf, and -inf gives NaN (x · Φ(x) = -inf · 0, as PyTorch's
   * formulas give); zeros and the smallest values keep their sign.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void geluSpecialValues(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    float[] x = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f,
        Float.MIN_NORMAL, -Float.MIN_NORMAL, 1e-30f, -1e-30f, 100f, -100f};
    try (Arena arena = Arena.ofConfined()) {
      Tensor input = Tensor.fromArray(arena, x, x.length);
      for (Activation kind : new Activation[] {Activation.GELU, Activation.GELU_TANH}) {
        float[] y = kind.forward(arena, input).toArray();
        assertTrue(Float.isNaN(y[0]), kind + "(NaN) = " + y[0]);
        assertEquals(Float.POSITIVE_INFINITY, y[1], kind + "(+inf)");
        assertTrue(Float.isNaN(y[2]), kind + "(-inf) = " + y[2]);
        assertEquals(0f, y[3], kind + "(0)");
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(y[4]), kind + "(-0) = " + y[4]);
        assertEquals(Float.MIN_NORMAL / 2, y[5], Float.MIN_NORMAL * 1e-3f, kind + "(MIN_NORMAL)");
        assertEquals(100f, y[9], kind + "(100)");
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(y[10]),
            kind + "(-100) = " + y[10]);
        float[] dy = kind.backward(arena, input, Tensor.ones(arena, x.length)).toArray();
        assertTrue(Float.isNaN(dy[0]), kind + "'(NaN) = " + dy[0]);
        assertEquals(0.5f, dy[3], 1e-7f, kind + "'(0)");
        assertEquals(1f, dy[9], kind + "'(100)");
        assertTrue(dy[10] == 0f, kind + "'(-100) = " + dy[10]); // +0 or -0
      }
    }
  }
}
