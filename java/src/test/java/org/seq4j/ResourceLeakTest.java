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
import org.seq4j.nn.RecurrentLayer;

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

  /**
   * The smallest growth of malloc'd memory over three consecutive runs of {@code calls} calls. A
   * leak grows every run; the JVM's own native work (the JIT compiles in the background, with
   * arenas of many MB, and that of earlier tests may still be running) only some of them.
   */
  private static long smallestGrowth(java.util.function.IntToLongFunction work, int calls)
      throws Throwable {
    long smallest = Long.MAX_VALUE;
    for (int run = 0; run < 3; run++) {
      long before = mallocInUse();
      work.applyAsLong(calls);
      smallest = Math.min(smallest, mallocInUse() - before);
    }
    return smallest;
  }

  @Test
  void aMillionCallsDoNotGrowNativeMemory() throws Throwable {
    assertEquals(100 * 8f, run(100_000), "every block computes a·a + a, whose first element is 8");
    long growth = smallestGrowth(calls -> (long) run(calls), 1_000_000);
    // 8 bytes per call leaked would be 8 MB in every run; allow 4 MB of unrelated JVM activity.
    assertTrue(growth < 4L << 20, "native memory grew by " + growth + " bytes");
  }

  /** Streaming steps, inference and training passes of small recurrent layers on both backends. */
  private static float runRecurrent(int calls) {
    float checksum = 0;
    try (org.seq4j.nn.Lstm blas = org.seq4j.nn.Lstm.builder(4, 8).peepholes(true)
            .backend(Backend.BLAS).build();
        org.seq4j.nn.Gru onednn = org.seq4j.nn.Gru.builder(4, 8).backend(Backend.ONEDNN).build()) {
      for (int block = 0; block < calls / 1000; block++) {
        try (Arena arena = Arena.ofConfined()) {
          Tensor x = Tensor.full(arena, 0.5f, 2, 4);
          org.seq4j.nn.RecurrentState state = new org.seq4j.nn.RecurrentState(
              Tensor.zeros(arena, 1, 2, 8), Tensor.zeros(arena, 1, 2, 8));
          for (int i = 0; i < 990; i++) {
            blas.step(x, state, null);
          }
          Tensor sequence = Tensor.full(arena, 0.5f, 3, 2, 4);
          for (org.seq4j.nn.RecurrentLayer layer : new org.seq4j.nn.RecurrentLayer[] {blas, onednn}) {
            for (int i = 0; i < 4; i++) {
              org.seq4j.nn.RecurrentLayer.Result result = layer.forward(arena, sequence, null, null,
                  i % 2 == 0 ? org.seq4j.nn.Mode.INFERENCE : org.seq4j.nn.Mode.TRAINING);
              if (result.context() != null) {
                layer.backward(arena, result.context(), Tensor.ones(arena, 3, 2, 8), null);
              }
            }
          }
          checksum += state.hidden().get(0, 0, 0);
        }
      }
    }
    return checksum;
  }

  @Test
  void aMillionRecurrentCallsDoNotGrowNativeMemory() throws Throwable {
    float checksum = runRecurrent(20_000);  // warm up: packed weights, primitives, buffers
    assertTrue(checksum != 0 && Float.isFinite(checksum), "the steps compute: " + checksum);
    long growth = smallestGrowth(calls -> (long) runRecurrent(calls), 400_000);
    // 4 bytes per call leaked would be 1.6 MB in every run of 400,000 calls.
    assertTrue(growth < 3L << 19, "native memory grew by " + growth + " bytes in 400,000 calls");
  }
}
