package org.seq4j.autograd;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import java.util.function.Function;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.FiniteDifferences;

/**
 * Shared by the op tests: seeded values, row-major index arithmetic for the references, and the
 * gradient check. The check contracts an op's output with fixed random weights w, so the loss
 * {@code L = Σ w · op(x)} is a scalar whose gradient is what {@code out.backward(w)} leaves in
 * {@code x.grad()}, and compares that with central finite differences of the same contraction
 * of the float64 reference.
 */
final class GradCheck {
  private GradCheck() {}

  static double[] values(long seed, int n) {
    SplittableRandom random = new SplittableRandom(seed);
    double[] out = new double[n];
    for (int i = 0; i < n; i++) {
      // float-representable, so the float32 tensor and the reference see the same numbers
      out[i] = (float) (random.nextDouble() * 2 - 1);
    }
    return out;
  }

  static int size(long... dims) {
    long size = 1;
    for (long d : dims) {
      size *= d;
    }
    return Math.toIntExact(size);
  }

  /** The coordinates of row-major position {@code flat} in a tensor of shape dims. */
  static long[] unravel(long flat, long[] dims) {
    long[] index = new long[dims.length];
    for (int a = dims.length - 1; a >= 0; a--) {
      index[a] = flat % dims[a];
      flat /= dims[a];
    }
    return index;
  }

  /** The row-major position of coordinates index in a tensor of shape dims. */
  static int ravel(long[] index, long[] dims) {
    long flat = 0;
    for (int a = 0; a < dims.length; a++) {
      flat = flat * dims[a] + index[a];
    }
    return Math.toIntExact(flat);
  }

  /** A leaf that requires a gradient, holding values. */
  static Tensor leaf(Arena arena, double[] values, long... dims) {
    return Arrays64.tensor(arena, values, dims).requiresGrad(true);
  }

  /**
   * Runs {@code out.backward(w)} with seeded weights and checks {@code x.grad()} against finite
   * differences of {@code Σ w · reference(xValues)}, where reference reads xValues (the FD
   * perturbs it in place).
   */
  static void checkGradient(Arena arena, Tensor out, long seed, double[][] inputs,
      Tensor[] leaves, Function<double[][], double[]> reference, double tolerance, String what) {
    double[] w = values(seed, size(out.shape().dims()));
    out.backward(Arrays64.tensor(arena, w, out.shape().dims()));
    for (int i = 0; i < inputs.length; i++) {
      if (leaves[i] == null || !leaves[i].requiresGrad()) {
        continue;
      }
      double[] expected = FiniteDifferences.gradient(inputs[i], () -> {
        double[] y = reference.apply(inputs);
        double sum = 0;
        for (int j = 0; j < y.length; j++) {
          sum += w[j] * y[j];
        }
        return sum;
      });
      Arrays64.assertClose(expected, Arrays64.doubles(leaves[i].grad()), tolerance,
          what + " gradient of input " + i);
    }
  }
}
