package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.reference.MatmulReference;
import org.seq4j.reference.Tolerances;

class TensorOpsTest {

  static Stream<Arguments> matmulCases() {
    int[][] shapes = {
      {1, 1, 1}, {1, 3, 17}, {3, 1, 63}, {17, 63, 3}, {63, 17, 1000}, {1000, 3, 17},
      {3, 1000, 63}, {130, 257, 65},
      // taller than wide and at least 2^24 multiply-adds: oneDNN's transposed-A product runs
      // mirrored (cᵀ = bᵀa, then added transposed), in ragged 32-square tiles
      {1030, 70, 260}
    };
    List<Arguments> cases = new ArrayList<>();
    long seed = 0;
    for (Backend backend : new Backend[] {Backend.ONEDNN, Backend.BLAS, Backend.AUTO}) {
      for (int[] shape : shapes) {
        for (int transpose = 0; transpose < 4; transpose++) {
          boolean accumulate = (seed % 3) == 1;
          cases.add(Arguments.of(backend, shape[0], shape[1], shape[2], (transpose & 1) != 0,
              (transpose & 2) != 0, accumulate, seed++));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} m={1} n={2} k={3} transA={4} transB={5} accumulate={6}")
  @MethodSource("matmulCases")
  void matmulMatchesFloat64Reference(Backend backend, int m, int n, int k, boolean transA,
      boolean transB, boolean accumulate, long seed) {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = transA ? Tensor.randomNormal(arena, seed, k, m)
          : Tensor.randomNormal(arena, seed, m, k);
      Tensor b = transB ? Tensor.randomNormal(arena, seed + 1000, n, k)
          : Tensor.randomNormal(arena, seed + 1000, k, n);
      Tensor out = Tensor.randomUniform(arena, seed + 2000, -1, 1, m, n);
      float alpha = accumulate ? 0.75f : 1f;
      float beta = accumulate ? -1.5f : 0f;
      float[] before = out.toArray();
      TensorOps.matmul(a, b, out, MatmulOptions.DEFAULT.transposeA(transA).transposeB(transB)
          .alpha(alpha).beta(beta).backend(backend));

      float[] av = a.toArray();
      float[] bv = b.toArray();
      double[] expected = MatmulReference.matmul(av, bv, before, m, n, k, transA, transB, alpha,
          beta);
      double[] scale = MatmulReference.magnitude(av, bv, m, n, k, transA, transB);
      float[] actual = out.toArray();
      double budget = Tolerances.matmulRelative(k);
      for (int i = 0; i < actual.length; i++) {
        double allowed = budget * (Math.abs(alpha) * scale[i] + Math.abs(beta * before[i]))
            + Double.MIN_NORMAL;
        double error = Math.abs(actual[i] - expected[i]);
        if (error > allowed) {
          throw new AssertionError("element " + i + " of (" + m + ", " + n + "): got "
              + actual[i] + ", expected " + expected[i] + ", error " + error + " > " + allowed);
        }
      }
    }
  }

  @Test
  void mirroredWeightGradientProductWithBetaZeroIgnoresNaNInOutput() {
    try (Arena arena = Arena.ofConfined()) {
      long m = 1030;
      long n = 70;
      long k = 260; // transposed a, m > n, m·n·k >= 2^24: the mirrored path
      Tensor a = Tensor.ones(arena, k, m);
      Tensor b = Tensor.ones(arena, k, n);
      Tensor out = Tensor.full(arena, Float.NaN, m, n);
      TensorOps.matmul(a, b, out, MatmulOptions.DEFAULT.transposeA(true).alpha(0.5f)
          .backend(Backend.ONEDNN));
      for (float value : out.toArray()) {
        assertEquals(130f, value);
      }
    }
  }

  @Test
  void matmulWithBetaZeroIgnoresNaNInOutput() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3);
      Tensor b = Tensor.ones(arena, 3, 2);
      for (Backend backend : new Backend[] {Backend.ONEDNN, Backend.BLAS}) {
        Tensor out = Tensor.full(arena, Float.NaN, 2, 2);
        TensorOps.matmul(a, b, out, MatmulOptions.DEFAULT.backend(backend));
        for (float value : out.toArray()) {
          assertEquals(3f, value, backend.toString());
        }
      }
    }
  }

  @Test
  void matmulAllocatingFormAndEmptyShapes() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4}, 2, 2);
      Tensor b = Tensor.fromArray(arena, new float[] {5, 6, 7, 8}, 2, 2);
      Tensor c = TensorOps.matmul(arena, a, b);
      assertEquals(List.of(19f, 22f, 43f, 50f), boxed(c.toArray()));
      // k = 0: the product is empty, out = beta * out
      Tensor empty = Tensor.zeros(arena, 2, 0);
      Tensor emptyT = Tensor.zeros(arena, 0, 2);
      Tensor out = Tensor.ones(arena, 2, 2);
      TensorOps.matmul(empty, emptyT, out, MatmulOptions.DEFAULT.beta(2f).backend(Backend.BLAS));
      assertEquals(List.of(2f, 2f, 2f, 2f), boxed(out.toArray()));
    }
  }

  @Test
  void elementwiseOpsMatchReference() {
    try (Arena arena = Arena.ofConfined()) {
      for (int n : new int[] {1, 3, 17, 63, 1000, 100_003}) {
        Tensor a = Tensor.randomNormal(arena, n, n);
        Tensor b = Tensor.randomNormal(arena, n + 1, n);
        float[] av = a.toArray();
        float[] bv = b.toArray();
        Tensor sum = Tensor.zeros(arena, n);
        TensorOps.add(a, b, sum);
        Tensor scaled = Tensor.zeros(arena, n);
        TensorOps.scale(a, -2.5f, scaled);
        Tensor y = b.copy(arena);
        TensorOps.axpy(0.5f, a, y);
        float[] s = sum.toArray();
        float[] sc = scaled.toArray();
        float[] yv = y.toArray();
        for (int i = 0; i < n; i++) {
          assertClose((double) av[i] + bv[i], s[i], "add");
          assertClose(-2.5 * av[i], sc[i], "scale");
          assertClose(bv[i] + 0.5 * av[i], yv[i], "axpy");
        }
        TensorOps.add(a, a, a); // in place
        float[] doubled = a.toArray();
        for (int i = 0; i < n; i++) {
          assertEquals(2 * av[i], doubled[i]);
        }
      }
    }
  }

  private static void assertClose(double expected, float actual, String op) {
    double allowed = Tolerances.ELEMENTWISE_RELATIVE * Math.abs(expected) + Double.MIN_NORMAL;
    if (Math.abs(actual - expected) > allowed) {
      throw new AssertionError(op + ": got " + actual + ", expected " + expected);
    }
  }

  // ---- errors

  @Test
  void matmulShapeErrorsNameTheArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.zeros(arena, 2, 3);
      Tensor b = Tensor.zeros(arena, 4, 5);
      Tensor out = Tensor.zeros(arena, 2, 5);
      var e = assertThrows(IllegalArgumentException.class, () -> TensorOps.matmul(a, b, out));
      assertTrue(e.getMessage().startsWith("b: expected 3 rows"), e.getMessage());
      assertTrue(e.getMessage().contains("(4, 5)"), e.getMessage());

      Tensor b2 = Tensor.zeros(arena, 3, 5);
      Tensor wrongOut = Tensor.zeros(arena, 5, 2);
      e = assertThrows(IllegalArgumentException.class, () -> TensorOps.matmul(a, b2, wrongOut));
      assertEquals("out: expected shape (2, 5), got (5, 2)", e.getMessage());

      Tensor vector = Tensor.zeros(arena, 3);
      e = assertThrows(IllegalArgumentException.class, () -> TensorOps.matmul(a, vector, out));
      assertEquals("b: expected a matrix (rank 2), got shape (3,)", e.getMessage());

      Tensor square = Tensor.zeros(arena, 3, 3);
      e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.matmul(square, square.reshape(3, 3), square));
      assertTrue(e.getMessage().startsWith("out: must not share memory with a"), e.getMessage());

    }
  }

  @Test
  void elementwiseErrorsNameTheArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.zeros(arena, 4);
      Tensor b = Tensor.zeros(arena, 5);
      var e = assertThrows(IllegalArgumentException.class, () -> TensorOps.add(a, b, a));
      assertEquals("b: expected shape (4,) (the shape of a), got (5,)", e.getMessage());
      Tensor wide = Tensor.zeros(arena, 8);
      e = assertThrows(IllegalArgumentException.class,
          () -> TensorOps.scale(wide.slice(0, 4), 2f, wide.slice(1, 5)));
      assertTrue(e.getMessage().startsWith("out: must not share memory with x"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> TensorOps.axpy(1f, a, a));
      assertTrue(e.getMessage().startsWith("y: must not share memory with x"), e.getMessage());
    }
  }

  @Test
  void closedArenaIsAnIllegalStateNamingTheArgument() {
    Tensor a;
    try (Arena arena = Arena.ofConfined()) {
      a = Tensor.zeros(arena, 2, 2);
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor b = Tensor.zeros(arena, 2, 2);
      Tensor out = Tensor.zeros(arena, 2, 2);
      var e = assertThrows(IllegalStateException.class, () -> TensorOps.matmul(a, b, out));
      assertEquals("a: the tensor's arena is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> TensorOps.add(b, a, out));
      assertEquals("b: the tensor's arena is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> a.get(0, 0));
      assertEquals("tensor: the tensor's arena is closed", e.getMessage());
      assertTrue(a.toString().contains("<arena closed>"));
    }
  }

  @Test
  void tensorOfAnotherThreadsConfinedArenaIsRejected() throws Exception {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 2);
      Tensor out = Tensor.zeros(arena, 2, 2);
      CompletableFuture<Void> other = CompletableFuture.runAsync(() -> TensorOps.matmul(a, a, out));
      var e = assertThrows(ExecutionException.class, other::get);
      assertTrue(e.getCause() instanceof WrongThreadException, e.getCause().toString());
      assertTrue(e.getCause().getMessage().startsWith("a: the tensor belongs to a confined arena"),
          e.getCause().getMessage());
      // the data is untouched
      assertEquals(List.of(0f, 0f, 0f, 0f), boxed(out.toArray()));
    }
  }

  @Test
  void sharedArenaTensorsWorkFromManyThreads() throws Exception {
    try (Arena arena = Arena.ofShared()) {
      Tensor a = Tensor.randomNormal(arena, 5, 64, 64);
      Tensor expected = TensorOps.matmul(arena, a, a);
      List<CompletableFuture<float[]>> results = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        Backend backend = t % 2 == 0 ? Backend.ONEDNN : Backend.BLAS;
        results.add(CompletableFuture.supplyAsync(() -> {
          Tensor out = Tensor.zeros(arena, 64, 64);
          for (int i = 0; i < 20; i++) {
            TensorOps.matmul(a, a, out, MatmulOptions.DEFAULT.backend(backend));
          }
          return out.toArray();
        }));
      }
      float[] reference = expected.toArray();
      for (CompletableFuture<float[]> result : results) {
        float[] values = result.get();
        for (int i = 0; i < values.length; i++) {
          assertEquals(reference[i], values[i],
              (float) Tolerances.MATMUL_AGREEMENT * (1 + Math.abs(reference[i])));
        }
      }
    }
  }

  private static List<Float> boxed(float[] values) {
    List<Float> list = new ArrayList<>();
    for (float value : values) {
      list.add(value);
    }
    return list;
  }
}
