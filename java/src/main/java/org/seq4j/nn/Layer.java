package org.seq4j.nn;

import org.seq4j.Tensor;

/**
 * A module with one tensor in and one tensor out, so that it can be chained in a {@link
 * Sequential}: its result lives in the input's arena and, while gradients are recorded, takes part
 * in the graph (see {@link org.seq4j.Autograd}).
 */
public interface Layer {
  /** The result for {@code input}, allocated in {@code input}'s arena. */
  Tensor forward(Tensor input);
}
