package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Seq4j;
import org.seq4j.Seq4jException;
import org.seq4j.reference.Tolerances;

/**
 * {@code seq4j_linear} (x · weightᵀ + bias, the bias in oneDNN's epilogue, or laid down first on
 * the BLAS backend and in deterministic mode) against a float64 sum written here, on every
 * backend, and its edge cases: empty sizes, non-finite values, its per-thread primitive cache, and
 * its argument errors.
 */
class LinearKernelTest {

  @AfterEach
  void restoreDefaults() {
    Seq4j.setDeterministic(false);
  }

  private static MemorySegment filled(Arena arena, long count, Random random) {
    MemorySegment segment = arena.allocate(JAVA_FLOAT, Math.max(count, 1));
    for (long i = 0; i < count; i++) {
      segment.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
    }
    return segment;
  }

  /**
   * Every output against the float64 sum, within {@link Tolerances#matmulRelative} of Σ|x||w|
   * plus the bias's own rounding.
   */
  private static void assertLinear(MemorySegment out, MemorySegment x, MemorySegment weight,
      MemorySegment bias, int rows, int in, int outFeatures, String where) {
    double relative = Tolerances.matmulRelative(in + 1);
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < outFeatures; o++) {
        double sum = bias == null ? 0 : bias.getAtIndex(JAVA_FLOAT, o);
        double magnitude = Math.abs(sum);
        for (int k = 0; k < in; k++) {
          double term = (double) x.getAtIndex(JAVA_FLOAT, (long) r * in + k)
              * weight.getAtIndex(JAVA_FLOAT, (long) o * in + k);
          sum += term;
          magnitude += Math.abs(term);
        }
        float actual = out.getAtIndex(JAVA_FLOAT, (long) r * outFeatures + o);
        double allowed = relative * magnitude + Float.MIN_NORMAL;
        if (!(Math.abs(actual - sum) <= allowed)) {
          throw new AssertionError(where + ": out[" + r + ", " + o + "] = " + actual
              + ", expected " + sum + " within " + allowed);
        }
      }
    }
  }

  static Stream<Arguments> cases() {
    int[][] shapes = {{1, 1, 1}, {3, 5, 7}, {37, 129, 65}, {300, 256, 384}, {4, 0, 5}};
    List<Arguments> cases = new ArrayList<>();
    for (int[] shape : shapes) {
      for (boolean bias : new boolean[] {true, false}) {
        for (int backend : new int[] {AbiConstants.BACKEND_AUTO, AbiConstants.BACKEND_ONEDNN,
            AbiConstants.BACKEND_BLAS}) {
          for (boolean deterministic : new boolean[] {false, true}) {
            cases.add(Arguments.of(shape[0], shape[1], shape[2], bias, backend, deterministic));
          }
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "rows={0} in={1} out={2} bias={3} backend={4} deterministic={5}")
  @MethodSource("cases")
  void matchesTheFloat64Sum(int rows, int in, int outFeatures, boolean withBias, int backend,
      boolean deterministic) {
    Seq4j.setDeterministic(deterministic);
    Random random = new Random(rows * 31 + in * 7 + outFeatures);
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment x = filled(arena, (long) rows * in, random);
      MemorySegment weight = filled(arena, (long) outFeatures * in, random);
      MemorySegment bias = withBias ? filled(arena, outFeatures, random) : null;
      MemorySegment out = arena.allocate(JAVA_FLOAT, (long) rows * outFeatures);
      out.fill((byte) 0xff); // NaN everywhere: out is written, never read
      NativeBindings.linear(out, x, weight, bias == null ? MemorySegment.NULL : bias, rows, in,
          outFeatures, backend);
      assertLinear(out, x, weight, bias, rows, in, outFeatures, "first call");
      // again, through the cached primitive
      out.fill((byte) 0xff);
      NativeBindings.linear(out, x, weight, bias == null ? MemorySegment.NULL : bias, rows, in,
          outFeatures, backend);
      assertLinear(out, x, weight, bias, rows, in, outFeatures, "second call");
    }
  }

  @Test
  void emptySizesWriteNothingOrTheBias() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment sentinel = arena.allocate(JAVA_FLOAT, 4);
      sentinel.fill((byte) 0x7f);
      MemorySegment any = arena.allocate(JAVA_FLOAT, 4);
      NativeBindings.linear(sentinel, any, any, MemorySegment.NULL, 0, 3, 4,
          AbiConstants.BACKEND_AUTO);
      NativeBindings.linear(sentinel, any, any, MemorySegment.NULL, 3, 4, 0,
          AbiConstants.BACKEND_AUTO);
      for (int i = 0; i < 4; i++) {
        assertEquals(Float.intBitsToFloat(0x7f7f7f7f), sentinel.getAtIndex(JAVA_FLOAT, i));
      }
      MemorySegment out = arena.allocate(JAVA_FLOAT, 6);
      out.fill((byte) 0xff);
      NativeBindings.linear(out, any, any, MemorySegment.NULL, 2, 0, 3,
          AbiConstants.BACKEND_AUTO);
      for (int i = 0; i < 6; i++) {
        assertEquals(0f, out.getAtIndex(JAVA_FLOAT, i), "in = 0, no bias: zeros");
      }
    }
  }

  /** NaN and inf in x, weight or bias reach exactly the outputs they take part in. */
  @Test
  void nonFiniteValuesReachTheirOutputs() {
    int rows = 40;
    int in = 64;
    int outFeatures = 48;
    for (int backend : new int[] {AbiConstants.BACKEND_AUTO, AbiConstants.BACKEND_BLAS}) {
      try (Arena arena = Arena.ofConfined()) {
        Random random = new Random(3);
        MemorySegment x = filled(arena, rows * in, random);
        MemorySegment weight = filled(arena, outFeatures * in, random);
        MemorySegment bias = filled(arena, outFeatures, random);
        x.setAtIndex(JAVA_FLOAT, 5L * in + 9, Float.NaN); // row 5
        weight.setAtIndex(JAVA_FLOAT, 7L * in + 3, Float.POSITIVE_INFINITY); // column 7
        bias.setAtIndex(JAVA_FLOAT, 11, Float.NaN); // column 11
        MemorySegment out = arena.allocate(JAVA_FLOAT, rows * outFeatures);
        NativeBindings.linear(out, x, weight, bias, rows, in, outFeatures, backend);
        for (int r = 0; r < rows; r++) {
          for (int o = 0; o < outFeatures; o++) {
            float v = out.getAtIndex(JAVA_FLOAT, (long) r * outFeatures + o);
            boolean nan = r == 5 || o == 11;
            if (nan) {
              assertTrue(Float.isNaN(v), "out[" + r + ", " + o + "] should be NaN, is " + v);
            } else if (o == 7) {
              assertTrue(Float.isInfinite(v), "out[" + r + ", " + o + "] should be inf, is " + v);
            } else {
              assertTrue(Float.isFinite(v), "out[" + r + ", " + o + "] should be finite, is " + v);
            }
          }
        }
      }
    }
  }

  /**
   * More distinct shapes on one thread than the cache keeps, then the first again; and four
   * threads at once, each with its own shapes and its own cached primitives.
   */
  @Test
  void theCacheServesManyShapesAndThreads() throws Exception {
    try (Arena arena = Arena.ofShared()) {
      Random random = new Random(9);
      MemorySegment x = filled(arena, 20 * 90, random);
      MemorySegment weight = filled(arena, 90 * 90, random);
      MemorySegment bias = filled(arena, 90, random);
      for (int shape = 0; shape <= 70; shape++) {
        int in = 20 + shape % 70;
        int outFeatures = 90 - shape % 70;
        MemorySegment out = arena.allocate(JAVA_FLOAT, 20L * outFeatures);
        NativeBindings.linear(out, x, weight, bias, 20, in, outFeatures,
            AbiConstants.BACKEND_AUTO);
        assertLinear(out, x, weight, bias, 20, in, outFeatures, "shape " + shape);
      }
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<?>> done = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          int in = 30 + 10 * t;
          int outFeatures = 50 + 5 * t;
          done.add(pool.submit(() -> {
            for (int call = 0; call < 50; call++) {
              int rows = 1 + call % 20;
              MemorySegment out = arena.allocate(JAVA_FLOAT, (long) rows * outFeatures);
              NativeBindings.linear(out, x, weight, bias, rows, in, outFeatures,
                  AbiConstants.BACKEND_AUTO);
              assertLinear(out, x, weight, bias, rows, in, outFeatures, "thread call " + call);
            }
            return null;
          }));
        }
        for (Future<?> f : done) {
          f.get();
        }
      } finally {
        pool.shutdown();
      }
    }
  }

  @Test
  void badArgumentsAreNamed() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment a = arena.allocate(JAVA_FLOAT, 64);
      MemorySegment b = arena.allocate(JAVA_FLOAT, 64);
      MemorySegment c = arena.allocate(JAVA_FLOAT, 64);
      assertNativeError("seq4j_linear: rows must be >= 0, got -1",
          () -> NativeBindings.linear(c, a, b, MemorySegment.NULL, -1, 2, 2, 0));
      assertNativeError("seq4j_linear: in_features must be >= 0, got -2",
          () -> NativeBindings.linear(c, a, b, MemorySegment.NULL, 2, -2, 2, 0));
      assertNativeError("seq4j_linear: out_features must be >= 0, got -3",
          () -> NativeBindings.linear(c, a, b, MemorySegment.NULL, 2, 2, -3, 0));
      assertNativeError("seq4j_linear: x is NULL",
          () -> NativeBindings.linear(c, MemorySegment.NULL, b, MemorySegment.NULL, 2, 2, 2, 0));
      assertNativeError("seq4j_linear: backend must be 0 (AUTO), 1 (ONEDNN) or 2 (BLAS), got 7",
          () -> NativeBindings.linear(c, a, b, MemorySegment.NULL, 2, 2, 2, 7));
      assertNativeError("seq4j_linear: out overlaps x",
          () -> NativeBindings.linear(a.asSlice(8), a, b, MemorySegment.NULL, 2, 4, 2, 0));
      assertNativeError("seq4j_linear: out overlaps weight",
          () -> NativeBindings.linear(b, a, b.asSlice(4), MemorySegment.NULL, 2, 2, 2, 0));
      assertNativeError("seq4j_linear: out overlaps bias",
          () -> NativeBindings.linear(c, a, b, c.asSlice(4), 2, 2, 2, 0));
    }
  }

  private static void assertNativeError(String expectedPrefix, Runnable call) {
    var e = assertThrows(Seq4jException.class, call::run);
    assertEquals(Seq4jException.Status.INVALID_ARGUMENT, e.status());
    assertTrue(e.getMessage().startsWith(expectedPrefix),
        () -> "message '" + e.getMessage() + "' should start with '" + expectedPrefix + "'");
  }
}
