package org.seq4j.train;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;

/**
 * Parameter initialisers with PyTorch's definitions, seeded. Each overwrites the tensor and
 * returns it; after initialising a layer's {@code Parameter}, call its {@code markChanged()}.
 * They run once per model, in Java.
 */
public final class Initializers {
  private Initializers() {}

  private static RandomGenerator random(long seed) {
    return RandomGeneratorFactory.of("L64X128MixRandom").create(seed);
  }

  /** Uniform in {@code [low, high)}. */
  public static Tensor uniform(Tensor tensor, double low, double high, long seed) {
    if (!(low < high) || Double.isInfinite(low) || Double.isInfinite(high)) {
      throw new IllegalArgumentException(
          "low, high: expected finite low < high, got " + low + " and " + high);
    }
    requireWritable(tensor);
    RandomGenerator random = random(seed);
    for (long i = 0; i < tensor.size(); i++) {
      tensor.segment().setAtIndex(JAVA_FLOAT, i, (float) (low + (high - low) * random.nextDouble()));
    }
    return tensor;
  }

  /**
   * Xavier (Glorot) uniform: {@code U(−b, b)} with {@code b = gain·√(6 / (fanIn + fanOut))}, where
   * for a {@code (out, in, ...)} tensor {@code fanIn = in·receptive} and {@code fanOut =
   * out·receptive}.
   */
  public static Tensor xavierUniform(Tensor tensor, double gain, long seed) {
    if (tensor == null) {
      throw new NullPointerException("tensor");
    }
    if (tensor.shape().rank() < 2) {
      throw new IllegalArgumentException(
          "tensor: expected at least 2 dimensions (out, in, ...), got shape " + tensor.shape());
    }
    if (tensor.size() == 0) {
      requireWritable(tensor);
      return tensor; // nothing to initialise (PyTorch: a no-op), and no fan to divide by
    }
    long receptive = tensor.size() / (tensor.dim(0) * tensor.dim(1));
    double fanIn = tensor.dim(1) * (double) receptive;
    double fanOut = tensor.dim(0) * (double) receptive;
    double bound = gain * Math.sqrt(6.0 / (fanIn + fanOut));
    return uniform(tensor, -bound, bound, seed);
  }

  /**
   * A (semi-)orthogonal matrix times {@code gain}: the tensor viewed as {@code (rows, rest)} has
   * orthonormal rows or columns, whichever are fewer (Saxe et al.; PyTorch's {@code orthogonal_}),
   * from the QR decomposition of a Gaussian matrix with the signs of R's diagonal folded in.
   */
  public static Tensor orthogonal(Tensor tensor, double gain, long seed) {
    if (tensor == null) {
      throw new NullPointerException("tensor");
    }
    if (tensor.shape().rank() < 2) {
      throw new IllegalArgumentException(
          "tensor: expected at least 2 dimensions, got shape " + tensor.shape());
    }
    requireWritable(tensor);
    if (tensor.size() == 0) {
      return tensor; // nothing to initialise (PyTorch: a no-op)
    }
    long rowCount = tensor.dim(0);
    long columnCount = tensor.size() / rowCount;
    if (rowCount > Integer.MAX_VALUE - 8 || columnCount > Integer.MAX_VALUE - 8) {
      // the QR runs on Java arrays, indexed by int
      throw new IllegalArgumentException("tensor: expected fewer than 2^31 - 8 rows and columns"
          + " for orthogonal initialisation, got shape " + tensor.shape() + " viewed as ("
          + rowCount + ", " + columnCount + ")");
    }
    int rows = (int) rowCount;
    int columns = (int) columnCount;
    boolean transposed = rows < columns;
    int m = transposed ? columns : rows; // tall: m >= n
    int n = transposed ? rows : columns;
    RandomGenerator random = random(seed);
    double[][] a = new double[m][n];
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        a[i][j] = random.nextGaussian();
      }
    }
    double[][] q = thinQ(a, m, n);
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < columns; j++) {
        double value = transposed ? q[j][i] : q[i][j];
        tensor.segment().setAtIndex(JAVA_FLOAT, (long) i * columns + j, (float) (gain * value));
      }
    }
    return tensor;
  }

  private static void requireWritable(Tensor tensor) {
    if (tensor == null) {
      throw new NullPointerException("tensor");
    }
    Checks.writable(tensor.segment(), "tensor");
  }

  /** Q of A = QR (m >= n) by modified Gram-Schmidt, with R's diagonal made positive. */
  private static double[][] thinQ(double[][] a, int m, int n) {
    double[][] q = new double[m][n];
    for (int j = 0; j < n; j++) {
      double[] v = new double[m];
      for (int i = 0; i < m; i++) {
        v[i] = a[i][j];
      }
      for (int pass = 0; pass < 2; pass++) { // twice is enough for orthogonality in double
        for (int k = 0; k < j; k++) {
          double dot = 0;
          for (int i = 0; i < m; i++) {
            dot += q[i][k] * v[i];
          }
          for (int i = 0; i < m; i++) {
            v[i] -= dot * q[i][k];
          }
        }
      }
      double norm = 0;
      for (int i = 0; i < m; i++) {
        norm += v[i] * v[i];
      }
      norm = Math.sqrt(norm);
      for (int i = 0; i < m; i++) {
        q[i][j] = v[i] / norm; // Gram-Schmidt's R has a positive diagonal by construction
      }
    }
    return q;
  }
}
