package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Seq4jException;

/**
 * The native layout kernels the layers build on (permute, row broadcast, column sums), checked
 * element by element against index arithmetic written here, and their argument errors.
 */
class LayoutKernelsTest {

  private static MemorySegment filled(Arena arena, long count, Random random) {
    MemorySegment segment = arena.allocate(JAVA_FLOAT, Math.max(count, 1));
    for (long i = 0; i < count; i++) {
      segment.setAtIndex(JAVA_FLOAT, i, random.nextFloat() * 2 - 1);
    }
    return segment;
  }

  /** out's element at multi-index o equals in's element at the index with in[perm[i]] = o[i]. */
  private static void assertPermuted(MemorySegment out, MemorySegment in, long[] dims, int[] perm) {
    int rank = dims.length;
    long[] inStrides = new long[rank];
    long stride = 1;
    for (int i = rank - 1; i >= 0; i--) {
      inStrides[i] = stride;
      stride *= dims[i];
    }
    long total = stride;
    long[] outDims = new long[rank];
    for (int i = 0; i < rank; i++) {
      outDims[i] = dims[perm[i]];
    }
    long[] index = new long[rank];
    for (long flat = 0; flat < total; flat++) {
      long rest = flat;
      for (int i = rank - 1; i >= 0; i--) {
        index[i] = rest % outDims[i];
        rest /= outDims[i];
      }
      long source = 0;
      for (int i = 0; i < rank; i++) {
        source += index[i] * inStrides[perm[i]];
      }
      float expected = in.getAtIndex(JAVA_FLOAT, source);
      float actual = out.getAtIndex(JAVA_FLOAT, flat);
      if (Float.floatToRawIntBits(expected) != Float.floatToRawIntBits(actual)) {
        throw new AssertionError("dims " + java.util.Arrays.toString(dims) + " perm "
            + java.util.Arrays.toString(perm) + ": out[" + flat + "] = " + actual
            + ", expected in[" + source + "] = " + expected);
      }
    }
  }

  private static int[] randomPermutation(int rank, Random random) {
    int[] perm = new int[rank];
    for (int i = 0; i < rank; i++) {
      perm[i] = i;
    }
    for (int i = rank - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int swap = perm[i];
      perm[i] = perm[j];
      perm[j] = swap;
    }
    return perm;
  }

  @Test
  void permuteMovesEveryElementWhereTheIndexArithmeticSays() {
    Random random = new Random(17);
    try (Arena arena = Arena.ofConfined()) {
      for (int trial = 0; trial < 300; trial++) {
        int rank = 1 + random.nextInt(8);
        long[] dims = new long[rank];
        long total = 1;
        for (int i = 0; i < rank; i++) {
          // sizes of 1 exercise the merging of axes; the cap keeps the element count small
          dims[i] = 1 + random.nextInt(rank <= 3 ? 40 : rank <= 5 ? 7 : 3);
          total *= dims[i];
        }
        int[] perm = randomPermutation(rank, random);
        MemorySegment in = filled(arena, total, random);
        MemorySegment out = arena.allocate(JAVA_FLOAT, total);
        out.fill((byte) 0x7f);
        NativeBindings.permute(out, in, dims, perm);
        assertPermuted(out, in, dims, perm);
      }
    }
  }

  @Test
  void permuteOfTheAttentionHeadLayoutsAtParallelSizes() {
    // the layouts MultiHeadAttention asks for, large enough to run the threaded path
    Random random = new Random(3);
    long[][] shapes = {{32, 128, 8, 64}, {128, 32, 8, 64}, {32, 8, 128, 64}, {7, 129, 3, 33}};
    int[][] perms = {{0, 2, 1, 3}, {1, 2, 0, 3}, {0, 2, 1, 3}, {2, 0, 1, 3}};
    try (Arena arena = Arena.ofConfined()) {
      for (int s = 0; s < shapes.length; s++) {
        long total = 1;
        for (long d : shapes[s]) {
          total *= d;
        }
        MemorySegment in = filled(arena, total, random);
        MemorySegment out = arena.allocate(JAVA_FLOAT, total);
        NativeBindings.permute(out, in, shapes[s], perms[s]);
        assertPermuted(out, in, shapes[s], perms[s]);
      }
    }
  }

