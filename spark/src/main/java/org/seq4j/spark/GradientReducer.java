package org.seq4j.spark;

import java.io.IOException;

/**
 * Sums one float vector across the workers of a training stage, in place: afterwards every worker
 * holds the same bits. Implementations fix the order of the additions, so a run is reproducible.
 */
interface GradientReducer extends AutoCloseable {
  /** Replaces {@code values} with the element-wise sum over all workers' {@code values}. */
  void sum(float[] values) throws IOException;

  @Override
  void close() throws IOException;
}
