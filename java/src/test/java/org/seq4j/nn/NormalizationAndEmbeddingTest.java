package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.reference.ActivationReference;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.LayerNormReference;
import org.seq4j.reference.Tolerances;

/** LayerNorm, the activations and Embedding against float64 references and finite differences. */
class NormalizationAndEmbeddingTest {

  static double[] random(Random random, int n, double scale, double shift) {
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) (random.nextGaussian() * scale + shift);
    }
    return out;
  }

  static double weighted(double[] y, double[] g) {
    double sum = 0;
    for (int i = 0; i < y.length; i++) {
      sum += y[i] * g[i];
    }
    return sum;
  }

  @AfterEach
  void restoreBestKernels() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** Every ISA copy this CPU runs, with and without the affine parameters, at several widths. */
  static Stream<Arguments> layerNormCases() {
    List<Arguments> cases = new ArrayList<>();
    for (KernelIsa isa : AttentionKernelsTest.runnableCopies()) {
      for (int cols : new int[] {1, 3, 17, 64}) {
        for (boolean affine : new boolean[] {true, false}) {
          cases.add(Arguments.of(isa, cols, affine));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} cols={1} affine={2}")
  @MethodSource("layerNormCases")
  void layerNormForwardAndGradientsMatchTheReference(KernelIsa isa, int cols, boolean affine) {
    Seq4j.selectKernels(isa);
    int rows = 5;
    Random random = new Random(cols);
    try (LayerNorm norm = new LayerNorm(cols, (float) LayerNormReference.DEFAULT_EPS, affine);
        Arena arena = Arena.ofConfined()) {
      // rows far from zero check the two-pass variance
      double[] x = random(random, rows * cols, 2, 100);
      double[] w = affine ? random(random, cols, 1, 1) : filled(cols, 1);
      double[] b = affine ? random(random, cols, 1, 0) : filled(cols, 0);
      if (affine) {
        norm.parameters().get(0).data().copyFrom(tensor(arena, w, cols));
        norm.parameters().get(1).data().copyFrom(tensor(arena, b, cols));
      }
      Tensor input = tensor(arena, x, rows, cols);
      LayerNorm.Result result = norm.forward(arena, input);
      assertClose(LayerNormReference.forward(x, w, b, rows, cols), doubles(result.output()),
          Tolerances.LAYER_NORM_FORWARD, "y");
      double[] g = random(random, rows * cols, 1, 0);
      Tensor dx = norm.backward(arena, result.context(), tensor(arena, g, rows, cols));
      DoubleSupplier loss = () -> weighted(LayerNormReference.forward(x, w, b, rows, cols), g);
      assertClose(FiniteDifferences.gradient(x, loss, Tolerances.LAYER_NORM_INPUT_STEP),
          doubles(dx), Tolerances.LAYER_NORM_BACKWARD_INPUT, "dx");
      if (affine) {
        assertClose(FiniteDifferences.gradient(w, loss), doubles(norm.parameters().get(0).grad()),
            Tolerances.LAYER_NORM_BACKWARD_PARAMETERS, "dweight");
        assertClose(FiniteDifferences.gradient(b, loss), doubles(norm.parameters().get(1).grad()),
            Tolerances.LAYER_NORM_BACKWARD_PARAMETERS, "dbias");
      } else {
        assertEquals(0, norm.parameters().size(), "parameters without affine");
      }
    }
  }

  /**
   * A layer big enough to run threaded in several row blocks, with a width that leaves a tail
   * after the vector lanes: the forward against the float64 reference, and each gradient by its
   * directional derivative (central differences of the float64 loss along a random direction,
   * against the dot product of that direction with the kernel's gradient), in every ISA copy. The
   * parameter gradients start non-zero, so that adding into them is checked too.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void layerNormAtSizeMatchesDirectionalDerivatives(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    int rows = 200;
    int cols = 515;
    Random random = new Random(515);
    try (LayerNorm norm = new LayerNorm(cols); Arena arena = Arena.ofConfined()) {
      double[] x = random(random, rows * cols, 1.5, 3);
      double[] w = random(random, cols, 1, 1);
      double[] b = random(random, cols, 1, 0);
      double[] w0 = random(random, cols, 1, 0);
      double[] b0 = random(random, cols, 1, 0);
      norm.parameters().get(0).data().copyFrom(tensor(arena, w, cols));
      norm.parameters().get(1).data().copyFrom(tensor(arena, b, cols));
      norm.parameters().get(0).grad().copyFrom(tensor(arena, w0, cols));
      norm.parameters().get(1).grad().copyFrom(tensor(arena, b0, cols));
      LayerNorm.Result result = norm.forward(arena, tensor(arena, x, rows, cols));
      assertClose(LayerNormReference.forward(x, w, b, rows, cols), doubles(result.output()),
          Tolerances.LAYER_NORM_FORWARD, "y");
      double[] g = random(random, rows * cols, 1, 0);
      double[] dx = doubles(norm.backward(arena, result.context(), tensor(arena, g, rows, cols)));
      double[] dw = doubles(norm.parameters().get(0).grad());
      double[] db = doubles(norm.parameters().get(1).grad());
      for (int c = 0; c < cols; c++) {
        dw[c] -= w0[c];
        db[c] -= b0[c];
      }
      double[][] gradients = {dx, dw, db};
      double[][] inputs = {x, w, b};
      String[] names = {"dx", "dweight", "dbias"};
      double step = 1e-4;
      for (int which = 0; which < 3; which++) {
        double[] direction = random(random, inputs[which].length, 1, 0);
        double[][] shifted = {x, w, b};
        shifted[which] = moved(inputs[which], direction, step);
        double up = weighted(
            LayerNormReference.forward(shifted[0], shifted[1], shifted[2], rows, cols), g);
        shifted[which] = moved(inputs[which], direction, -step);
        double down = weighted(
            LayerNormReference.forward(shifted[0], shifted[1], shifted[2], rows, cols), g);
        double expected = (up - down) / (2 * step);
        double actual = 0;
        for (int i = 0; i < direction.length; i++) {
          actual += gradients[which][i] * direction[i];
        }
        assertEquals(expected, actual,
            Tolerances.LAYER_NORM_DIRECTIONAL * (Math.abs(expected) + 1), names[which]);
      }
    }
  }

  static double[] moved(double[] v, double[] direction, double step) {
    double[] out = v.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] += step * direction[i];
    }
    return out;
  }

  static double[] filled(int n, double value) {
    double[] out = new double[n];
    java.util.Arrays.fill(out, value);
    return out;
  }

  /** The float64 reference of one activation. */
  static double reference(Activation kind, double v) {
    return switch (kind) {
      case RELU -> ActivationReference.relu(v);
      case GELU -> ActivationReference.gelu(v);
      case GELU_TANH -> ActivationReference.geluTanh(v);
    };
  }

  @ParameterizedTest
  @EnumSource(Activation.class)
  void activationsAndTheirDerivativesMatchTheReference(Activation kind) {
    Random random = new Random(kind.ordinal());
    try (Arena arena = Arena.ofConfined()) {
      double[] x = random(random, 257, 2, 0);
      for (int i = 0; i < x.length; i++) {
        if (Math.abs(x[i]) < 1e-3) {
          x[i] = 0.5; // keep ReLU's kink out of the finite differences
        }
      }
      Tensor input = tensor(arena, x, 257);
      double[] expected = new double[x.length];
      for (int i = 0; i < x.length; i++) {
        expected[i] = reference(kind, x[i]);
      }
      assertClose(expected, doubles(kind.forward(arena, input)), Tolerances.ACTIVATION_FORWARD,
          "y");
      double[] g = random(random, 257, 1, 0);
      Tensor dx = kind.backward(arena, input, tensor(arena, g, 257));
      DoubleSupplier loss = () -> {
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
          sum += reference(kind, x[i]) * g[i];
        }
        return sum;
      };
      assertClose(FiniteDifferences.gradient(x, loss), doubles(dx), Tolerances.ACTIVATION_BACKWARD,
          "dx");
    }
  }

  @Test
  void embeddingGathersAndAddsGradientsPerRowLookedUp() {
    try (Embedding embedding = new Embedding(7, 3, 1); Arena arena = Arena.ofConfined()) {
      long[] indices = {4, 0, 4, 6};
      Tensor out = embedding.forward(arena, indices, 2, 2);
      assertEquals(org.seq4j.Shape.of(2, 2, 3), out.shape());
      double[] table = doubles(embedding.weight().data());
      double[] got = doubles(out);
      for (int i = 0; i < 4; i++) {
        for (int c = 0; c < 3; c++) {
          assertEquals(table[(int) indices[i] * 3 + c], got[i * 3 + c]);
        }
      }
      Tensor g = Tensor.ones(arena, 2, 2, 3);
      embedding.backward(indices, g);
      double[] grad = doubles(embedding.weight().grad());
      assertEquals(2.0, grad[4 * 3], "row 4 was looked up twice");
      assertEquals(1.0, grad[6 * 3 + 2]);
      assertEquals(0.0, grad[3 * 3 + 1], "row 3 was not looked up");
      var e = assertThrows(IllegalArgumentException.class,
          () -> embedding.forward(arena, new long[] {1, 7}, 2));
      assertEquals("indices[1]: expected 0 <= index < 7, got 7", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> embedding.forward(arena, new long[] {1, 2}, 3));
      assertEquals("shape: (3,) holds 3 indices, got 2", e.getMessage());
    }
  }

  @Test
  void sinusoidalPositionsFollowTheFormula() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor pe = Embedding.sinusoidalPositions(arena, 50, 16);
      assertEquals(0f, pe.get(0, 0));
      assertEquals(1f, pe.get(0, 1));
      assertEquals((float) Math.sin(7 / Math.pow(10000, 4.0 / 16)), pe.get(7, 4),
          (float) Tolerances.POSITIONAL_ENCODING);
      assertEquals((float) Math.cos(7 / Math.pow(10000, 4.0 / 16)), pe.get(7, 5),
          (float) Tolerances.POSITIONAL_ENCODING);
    }
  }

  @Test
  void layerNormRejectsTheWrongWidth() {
    try (LayerNorm norm = new LayerNorm(4); Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> norm.forward(arena, Tensor.zeros(arena, 2, 5)));
      assertEquals("x: expected shape (..., 4), got (2, 5)", e.getMessage());
    }
  }
}
