package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.BroadcastReference;
import org.seq4j.reference.Tolerances;

class ReductionOpsTest {
  private static final double FORWARD = Tolerances.ELEMENTWISE_FORWARD;
  private static final double BACKWARD = Tolerances.ELEMENTWISE_BACKWARD;
  private static final long[] SHAPE = {3, 4, 5};

  /** dims resolved against rank, as a mask. */
  private static boolean[] mask(int rank, int... dims) {
    boolean[] m = new boolean[rank];
    for (int d : dims) {
      m[d < 0 ? d + rank : d] = true;
    }
    if (dims.length == 0) {
      Arrays.fill(m, true);
    }
    return m;
  }

  /** The shape after reducing the masked dims. */
  private static long[] reducedShape(long[] dims, boolean[] reduced, boolean keepDim) {
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < dims.length; i++) {
      if (!reduced[i]) {
        out.add(dims[i]);
      } else if (keepDim) {
        out.add(1L);
      }
    }
    return out.stream().mapToLong(Long::longValue).toArray();
  }

  static Stream<Arguments> dimCases() {
    List<Arguments> cases = new ArrayList<>();
    int[][] dimSets = {{0}, {1}, {2}, {-1}, {-3}, {0, 2}, {-1, 1}, {}};
    for (int[] dims : dimSets) {
      for (boolean keepDim : new boolean[] {false, true}) {
        cases.add(Arguments.of(dims, keepDim));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "sum/mean dims {0} keepDim {1}")
  @MethodSource("dimCases")
  void sumAndMeanOverDimensions(int[] dims, boolean keepDim) {
    boolean[] reduced = mask(SHAPE.length, dims);
    long[] out = reducedShape(SHAPE, reduced, keepDim);
    long count = 1;
    for (int i = 0; i < SHAPE.length; i++) {
      count *= reduced[i] ? SHAPE[i] : 1;
    }
    long n = count;
    String what = Arrays.toString(dims) + " keepDim=" + keepDim;
    OpCheck.check("sum " + what, new double[][] {OpCheck.normal(21, 60)},
        new long[][] {SHAPE}, out,
        t -> dims.length == 1 ? t[0].sum(dims[0], keepDim) : t[0].sum(dims, keepDim),
        v -> BroadcastReference.sum(v[0], SHAPE, reduced), FORWARD, BACKWARD);
    OpCheck.check("mean " + what, new double[][] {OpCheck.normal(22, 60)},
        new long[][] {SHAPE}, out,
        t -> dims.length == 1 ? t[0].mean(dims[0], keepDim) : t[0].mean(dims, keepDim),
        v -> {
          double[] s = BroadcastReference.sum(v[0], SHAPE, reduced);
          for (int i = 0; i < s.length; i++) {
            s[i] /= n;
          }
          return s;
        }, FORWARD, BACKWARD);
  }

  @Test
  void sumAndMeanOfEverything() {
    OpCheck.check("sum()", new double[][] {OpCheck.normal(23, 60)}, new long[][] {SHAPE},
        new long[0], t -> t[0].sum(),
        v -> new double[] {Arrays.stream(v[0]).sum()}, FORWARD, BACKWARD);
    OpCheck.check("mean()", new double[][] {OpCheck.normal(24, 17)}, new long[][] {{17}},
        new long[0], t -> t[0].mean(),
        v -> new double[] {Arrays.stream(v[0]).sum() / 17}, FORWARD, BACKWARD);
    // a scalar reduces over dim 0 or -1 as if it were (1)
    OpCheck.check("scalar sum(-1)", new double[][] {{2.5}}, new long[][] {{}}, new long[0],
        t -> t[0].sum(-1, false), v -> new double[] {v[0][0]}, FORWARD, BACKWARD);
    try (Arena arena = Arena.ofConfined()) {
      assertTrue(Float.isNaN(Tensor.zeros(arena, 0, 3).mean().toArray()[0]));
      assertEquals(0f, Tensor.zeros(arena, 0, 3).sum().toArray()[0]);
      assertArrayEquals(new long[] {3}, Tensor.zeros(arena, 0, 3).sum(0, false).shape().dims());
    }
  }

  @ParameterizedTest(name = "max dim {0} keepDim {1}")
  @MethodSource("maxCases")
  void maxOverADimension(int dim, boolean keepDim) {
    boolean[] reduced = mask(SHAPE.length, dim);
    int d = dim < 0 ? dim + SHAPE.length : dim;
    long[] out = reducedShape(SHAPE, reduced, keepDim);
    double[] x = OpCheck.normal(31, 60);
    OpCheck.check("max values " + dim + " " + keepDim, new double[][] {x}, new long[][] {SHAPE},
        out, t -> t[0].max(dim, keepDim).values(),
        v -> BroadcastReference.max(v[0], SHAPE, d)[0], FORWARD, BACKWARD);
    try (Arena arena = Arena.ofConfined()) {
      Tensor.MaxResult result = Arrays64.tensor(arena, OpCheck.rounded(x), SHAPE).max(dim,
          keepDim);
      double[] positions = BroadcastReference.max(OpCheck.rounded(x), SHAPE, d)[1];
      long[] expected = Arrays.stream(positions).mapToLong(p -> (long) p).toArray();
      assertArrayEquals(expected, result.indices());
    }
  }

  static Stream<Arguments> maxCases() {
    List<Arguments> cases = new ArrayList<>();
    for (int dim : new int[] {0, 1, 2, -1, -2}) {
      for (boolean keepDim : new boolean[] {false, true}) {
        cases.add(Arguments.of(dim, keepDim));
      }
    }
    return cases.stream();
  }

  @Test
  void maxTakesTheFirstOnTiesAndANan() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena,
          new float[] {1f, 3f, 3f, 2f, Float.NaN, 5f, Float.NaN, 0f}, 2, 4).requiresGrad(true);
      Tensor.MaxResult result = x.max(1, false);
      assertArrayEquals(new long[] {1, 0}, result.indices());
      assertEquals(3f, result.values().toArray()[0]);
      assertTrue(Float.isNaN(result.values().toArray()[1]));
      result.values().sum().backward();
      assertArrayEquals(new float[] {0, 1, 0, 0, 1, 0, 0, 0}, x.grad().toArray());
      IllegalArgumentException empty = assertThrows(IllegalArgumentException.class,
          () -> Tensor.zeros(arena, 2, 0).max(1, true));
      assertTrue(empty.getMessage().startsWith("dim:"), empty.getMessage());
    }
  }

  @Test
  void maxOfEverythingSharesTheGradientAmongTies() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {4f, 1f, 4f, -2f}, 2, 2).requiresGrad(true);
      Tensor max = x.max();
      assertEquals(0, max.shape().rank());
      assertEquals(4f, max.toArray()[0]);
      max.mul(3f).backward();
      assertArrayEquals(new float[] {1.5f, 0f, 1.5f, 0f}, x.grad().toArray());
      assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(arena, 0).max());
    }
    OpCheck.check("max()", new double[][] {OpCheck.normal(32, 17)}, new long[][] {{17}},
        new long[0], t -> t[0].max(),
        v -> new double[] {Arrays.stream(v[0]).max().getAsDouble()}, FORWARD, BACKWARD);
  }

  // ---- softmax

  static Stream<Arguments> softmaxCases() {
    List<Arguments> cases = new ArrayList<>();
    for (int dim : new int[] {0, 1, 2, -1, -3}) {
      for (boolean log : new boolean[] {false, true}) {
        cases.add(Arguments.of(dim, log));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "softmax dim {0} log {1}")
  @MethodSource("softmaxCases")
  void softmaxAndLogSoftmax(int dim, boolean log) {
    int d = dim < 0 ? dim + SHAPE.length : dim;
    double[] x = OpCheck.normal(41, 60);
    for (int i = 0; i < x.length; i++) {
      x[i] *= 2;
    }
    OpCheck.check((log ? "logSoftmax " : "softmax ") + dim, new double[][] {x},
        new long[][] {SHAPE}, SHAPE, t -> log ? t[0].logSoftmax(dim) : t[0].softmax(dim),
        v -> BroadcastReference.softmax(v[0], SHAPE, d, log), FORWARD, BACKWARD);
  }

  @Test
  void softmaxIsStableAndPropagatesNan() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {1000f, 1001f, -1000f, Float.NaN, 0f, 1f},
          2, 3);
      float[] p = x.softmax(-1).toArray();
      double e = Math.exp(-1);
      assertEquals(1 / (1 + e), p[1], 1e-6);
      assertEquals(e / (1 + e), p[0], 1e-6);
      assertEquals(0f, p[2]);
      for (int i = 3; i < 6; i++) {
        assertTrue(Float.isNaN(p[i]), "a NaN in a row makes the whole row NaN");
      }
      float[] logP = x.logSoftmax(1).toArray();
      assertEquals(-Math.log1p(e), logP[1], 1e-5);
      assertEquals(-2001 - Math.log1p(e), logP[2], 1e-2);
      Tensor scalar = Tensor.full(arena, 3f);
      assertEquals(1f, scalar.softmax(0).toArray()[0]);
      assertEquals(0f, scalar.logSoftmax(-1).toArray()[0]);
    }
  }

  @Test
  void softmaxFeedsAComposedLoss() {
    // -log(softmax(x)[target]) == -logSoftmax(x)[target]: both routes give one gradient
    double[] xs = OpCheck.rounded(OpCheck.normal(42, 12));
    try (Arena arena = Arena.ofConfined()) {
      Tensor x1 = Arrays64.tensor(arena, xs, 3, 4).requiresGrad(true);
      Tensor x2 = Arrays64.tensor(arena, xs, 3, 4).requiresGrad(true);
      Tensor pick = Tensor.fromArray(arena, new float[] {0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0},
          3, 4);
      x1.softmax(-1).log().mul(pick).sum().neg().backward();
      x2.logSoftmax(-1).mul(pick).sum().neg().backward();
      Arrays64.assertClose(Arrays64.doubles(x2.grad()), Arrays64.doubles(x1.grad()), BACKWARD,
          "two routes");
    }
  }

  // ---- errors and recording

  @Test
  void dimsOutOfRangeAreNamed() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 2, 3);
      for (Runnable call : List.<Runnable>of(() -> x.sum(2, false), () -> x.mean(-3, true),
          () -> x.max(5, false), () -> x.softmax(2), () -> x.logSoftmax(-3),
          () -> x.sum(new int[] {0, 7}, false))) {
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, call::run);
        assertTrue(e.getMessage().startsWith("dim: expected -2 <= dim < 2 for shape (2, 3)"),
            e.getMessage());
      }
      IllegalArgumentException twice = assertThrows(IllegalArgumentException.class,
          () -> x.sum(new int[] {1, -1}, true));
      assertTrue(twice.getMessage().startsWith("dim:"), twice.getMessage());
      assertThrows(NullPointerException.class, () -> x.sum(null, true));
    }
  }

  @Test
  void noGradRecordsNothingAndAnInPlaceChangeIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 2, 3).requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        assertFalse(x.sum().requiresGrad());
        assertFalse(x.softmax(0).requiresGrad());
        assertFalse(x.max(1, true).values().requiresGrad());
        assertFalse(x.mean(1, false).requiresGrad());
      }
      Tensor y = x.softmax(1);
      Tensor loss = y.sum(); // sum saves nothing: only the softmax can notice
      y.fill(0.5f);
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().startsWith("Tensor.softmax:"), e.getMessage());
    }
  }
}
