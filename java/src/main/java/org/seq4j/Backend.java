package org.seq4j;

/**
 * Which implementation runs an op. Every backend computes the same result within the op's
 * documented tolerance; {@link #AUTO} picks the faster one for the shape.
 */
public enum Backend {
  /**
   * Let seq4j choose: oneDNN for {@code matmul}; for the recurrent layers, a table measured per
   * shape and CPU (on CPUs with AVX-512: BLAS for training on at most 6 samples and single-step
   * inference on at most 4, oneDNN otherwise; elsewhere BLAS for inference on at most 8 samples,
   * training on at most 32, and LSTMs with peepholes, oneDNN otherwise). {@code
   * RecurrentLayer.resolvedBackend} tells what a call will use.
   */
  AUTO,
  /** oneDNN's primitives and GEMM. */
  ONEDNN,
  /**
   * OpenBLAS's GEMM and seq4j's own vectorized kernels (AVX-512, AVX2 or baseline, chosen for the
   * CPU), split across seq4j's thread pool.
   */
  BLAS
}
