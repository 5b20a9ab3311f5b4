package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Uninitialised off-heap memory owned by an arena: {@link Arena#allocate} zeroes every byte, which
 * for large buffers that native code overwrites at once (outputs, oneDNN workspaces) costs a full
 * extra pass over memory. The block is freed when the arena closes.
 */
public final class NativeMemory {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle ALIGNED_ALLOC = LINKER.downcallHandle(
      LINKER.defaultLookup().find("aligned_alloc").orElseThrow(),
      FunctionDescriptor.of(ADDRESS, JAVA_LONG, JAVA_LONG));
  private static final MethodHandle FREE = LINKER.downcallHandle(
      LINKER.defaultLookup().find("free").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS));
  private static final long ALIGNMENT = 64;

  private NativeMemory() {}

  /**
   * {@code bytes} of uninitialised memory aligned to 64 bytes, freed when {@code arena} closes.
   *
   * @throws IllegalStateException if the arena is closed
   * @throws OutOfMemoryError if the system has no memory left
   */
  public static MemorySegment allocate(Arena arena, long bytes) {
    if (!arena.scope().isAlive()) {
      throw new IllegalStateException("arena: it is closed");
    }
    long rounded = Math.max(ALIGNMENT, (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT);
    MemorySegment raw;
    try {
      raw = (MemorySegment) ALIGNED_ALLOC.invokeExact(ALIGNMENT, rounded);
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
    if (raw.equals(MemorySegment.NULL)) {
      throw new OutOfMemoryError("seq4j: cannot allocate " + bytes + " bytes of native memory");
    }
    try {
      return raw.reinterpret(bytes, arena, NativeMemory::free);
    } catch (RuntimeException e) {
      free(raw);
      throw e;
    }
  }

  private static void free(MemorySegment block) {
    try {
      FREE.invokeExact(block);
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }
}
