package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import org.junit.jupiter.api.Test;

/** A million calls leave native memory where it was: nothing leaks per call or per arena. */
class ResourceLeakTest {
  /** glibc's struct mallinfo2: ten size_t fields. */
  private static final MemoryLayout MALLINFO2 = MemoryLayout.structLayout(
      JAVA_LONG.withName("arena"), JAVA_LONG.withName("ordblks"), JAVA_LONG.withName("smblks"),
      JAVA_LONG.withName("hblks"), JAVA_LONG.withName("hblkhd"), JAVA_LONG.withName("usmblks"),
      JAVA_LONG.withName("fsmblks"), JAVA_LONG.withName("uordblks"),
      JAVA_LONG.withName("fordblks"), JAVA_LONG.withName("keepcost"));

  private static long mallocInUse() throws Throwable {
    Linker linker = Linker.nativeLinker();
    MethodHandle mallinfo2 = linker.downcallHandle(
        linker.defaultLookup().find("mallinfo2").orElseThrow(), FunctionDescriptor.of(MALLINFO2));
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = (MemorySegment) mallinfo2.invokeExact(
          (java.lang.foreign.SegmentAllocator) arena);
      return info.get(JAVA_LONG, 7 * 8) + info.get(JAVA_LONG, 4 * 8);
    }
  }

  private static float run(int calls) {
    float checksum = 0;
    for (int block = 0; block < calls / 1000; block++) {
      try (Arena arena = Arena.ofConfined()) {
        Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4}, 2, 2);
        Tensor out = Tensor.zeros(arena, 2, 2);
        for (int i = 0; i < 500; i++) {
          TensorOps.matmul(a, a, out, MatmulOptions.DEFAULT.backend(
              (i & 1) == 0 ? Backend.ONEDNN : Backend.BLAS));
          TensorOps.add(out, a, out);
        }
        checksum += out.get(0, 0);
      }
    }
    return checksum;
  }

  @Test
  void aMillionCallsDoNotGrowNativeMemory() throws Throwable {
    run(100_000); // warm up: JIT, oneDNN's kernel cache, thread-local buffers
    long before = mallocInUse();
    float checksum = run(1_000_000);
    long after = mallocInUse();
    assertEquals(1000 * 8f, checksum, "every block computes a·a + a, whose first element is 8");
    long growth = after - before;
    // 8 bytes per call leaked would be 8 MB; allow 4 MB of unrelated JVM activity.
    assertTrue(growth < 4L << 20, "native memory grew by " + growth + " bytes");
  }
}
