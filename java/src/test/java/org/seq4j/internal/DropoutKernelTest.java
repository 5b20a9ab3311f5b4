package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.reference.AttentionReference;

/**
 * {@code seq4j_dropout} in every ISA copy against the mask that seq4j.h specifies (reproduced in
 * {@link AttentionReference#keep}), bit for bit: kept elements are x / (1 - p) rounded once,
 * dropped ones 0, over several parallel chunks and a ragged tail, out of place and in place.
 */
class DropoutKernelTest {

  @AfterEach
  void restoreBestKernels() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void theMaskIsTheSpecifiedOneOnEveryCopy(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    int n = 100_003;
    float p = 0.3f;
    long seed = 12345;
    Random random = new Random(5);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment x = arena.allocate(JAVA_FLOAT, n);
      for (int i = 0; i < n; i++) {
        x.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
      }
      MemorySegment out = arena.allocate(JAVA_FLOAT, n);
      NativeBindings.dropout(out, x, n, p, seed);
      MemorySegment inPlace = arena.allocate(JAVA_FLOAT, n);
      inPlace.copyFrom(x);
      NativeBindings.dropout(inPlace, inPlace, n, p, seed);
      float scale = 1f / (1f - p);
      int kept = 0;
      for (int i = 0; i < n; i++) {
        float v = x.getAtIndex(JAVA_FLOAT, i);
        boolean keep = AttentionReference.keep(seed, i, p);
        kept += keep ? 1 : 0;
        float expected = keep ? v * scale : 0f;
        assertEquals(Float.floatToIntBits(expected),
            Float.floatToIntBits(out.getAtIndex(JAVA_FLOAT, i)), isa + " out[" + i + "]");
        assertEquals(Float.floatToIntBits(expected),
            Float.floatToIntBits(inPlace.getAtIndex(JAVA_FLOAT, i)), isa + " in place [" + i + "]");
      }
      assertEquals(0.7, kept / (double) n, 0.01, "share kept");
    }
  }
}
