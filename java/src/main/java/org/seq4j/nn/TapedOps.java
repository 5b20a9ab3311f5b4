package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.internal.NativeBindings;
import org.seq4j.Tape;

/** The small ops the Transformer layers compose, each recorded on an active {@link Tape}. */
final class TapedOps {
  private TapedOps() {}

  /** a + b (a residual connection): the gradient flows unchanged to both. */
  static Tensor add(Arena arena, Tensor a, Tensor b) {
    Tensor out = Tensor.uninitialized(arena, a.shape().dims());
    TensorOps.add(a, b, out);
    Tape tape = Tape.active();
    if (tape != null) {
      tape.record(List.of(a, b), List.of(out), gradients -> {
        List<Tensor> result = new ArrayList<>();
        result.add(gradients.get(0));
        result.add(gradients.get(0));
        return result;
      });
    }
    return out;
  }

  /**
   * Inverted dropout with probability p and a seed (x itself when not training or p = 0). Applied
   * to a gradient with the same seed, it is its own backward.
   */
  static Tensor dropout(Arena arena, Tensor x, float p, long seed, boolean training) {
    if (!training || p == 0) {
      return x;
    }
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.dropout(out.segment(), x.segment(), x.size(), p, seed);
    Tape tape = Tape.active();
    if (tape != null) {
      tape.record(List.of(x), List.of(out), gradients -> {
        List<Tensor> result = new ArrayList<>();
        result.add(gradients.get(0) == null ? null
            : dropout(arena, gradients.get(0), p, seed, true));
        return result;
      });
    }
    return out;
  }
}
