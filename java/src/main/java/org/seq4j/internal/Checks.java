package org.seq4j.internal;

import java.lang.foreign.MemorySegment;

/**
 * Argument checks shared by the public API, run before any native call so that a bad argument is
 * an exception that names it, never a crash.
 *
 * <p>The four families, each in one place:
 *
 * <ul>
 *   <li>{@link #usable}: the tensor's arena is open and this thread may touch it ({@link
 *       IllegalStateException} / {@link WrongThreadException} naming the argument, never the
 *       JDK's "Already closed" or "Attempted access outside owning thread");
 *   <li>{@link #writable}: {@link #usable}, and the memory is not read-only (a tensor over {@code
 *       segment.asReadOnly()} or a read-only mapped file would crash native code that writes it);
 *   <li>{@link #disjoint} and {@link #overlaps}: two tensors' address ranges do not overlap;
 *   <li>{@link #multiply} and {@link #add}: size arithmetic that cannot wrap around.
 * </ul>
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

  /**
   * Throws unless {@code segment} may be written now by this thread: {@link #usable}, and not
   * read-only. Every tensor that a call writes (an output, a state updated in place, a parameter
   * an optimizer steps, a gradient a backward adds into) passes here before the native call.
   *
   * @throws IllegalArgumentException if the memory is read-only
   * @throws IllegalStateException if its arena is closed
   * @throws WrongThreadException if its arena is confined to another thread
   */
  public static void writable(MemorySegment segment, String name) {
    usable(segment, name);
    if (segment.isReadOnly()) {
      throw readOnly(name);
    }
  }

  /** {@link #writable(MemorySegment, String)} for {@code name + part}, the name built on failure. */
  public static void writable(MemorySegment segment, String name, String part) {
    if (!segment.scope().isAlive() || !segment.isAccessibleBy(Thread.currentThread())
        || segment.isReadOnly()) {
      writable(segment, name + part);
    }
  }

  private static IllegalArgumentException readOnly(String name) {
    return new IllegalArgumentException(
        name + ": expected writable memory, got a read-only tensor (a read-only segment or"
            + " mapped file); this call writes it, so pass a writable copy (Tensor.copy)");
  }

  /** Whether the address ranges of {@code a} and {@code b} share at least one byte. */
  public static boolean overlaps(MemorySegment a, MemorySegment b) {
    // address arithmetic rather than asOverlappingSlice: this runs on allocation-free paths
    return a.byteSize() > 0 && b.byteSize() > 0
        && a.address() < b.address() + b.byteSize()
        && b.address() < a.address() + a.byteSize();
  }

  /** Throws unless {@code out} and {@code input} occupy disjoint memory. */
  public static void disjoint(MemorySegment out, String outName, MemorySegment input,
      String inputName) {
    if (overlaps(out, input)) {
      throw new IllegalArgumentException(
          outName + ": must not share memory with " + inputName + " (the result would overwrite"
              + " its own input)");
    }
  }

  /**
   * Throws unless two tensors that a call writes occupy disjoint memory (two outputs, or an output
   * and a state the call updates).
   */
  public static void disjointOutputs(MemorySegment first, String firstName,
      MemorySegment second, String secondName) {
    if (overlaps(first, second)) {
      throw new IllegalArgumentException(
          firstName + ": must not share memory with " + secondName + " (both are written by this"
              + " call, so one would overwrite the other)");
    }
  }

  /**
   * {@code a * b}, or an {@link IllegalArgumentException} naming {@code name} and {@code what}
   * (the shape or sizes it came from) when the product does not fit in a long.
   */
  public static long multiply(long a, long b, String name, Object what) {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException overflow) {
      throw tooLarge(name, what, a + " * " + b, overflow);
    }
  }

  /** {@code a + b}, or an {@link IllegalArgumentException} as {@link #multiply}. */
  public static long add(long a, long b, String name, Object what) {
    try {
      return Math.addExact(a, b);
    } catch (ArithmeticException overflow) {
      throw tooLarge(name, what, a + " + " + b, overflow);
    }
  }

  private static IllegalArgumentException tooLarge(String name, Object what, String operation,
      ArithmeticException overflow) {
    return new IllegalArgumentException(
        name + ": " + what + " is too large: " + operation + " overflows a long (expected at most "
            + Long.MAX_VALUE + ")", overflow);
  }
}
