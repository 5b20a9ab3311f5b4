package org.seq4j;

import java.util.Objects;

/**
 * Options of {@link TensorOps#matmul(Tensor, Tensor, Tensor, MatmulOptions)}: computes {@code out
 * = alpha * op(a) * op(b) + beta * out}, where {@code op} transposes its argument when asked.
 * Immutable; start from {@link #DEFAULT} and change what you need.
 *
 * <pre>{@code
 * // out += aᵀ · b on OpenBLAS
 * TensorOps.matmul(a, b, out, MatmulOptions.DEFAULT.transposeA(true).accumulate().backend(Backend.BLAS));
 * }</pre>
 *
 * @param transposeA whether {@code a} is used transposed
 * @param transposeB whether {@code b} is used transposed
 * @param alpha the factor of the product
 * @param beta the factor of the previous contents of {@code out}; 0 overwrites it without reading
 * @param backend which implementation runs the product
 */
public record MatmulOptions(
    boolean transposeA, boolean transposeB, float alpha, float beta, Backend backend) {
  /** {@code out = a · b} on the automatically chosen backend. */
  public static final MatmulOptions DEFAULT = new MatmulOptions(false, false, 1f, 0f, Backend.AUTO);

  /** Checks the fields. */
  public MatmulOptions {
    Objects.requireNonNull(backend, "backend");
    if (!Float.isFinite(alpha) || !Float.isFinite(beta)) {
      throw new IllegalArgumentException(
          "alpha, beta: expected finite values, got alpha=" + alpha + " beta=" + beta);
    }
  }

  /** These options with {@code a} transposed or not. */
  public MatmulOptions transposeA(boolean transpose) {
    return new MatmulOptions(transpose, transposeB, alpha, beta, backend);
  }

  /** These options with {@code b} transposed or not. */
  public MatmulOptions transposeB(boolean transpose) {
    return new MatmulOptions(transposeA, transpose, alpha, beta, backend);
  }

  /** These options with the product scaled by {@code alpha}. */
  public MatmulOptions alpha(float alpha) {
    return new MatmulOptions(transposeA, transposeB, alpha, beta, backend);
  }

  /** These options with the previous contents of {@code out} scaled by {@code beta} and kept. */
  public MatmulOptions beta(float beta) {
    return new MatmulOptions(transposeA, transposeB, alpha, beta, backend);
  }

  /** These options adding the product to {@code out} ({@code beta = 1}). */
  public MatmulOptions accumulate() {
    return beta(1f);
  }

  /** These options on the given backend. */
  public MatmulOptions backend(Backend backend) {
    return new MatmulOptions(transposeA, transposeB, alpha, beta, backend);
  }
}
