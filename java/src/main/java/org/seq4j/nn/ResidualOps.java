package org.seq4j.nn;

import java.lang.foreign.Arena;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.internal.NativeBindings;

/**
 * The small ops the Transformer layers compose inside their forward and backward: plain
 * computations that record nothing (each layer records itself once, as a whole; see {@link
 * org.seq4j.Autograd}).
 */
final class ResidualOps {
  private ResidualOps() {}

  /** a + b (a residual connection), in a new tensor. */
  static Tensor add(Arena arena, Tensor a, Tensor b) {
    Tensor out = Tensor.uninitialized(arena, a.shape().dims());
    TensorOps.add(a, b, out);
    return out;
  }

  /**
   * Inverted dropout with probability p and a seed (x itself when {@code on} is false or p = 0).
   * Applied to a gradient with the same seed, it is its own backward.
   */
  static Tensor dropout(Arena arena, Tensor x, float p, long seed, boolean on) {
    if (!on || p == 0) {
      return x;
    }
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.dropout(out.segment(), x.segment(), x.size(), p, seed);
    return out;
  }
}
