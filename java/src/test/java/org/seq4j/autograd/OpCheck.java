package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.lang.foreign.Arena;
import java.util.Random;
import java.util.function.Function;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.FiniteDifferences;

/**
 * Checks one recorded op against its float64 reference: the forward elementwise, and the backward
 * of every input against central finite differences of {@code L(v) = Σ w · reference(v)} with
 * seeded random weights w (the upstream gradient fed to {@link Tensor#backward(Tensor)}), so that
 * each op is checked alone, not through other ops' backwards.
 */
final class OpCheck {
  private OpCheck() {}

  /** Seeded standard normals. */
  static double[] normal(long seed, int n) {
    Random random = new Random(seed);
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      v[i] = random.nextGaussian();
    }
    return v;
  }

  /** Seeded values with |v| in [low, low + 1), random sign unless {@code positive}. */
  static double[] awayFromZero(long seed, int n, double low, boolean positive) {
    Random random = new Random(seed);
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      double magnitude = low + random.nextDouble();
      v[i] = positive || random.nextBoolean() ? magnitude : -magnitude;
    }
    return v;
  }

  /** The values rounded to float, as doubles: the exact inputs the float32 kernel sees. */
  static double[] rounded(double[] v) {
    double[] out = new double[v.length];
    for (int i = 0; i < v.length; i++) {
      out[i] = (float) v[i];
    }
    return out;
  }

  /**
   * Runs the check.
   *
   * @param what names the case in failures
   * @param inputs the inputs' values (rounded to float in place)
   * @param shapes the inputs' shapes
   * @param expectedShape the output's shape
   * @param op the op under test on tensors that require a gradient
   * @param reference the float64 reference over the (perturbed) arrays
   */
  static void check(String what, double[][] inputs, long[][] shapes, long[] expectedShape,
      Function<Tensor[], Tensor> op, Function<double[][], double[]> reference,
      double forwardTolerance, double backwardTolerance) {
    for (int k = 0; k < inputs.length; k++) {
      inputs[k] = rounded(inputs[k]);
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor[] tensors = new Tensor[inputs.length];
      for (int k = 0; k < inputs.length; k++) {
        tensors[k] = Arrays64.tensor(arena, inputs[k], shapes[k]).requiresGrad(true);
      }
      Tensor out = op.apply(tensors);
      assertArrayEquals(expectedShape, out.shape().dims(), what + ": shape");
      double[] expected = reference.apply(inputs);
      Arrays64.assertClose(expected, Arrays64.doubles(out), forwardTolerance, what + " forward");
      double[] weights = rounded(normal(12345, expected.length));
      out.backward(Arrays64.tensor(arena, weights, expectedShape));
      for (int k = 0; k < inputs.length; k++) {
        double[] v = inputs[k];
        double[] numeric = FiniteDifferences.gradient(v, () -> {
          double[] y = reference.apply(inputs);
          double loss = 0;
          for (int i = 0; i < y.length; i++) {
            loss += weights[i] * y[i];
          }
          return loss;
        });
        assertNotNull(tensors[k].grad(), what + ": no gradient reached input " + k);
        assertArrayEquals(shapes[k], tensors[k].grad().shape().dims(), what + ": grad shape");
        Arrays64.assertClose(numeric, Arrays64.doubles(tensors[k].grad()), backwardTolerance,
            what + " backward of input " + k);
      }
    }
  }
}
