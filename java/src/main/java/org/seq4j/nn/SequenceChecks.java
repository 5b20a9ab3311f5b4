package org.seq4j.nn;

import org.seq4j.Tensor;
import org.seq4j.internal.Checks;

/**
 * Entry checks of the Transformer layers, under the names of their own parameters ({@code x},
 * {@code target}, {@code memory}, {@code step}), run before the call reaches the attention and
 * normalisation parts, whose messages would name theirs ({@code query}, {@code key}).
 */
final class SequenceChecks {
  private SequenceChecks() {}

  /**
   * A sequence {@code (T, N, features)}, or {@code (N, T, features)} when batch-first, that this
   * thread may read now.
   *
   * @param length the letter of its length in the message: T, L or S
   */
  static void requireSequence(Tensor t, String name, String length, long features,
      boolean batchFirst) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (t.shape().rank() != 3 || t.dim(2) != features) {
      throw new IllegalArgumentException(name + ": expected shape "
          + (batchFirst ? "(N, " + length + ", " : "(" + length + ", N, ") + features + "), got "
          + t.shape());
    }
    Checks.usable(t.segment(), name);
  }

  /** {@code other} has the batch of {@code first} (both checked by {@link #requireSequence}). */
  static void requireSameBatch(Tensor first, String firstName, Tensor other, String otherName,
      boolean batchFirst) {
    int axis = batchFirst ? 0 : 1;
    if (other.dim(axis) != first.dim(axis)) {
      throw new IllegalArgumentException(otherName + ": expected a batch of " + first.dim(axis)
          + " (that of " + firstName + " " + first.shape() + "), got shape " + other.shape());
    }
  }
}
