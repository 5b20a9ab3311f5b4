package org.seq4j.nn;

import org.seq4j.Backend;

/** Every recurrent-layer test on seq4j's BLAS backend (OpenBLAS sgemm and its own cell kernels). */
class BlasRecurrentLayerTest extends RecurrentLayerTest {
  @Override
  Backend backend() {
    return Backend.BLAS;
  }
}
