package org.seq4j.internal;

import java.lang.foreign.MemorySegment;

/**
 * Argument checks shared by the public API, run before any native call so that a bad argument is
 * an exception that names it, never a crash.
 */
public final class Checks {
  private Checks() {}

  /**
   * Throws unless {@code segment} may be used now by this thread.
   *
   * @param segment the tensor's memory
   * @param name the argument's name, for the message
   * @throws IllegalStateException if its arena is closed
   * @throws WrongThreadException if its arena is confined to another thread
   */
  public static void usable(MemorySegment segment, String name) {
    if (!segment.scope().isAlive()) {
      throw new IllegalStateException(name + ": the tensor's arena is closed");
    }
    if (!segment.isAccessibleBy(Thread.currentThread())) {
      throw new WrongThreadException(
          name + ": the tensor belongs to a confined arena of another thread and was used from"
              + " thread '" + Thread.currentThread().getName() + "'; use Arena.ofShared() to share"
              + " tensors between threads");
    }
  }

  /**
   * {@link #usable(MemorySegment, String)} for an argument named {@code name + part}, building the
   * name only when the check fails (this runs on allocation-free paths).
   */
  public static void usable(MemorySegment segment, String name, String part) {
    if (!segment.scope().isAlive() || !segment.isAccessibleBy(Thread.currentThread())) {
      usable(segment, name + part);
    }
  }

  /** Throws unless {@code out} and {@code input} occupy disjoint memory. */
  public static void disjoint(MemorySegment out, String outName, MemorySegment input,
      String inputName) {
    // address arithmetic rather than asOverlappingSlice: this runs on allocation-free paths
    boolean overlapping = out.byteSize() > 0 && input.byteSize() > 0
        && out.address() < input.address() + input.byteSize()
        && input.address() < out.address() + out.byteSize();
    if (overlapping) {
      throw new IllegalArgumentException(
          outName + ": must not share memory with " + inputName + " (the result would overwrite"
              + " its own input)");
    }
  }
}
