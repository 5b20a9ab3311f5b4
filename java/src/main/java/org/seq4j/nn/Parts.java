package org.seq4j.nn;

import java.util.ArrayList;
import java.util.List;

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
