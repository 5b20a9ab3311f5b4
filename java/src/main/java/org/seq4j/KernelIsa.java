package org.seq4j;

/**
 * The copies of seq4j's own vectorized kernels (the BLAS backend's cell kernels and the attention kernels; under {@link #BASELINE}
 * attention runs its scalar and OpenBLAS fallback), for {@link
 * Seq4j#selectKernels(KernelIsa)}: each computes the same result within the op's tolerance.
 */
public enum KernelIsa {
  /** The best copy the CPU supports, chosen at load (the default). */
  BEST,
  /** x86-64 without AVX: the scalar fallback every machine runs. */
  BASELINE,
  /** AVX2 with FMA. */
  AVX2,
  /** AVX-512. */
  AVX512
}
