package org.seq4j;

/**
 * Which implementation runs an op. Every backend computes the same result within the op's
 * documented tolerance; {@link #AUTO} picks the faster one for the shape.
 */
public enum Backend {
  /**
   * Let seq4j choose: oneDNN for {@code matmul}; for the recurrent layers, a table measured per
   * shape (BLAS for inference on at most 8 samples, training on at most 32, and LSTMs with
   * peepholes; oneDNN otherwise).
   */
  AUTO(0),
  /** oneDNN's primitives and GEMM. */
  ONEDNN(1),
  /**
   * OpenBLAS's GEMM and seq4j's own vectorized kernels (AVX-512, AVX2 or baseline, chosen for the
   * CPU), split across seq4j's thread pool.
   */
  BLAS(2);

  private final int nativeCode;

  Backend(int nativeCode) {
    this.nativeCode = nativeCode;
  }

  /** The value of the matching {@code SEQ4J_BACKEND_*} constant in {@code seq4j.h}. */
  public int nativeCode() {
    return nativeCode;
  }
}
