package org.seq4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The shared checks themselves, and the allocator's size arithmetic (issue 12). */
class ChecksTest {
  @Test
  void theAllocatorRefusesASizeWhoseRoundingWrapsInsteadOfHandingOutATinyBlock() {
    try (Arena arena = Arena.ofConfined()) {
      // rounding Long.MAX_VALUE - 10 up to 64 bytes wrapped to a negative number, which became a
      // 64-byte block behind a segment of 2^63 bytes
      var e = assertThrows(IllegalArgumentException.class,
          () -> NativeMemory.allocate(arena, Long.MAX_VALUE - 10));
      assertTrue(e.getMessage().startsWith("bytes: "), e.getMessage());
      assertTrue(e.getMessage().contains(String.valueOf(Long.MAX_VALUE - 10)), e.getMessage());
      assertTrue(e.getMessage().contains("overflows"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> NativeMemory.allocate(arena, -1));
      assertEquals("bytes: expected >= 0, got -1", e.getMessage());
      MemorySegment block = NativeMemory.allocate(arena, 100);
      assertEquals(100, block.byteSize());
      assertEquals(0, block.address() % 64);
      assertEquals(0, NativeMemory.allocate(arena, 0).byteSize());
    }
  }

  @Test
  void sizeArithmeticNamesTheArgumentAndWhatItCameFrom() {
    assertEquals(12, Checks.multiply(3, 4, "n", "x"));
    assertEquals(7, Checks.add(3, 4, "n", "x"));
    var e = assertThrows(IllegalArgumentException.class,
        () -> Checks.multiply(Long.MAX_VALUE, 2, "dims", "(2, big)"));
    assertEquals("dims: (2, big) is too large: " + Long.MAX_VALUE + " * 2 overflows a long"
        + " (expected at most " + Long.MAX_VALUE + ")", e.getMessage());
    assertTrue(e.getCause() instanceof ArithmeticException);
    e = assertThrows(IllegalArgumentException.class,
        () -> Checks.add(Long.MAX_VALUE, 1, "bytes", "it"));
    assertTrue(e.getMessage().startsWith("bytes: it is too large"), e.getMessage());
  }

  @Test
  void overlapIsOnAddressRangesAndEmptyRangesOverlapNothing() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment whole = arena.allocate(64, 64);
      assertTrue(Checks.overlaps(whole, whole));
      assertTrue(Checks.overlaps(whole.asSlice(0, 8), whole.asSlice(4, 8)));
      assertFalse(Checks.overlaps(whole.asSlice(0, 8), whole.asSlice(8, 8)));
      assertFalse(Checks.overlaps(whole.asSlice(8, 0), whole));
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checks.disjointOutputs(whole.asSlice(0, 8), "a", whole.asSlice(4, 8), "b"));
      assertTrue(e.getMessage().startsWith("a: must not share memory with b"), e.getMessage());
      Checks.disjoint(whole.asSlice(0, 8), "out", whole.asSlice(8, 8), "in");
    }
  }

  @Test
  void writableRefusesReadOnlyMemoryAndChecksLifetimeFirst() {
    MemorySegment closed;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment segment = arena.allocate(16);
      Checks.writable(segment, "out");
      var e = assertThrows(IllegalArgumentException.class,
          () -> Checks.writable(segment.asReadOnly(), "state", ".cell"));
      assertTrue(e.getMessage().startsWith("state.cell: expected writable memory, got a read-only"),
          e.getMessage());
      Checks.usable(segment.asReadOnly(), "input");
      closed = segment;
    }
    var e = assertThrows(IllegalStateException.class, () -> Checks.writable(closed, "out"));
    assertEquals("out: the tensor's arena is closed", e.getMessage());
  }
}
