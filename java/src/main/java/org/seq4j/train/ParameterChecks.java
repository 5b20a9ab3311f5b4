package org.seq4j.train;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import org.seq4j.internal.Checks;
import org.seq4j.nn.Parameter;

/**
 * The checks of the parameters that optimizers and gradient clipping write: named after the
 * parameter (its PyTorch name), run before any native call.
 */
final class ParameterChecks {
  private ParameterChecks() {}

  /**
   * At an optimizer's construction: no null, every value tensor writable, and no two parameters
   * sharing memory (the same parameter twice, or two views of one tensor, would be stepped twice
   * per step: a silently wrong update).
   */
  static List<Parameter> forOptimizer(Collection<Parameter> parameters) {
    List<Parameter> copy = new ArrayList<>(parameters.size());
    int index = 0;
    for (Parameter p : parameters) {
      if (p == null) {
        throw new NullPointerException("parameters[" + index + "]");
      }
      writableData(p);
      usableGrad(p);
      copy.add(p);
      index++;
    }
    requireDisjoint(copy, true);
    requireDisjoint(copy, false);
    return List.copyOf(copy);
  }

  /** At each step: the values still writable (their layer open), the gradient readable. */
  static void beforeStep(Parameter p) {
    writableData(p);
    usableGrad(p);
  }

  /** Before a gradient is written in place (clipping). */
  static void writableGrad(Parameter p) {
    Checks.writable(p.grad().segment(), "parameters: the gradient of ", p.name());
  }

  /** Before a gradient is read. */
  static void usableGrad(Parameter p) {
    Checks.usable(p.grad().segment(), "parameters: the gradient of ", p.name());
  }

  private static void writableData(Parameter p) {
    Checks.writable(p.data().segment(), "parameters: ", p.name());
  }

  /**
   * No two values (or no two gradients) overlap: sorted by address, each compared with the one
   * that reaches furthest among those before it (any overlap shows there).
   */
  private static void requireDisjoint(List<Parameter> parameters, boolean data) {
    List<Parameter> sorted = new ArrayList<>(parameters);
    sorted.sort(Comparator.comparingLong(p -> segment(p, data).address()));
    Parameter furthest = null;
    for (Parameter next : sorted) {
      if (segment(next, data).byteSize() == 0) {
        continue;
      }
      if (furthest != null && Checks.overlaps(segment(furthest, data), segment(next, data))) {
        String what = data ? "the values of " : "the gradient of ";
        throw new IllegalArgumentException("parameters: " + what + next.name()
            + " share memory with " + what + furthest.name() + " (the same parameter twice, or"
            + " two views of one tensor): each step would update that memory twice");
      }
      if (furthest == null || end(next, data) > end(furthest, data)) {
        furthest = next;
      }
    }
  }

  private static long end(Parameter p, boolean data) {
    MemorySegment s = segment(p, data);
    return s.address() + s.byteSize();
  }

  private static MemorySegment segment(Parameter p, boolean data) {
    return data ? p.data().segment() : p.grad().segment();
  }
}
