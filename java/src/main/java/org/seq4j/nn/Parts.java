package org.seq4j.nn;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * All-or-nothing construction of a module made of parts that each own native memory: each part is
 * {@link #add}ed as it is made, and a constructor that fails later {@link #closeAfterFailure}s
 * those made so far, so a failed {@code new} leaves nothing behind.
 */
final class Parts {
  private final List<AutoCloseable> made = new ArrayList<>();

  /** Keeps {@code part} (null is allowed: nothing to close) and returns it. */
  <T extends AutoCloseable> T add(T part) {
    if (part != null) {
      made.add(part);
    }
    return part;
  }

  /**
   * The layers of a stack, made all or nothing: {@code numLayers} (at least 1) layers from {@code
   * layer}, or, when any check or construction fails, none, with those made and {@code norm} closed.
   */
  static <L extends AutoCloseable> List<L> stack(int numLayers, IntFunction<L> layer,
      AutoCloseable norm) {
    Parts parts = new Parts();
    List<L> layers = new ArrayList<>();
    try {
      parts.add(norm);
      if (numLayers < 1) {
        throw new IllegalArgumentException("numLayers: expected >= 1, got " + numLayers);
      }
      for (int i = 0; i < numLayers; i++) {
        L made = layer.apply(i);
        if (made == null) {
          throw new NullPointerException("layer: returned null for layer " + i);
        }
        layers.add(parts.add(made));
      }
    } catch (RuntimeException | Error e) {
      parts.closeAfterFailure(e);
      throw e;
    }
    return layers;
  }

  /** Closes every part made so far, the last first, adding their failures to {@code failure}. */
  void closeAfterFailure(Throwable failure) {
    for (int i = made.size() - 1; i >= 0; i--) {
      try {
        made.get(i).close();
      } catch (Exception | Error e) {
        failure.addSuppressed(e);
      }
    }
    made.clear();
  }
}
