package org.seq4j.nn;

import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.Tolerances;

class LinearTest {
  /** Float64 reference: y[r][o] = Σ_i x[r][i] W[o][i] + b[o]. */
  static double[] reference(double[] x, double[] w, double[] b, int rows, int in, int out) {
    double[] y = new double[rows * out];
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < out; o++) {
        double sum = b == null ? 0 : b[o];
        for (int i = 0; i < in; i++) {
          sum += x[r * in + i] * w[o * in + i];
        }
        y[r * out + o] = sum;
      }
    }
    return y;
  }

  @ParameterizedTest(name = "rows={0} in={1} out={2} bias={3}")
  @CsvSource({"1, 1, 1, true", "6, 3, 17, true", "5, 17, 3, false", "63, 9, 4, true"})
  void forwardAndBackwardMatchTheReference(int rows, int in, int out, boolean bias) {
    try (Linear linear = new Linear(in, out, bias, 7); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 3, rows / 3 > 0 && rows % 3 == 0 ? 3 : 1,
          rows / (rows % 3 == 0 && rows / 3 > 0 ? 3 : 1), in);
      double[] xv = doubles(x);
      double[] w = doubles(linear.weight().data());
      double[] b = bias ? doubles(linear.bias().data()) : null;
      Tensor y = linear.forward(arena, x);
      assertEquals(out, y.dim(-1));
      assertClose(reference(xv, w, b, rows, in, out), doubles(y), Tolerances.LINEAR_FORWARD, "y");
      Tensor gy = Tensor.randomNormal(arena, 4, y.shape().dims());
      double[] g = doubles(gy);
      linear.zeroGrad();
      Tensor gx = linear.backward(arena, x, gy);
      DoubleSupplier loss = () -> {
        double[] yy = reference(xv, w, b, rows, in, out);
        double sum = 0;
        for (int i = 0; i < yy.length; i++) {
          sum += yy[i] * g[i];
        }
        return sum;
      };
      double budget = Tolerances.LINEAR_BACKWARD;
      assertClose(FiniteDifferences.gradient(xv, loss), doubles(gx), budget, "grad x");
      assertClose(FiniteDifferences.gradient(w, loss), doubles(linear.weight().grad()), budget,
          "grad weight");
      if (bias) {
        assertClose(FiniteDifferences.gradient(b, loss), doubles(linear.bias().grad()), budget,
            "grad bias");
      }
    }
  }

  @Test
  void badShapesAreRejected() {
    try (Linear linear = new Linear(3, 2, true, 1); Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> linear.forward(arena, Tensor.zeros(arena, 4, 5)));
      assertEquals("input: expected shape (..., 3), got (4, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> linear.backward(arena, Tensor.zeros(arena, 4, 3), Tensor.zeros(arena, 5, 2)));
      assertEquals("gradOutput: expected 4 rows (as input (4, 3)), got shape (5, 2)",
          e.getMessage());
    }
  }
}
