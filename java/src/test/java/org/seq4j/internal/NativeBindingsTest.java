package org.seq4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;
import org.seq4j.Seq4jException;

/** The status path of the typed bindings: a native failure becomes one Seq4jException. */
class NativeBindingsTest {

  @Test
  void nativeFailuresSurfaceAsSeq4jExceptionWithTheNativeMessage() throws Throwable {
    // Java validates before calling, so call the binding directly to reach the native checks.
    int status = NativeBindings.matmulStatus(MemorySegment.NULL, MemorySegment.NULL,
        MemorySegment.NULL, -1L, 1L, 1L, 0, 0, 1f, 0f, 2);
    var e = assertThrows(Seq4jException.class, () -> NativeBindings.check(status));
    assertEquals(Seq4jException.Status.INVALID_ARGUMENT, e.status());
    assertEquals(1, e.code());
    assertEquals("seq4j_matmul: m must be >= 0, got -1 [status INVALID_ARGUMENT (1)]",
        e.getMessage());

    int badBackend = NativeBindings.matmulStatus(MemorySegment.NULL,
        MemorySegment.NULL, MemorySegment.NULL, 0L, 0L, 0L, 0, 0, 1f, 0f, 7);
    assertEquals(0, badBackend, "empty products return before the backend is chosen");
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment one = arena.allocate(4);
      int unknown = NativeBindings.matmulStatus(one, one.asSlice(0, 4), one, 1L, 1L,
          1L, 0, 0, 1f, 0f, 7);
      assertEquals(1, unknown);
      assertEquals("seq4j_matmul: c overlaps a", NativeBindings.lastError());
    }
  }

  @Test
  void theTypedMethodsThrowTheNativeFailure() {
    // Java's checks are bypassed: the binding itself reaches native code's checks
    var e = assertThrows(Seq4jException.class, () -> NativeBindings.matmul(MemorySegment.NULL,
        MemorySegment.NULL, MemorySegment.NULL, -1L, 1L, 1L, false, false, 1f, 0f,
        AbiConstants.BACKEND_BLAS));
    assertEquals(Seq4jException.Status.INVALID_ARGUMENT, e.status());
    assertEquals("seq4j_matmul: m must be >= 0, got -1 [status INVALID_ARGUMENT (1)]",
        e.getMessage());
    assertEquals(0, NativeBindings.noop());
    assertEquals(0, NativeBindings.noopOrdinary());
  }
}
