package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.reference.FiniteDifferences;

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

  static double[] d(Tensor t) {
    float[] f = t.toArray();
    double[] out = new double[f.length];
    for (int i = 0; i < f.length; i++) {
      out[i] = f[i];
    }
    return out;
  }

  static void close(double[] expected, double[] actual, double tolerance, String what) {
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], actual[i], tolerance * Math.max(1, Math.abs(expected[i])),
          what + "[" + i + "]");
    }
  }

  @ParameterizedTest(name = "rows={0} in={1} out={2} bias={3}")
  @CsvSource({"1, 1, 1, true", "6, 3, 17, true", "5, 17, 3, false", "63, 9, 4, true"})
  void forwardAndBackwardMatchTheReference(int rows, int in, int out, boolean bias) {
    try (Linear linear = new Linear(in, out, bias, 7); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 3, rows / 3 > 0 && rows % 3 == 0 ? 3 : 1,
          rows / (rows % 3 == 0 && rows / 3 > 0 ? 3 : 1), in);
      double[] xv = d(x);
      double[] w = d(linear.weight().data());
      double[] b = bias ? d(linear.bias().data()) : null;
      Tensor y = linear.forward(arena, x);
      assertEquals(out, y.dim(-1));
      close(reference(xv, w, b, rows, in, out), d(y), 1e-5, "y");
      Tensor gy = Tensor.randomNormal(arena, 4, y.shape().dims());
      double[] g = d(gy);
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
      close(FiniteDifferences.gradient(xv, loss, 1e-6), d(gx), 1e-4, "grad x");
      close(FiniteDifferences.gradient(w, loss, 1e-6), d(linear.weight().grad()), 1e-4,
          "grad weight");
      if (bias) {
        close(FiniteDifferences.gradient(b, loss, 1e-6), d(linear.bias().grad()), 1e-4,
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