  @Test
  void permuteWithAZeroSizedAxisWritesNothing() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment sentinel = arena.allocate(JAVA_FLOAT, 1);
      sentinel.set(JAVA_FLOAT, 0, 42f);
      NativeBindings.permute(sentinel, sentinel, new long[] {3, 0, 2}, new int[] {2, 1, 0});
      assertEquals(42f, sentinel.get(JAVA_FLOAT, 0));
    }
  }

  @Test
  void permuteRejectsBadArgumentsNamingThem() {
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment a = arena.allocate(JAVA_FLOAT, 64);
      MemorySegment b = arena.allocate(JAVA_FLOAT, 64);
      assertNativeError("seq4j_permute: rank must be 1 to 8, got 0",
          () -> NativeBindings.permute(a, b, new long[0], new int[0]));
      assertNativeError("seq4j_permute: rank must be 1 to 8, got 9",
          () -> NativeBindings.permute(a, b, new long[9], new int[9]));
      assertNativeError("seq4j_permute: perm must hold each of 0 to 2 once, got 1 at 2",
          () -> NativeBindings.permute(a, b, new long[] {2, 2, 2}, new int[] {0, 1, 1}));
      assertNativeError("seq4j_permute: perm must hold each of 0 to 1 once, got 2 at 0",
          () -> NativeBindings.permute(a, b, new long[] {2, 2}, new int[] {2, 0}));
      assertNativeError("seq4j_permute: dims[1] must be >= 0, got -4",
          () -> NativeBindings.permute(a, b, new long[] {2, -4}, new int[] {1, 0}));
      assertNativeError("seq4j_permute: out overlaps in",
          () -> NativeBindings.permute(a, a.asSlice(4), new long[] {3, 5}, new int[] {1, 0}));
      assertNativeError("seq4j_permute: dims: the element count overflows int64",
          () -> NativeBindings.permute(a, b, new long[] {1L << 40, 1L << 40},
              new int[] {1, 0}));
    }
  }

  @Test
  void broadcastRowsCopiesTheRowIntoEveryRow() {
    Random random = new Random(5);
    try (Arena arena = Arena.ofConfined()) {
      for (long[] shape : new long[][] {{1, 1}, {3, 17}, {4096, 512}, {1000, 3}}) {
        long rows = shape[0];
        long cols = shape[1];
        MemorySegment row = filled(arena, cols, random);
        MemorySegment out = filled(arena, rows * cols, random);
        NativeBindings.broadcastRows(out, row, rows, cols);
        for (long r = 0; r < rows; r++) {
          for (long c = 0; c < cols; c++) {
            assertEquals(row.getAtIndex(JAVA_FLOAT, c), out.getAtIndex(JAVA_FLOAT, r * cols + c));
          }
        }
      }
      MemorySegment out = arena.allocate(JAVA_FLOAT, 8);
      assertNativeError("seq4j_broadcast_rows: rows must be >= 0, got -1",
          () -> NativeBindings.broadcastRows(out, out, -1, 2));
      assertNativeError("seq4j_broadcast_rows: out overlaps row",
          () -> NativeBindings.broadcastRows(out, out.asSlice(8), 2, 4));
    }
  }

  @AfterEach
  void restoreBestKernels() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("org.seq4j.reference.KernelCopies#runnable")
  void addColumnSumsAddsFloat64ColumnSumsToWhatIsThere(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    Random random = new Random(9);
    try (Arena arena = Arena.ofConfined()) {
      for (long[] shape : new long[][] {{1, 1}, {63, 5}, {64, 5}, {65, 130}, {4096, 512},
          {10_000, 3}}) {
        long rows = shape[0];
        long cols = shape[1];
        MemorySegment x = filled(arena, rows * cols, random);
        MemorySegment into = filled(arena, cols, random);
        double[] expected = new double[(int) cols];
        double[] magnitude = new double[(int) cols];
        for (int c = 0; c < cols; c++) {
          expected[c] = into.getAtIndex(JAVA_FLOAT, c);
          magnitude[c] = Math.abs(expected[c]);
        }
        for (long r = 0; r < rows; r++) {
          for (int c = 0; c < cols; c++) {
            float v = x.getAtIndex(JAVA_FLOAT, r * cols + c);
            expected[c] += v;
            magnitude[c] += Math.abs(v);
          }
        }
        NativeBindings.addColumnSums(into, x, rows, cols);
        for (int c = 0; c < cols; c++) {
          // partial sums are double, so the only error is the final rounding to float
          double tolerance = Math.ulp((float) expected[c]) + 1e-12 * magnitude[c];
          double actual = into.getAtIndex(JAVA_FLOAT, c);
          assertTrue(Math.abs(actual - expected[c]) <= tolerance, "rows " + rows + " cols "
              + cols + " column " + c + ": " + actual + " against " + expected[c]);
        }
        // a second call adds again: the kernel accumulates instead of overwriting
        MemorySegment twice = arena.allocate(JAVA_FLOAT, cols);
        NativeBindings.addColumnSums(twice, x, rows, cols);
        NativeBindings.addColumnSums(twice, x, rows, cols);
        MemorySegment once = arena.allocate(JAVA_FLOAT, cols);
        NativeBindings.addColumnSums(once, x, rows, cols);
        for (int c = 0; c < cols; c++) {
          float single = once.getAtIndex(JAVA_FLOAT, c);
          assertEquals(single + single, twice.getAtIndex(JAVA_FLOAT, c), Math.ulp(single) * 2);
        }
      }
      MemorySegment into = arena.allocate(JAVA_FLOAT, 8);
      assertNativeError("seq4j_add_column_sums: cols must be >= 0, got -2",
          () -> NativeBindings.addColumnSums(into, into, 1, -2));
      assertNativeError("seq4j_add_column_sums: into overlaps x",
          () -> NativeBindings.addColumnSums(into, into, 2, 4));
    }
  }

  @Test
  void addColumnSumsIsBitIdenticalAcrossCalls() {
    Random random = new Random(11);
    try (Arena arena = Arena.ofConfined()) {
      long rows = 5000;
      long cols = 257;
      MemorySegment x = filled(arena, rows * cols, random);
      MemorySegment first = arena.allocate(JAVA_FLOAT, cols);
      NativeBindings.addColumnSums(first, x, rows, cols);
      for (int repeat = 0; repeat < 5; repeat++) {
        MemorySegment again = arena.allocate(JAVA_FLOAT, cols);
        NativeBindings.addColumnSums(again, x, rows, cols);
        assertEquals(-1L, first.mismatch(again), "column sums are deterministic");
      }
      // every ISA copy adds each column's rows in the same order, in double: the same bits
      for (KernelIsa isa : org.seq4j.reference.KernelCopies.runnable()) {
        Seq4j.selectKernels(isa);
        MemorySegment copy = arena.allocate(JAVA_FLOAT, cols);
        NativeBindings.addColumnSums(copy, x, rows, cols);
        assertEquals(-1L, first.mismatch(copy), "column sums in the " + isa + " copy");
      }
    }
  }

  private static void assertNativeError(String expectedPrefix, Runnable call) {
    var e = assertThrows(Seq4jException.class, call::run);
    assertEquals(Seq4jException.Status.INVALID_ARGUMENT, e.status());
    assertTrue(e.getMessage().startsWith(expectedPrefix),
        () -> "message '" + e.getMessage() + "' should start with '" + expectedPrefix + "'");
  }
}
