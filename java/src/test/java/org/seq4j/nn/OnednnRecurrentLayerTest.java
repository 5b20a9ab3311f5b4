package org.seq4j.nn;

import org.seq4j.Backend;

/** Every recurrent-layer test on oneDNN's RNN primitives. */
class OnednnRecurrentLayerTest extends RecurrentLayerTest {
  @Override
  Backend backend() {
    return Backend.ONEDNN;
  }
}
