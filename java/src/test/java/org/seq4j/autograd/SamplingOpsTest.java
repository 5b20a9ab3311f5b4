package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.Tolerances;

/** argmax, topk, multinomial and dropout. */
class SamplingOpsTest {

  @Test
  void argmaxTakesTheFirstOfEqualMaximaAndKeepsDims() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {
          1, 5, 5, 2,
          7, 0, 7, 7,
          -1, -1, -1, -1}, 3, 4);
      assertArrayEquals(new float[] {1, 0, 0}, x.argmax(1, false).toArray());
      assertArrayEquals(new long[] {3, 1}, x.argmax(-1, true).shape().dims());
      assertArrayEquals(new float[] {1, 0, 1, 1}, x.argmax(0, false).toArray());
      assertArrayEquals(new long[] {1, 4}, x.argmax(0, true).shape().dims());
      // composes with gather: the maxima themselves
      assertArrayEquals(new float[] {5, 7, -1}, x.gather(1, x.argmax(1, true)).toArray());
      Tensor nan = Tensor.fromArray(arena, new float[] {1, Float.NaN, 3, Float.NaN}, 4);
      assertEquals(1f, nan.argmax(0, false).get());
      assertFalse(x.requiresGrad(true).argmax(0, false).requiresGrad());
    }
  }

  @Test
  void argmaxMatchesAReferenceOnAnOddShape() {
    long[] dims = {3, 17, 5};
    double[] v = GradCheck.values(120, GradCheck.size(dims));
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Arrays64.tensor(arena, v, dims);
      float[] got = x.argmax(1, false).toArray();
      for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 5; k++) {
          int best = 0;
          for (int j = 1; j < 17; j++) {
            if (v[(i * 17 + j) * 5 + k] > v[(i * 17 + best) * 5 + k]) {
              best = j;
            }
          }
          assertEquals(best, got[i * 5 + k], "argmax at (" + i + ", :, " + k + ")");
        }
      }
    }
  }

  /** topk in float64: per row, the k largest (stable: lower index first among equals). */
  static double[] topkReference(double[] x, int rows, int length, int k) {
    double[] out = new double[rows * k];
    for (int r = 0; r < rows; r++) {
      boolean[] taken = new boolean[length];
      for (int j = 0; j < k; j++) {
        int best = -1;
        for (int c = 0; c < length; c++) {
          if (!taken[c] && (best < 0 || x[r * length + c] > x[r * length + best])) {
            best = c;
          }
        }
        taken[best] = true;
        out[r * k + j] = x[r * length + best];
      }
    }
    return out;
  }

  @Test
  void topkSortsDescendingWithStableTiesAndRoutesGradients() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {3, 1, 3, 2, 3}, 5);
      Tensor.TopK top = x.topk(3, 0);
      assertArrayEquals(new float[] {3, 3, 3}, top.values().toArray());
      assertArrayEquals(new long[] {0, 2, 4}, top.indexArray());
      assertArrayEquals(new float[] {0, 2, 4}, top.indices().toArray());
      assertEquals(0, x.topk(0, 0).values().size());
    }
    try (Arena arena = Arena.ofConfined()) {
      double[] v = GradCheck.values(130, 4 * 7);
      Tensor x = GradCheck.leaf(arena, v, 4, 7);
      Tensor.TopK top = x.topk(3, 1);
      assertArrayEquals(new long[] {4, 3}, top.values().shape().dims());
      assertFalse(top.indices().requiresGrad());
      Arrays64.assertClose(topkReference(v, 4, 7, 3), Arrays64.doubles(top.values()), 0,
          "topk values");
      GradCheck.checkGradient(arena, top.values(), 131, new double[][] {v}, new Tensor[] {x},
          in -> topkReference(in[0], 4, 7, 3), Tolerances.COPY_OPS, "topk");
      int zeros = 0;
      for (float g : x.grad().toArray()) {
        zeros += g == 0f ? 1 : 0;
      }
      assertEquals(4 * 4, zeros); // only the 12 selected positions get a gradient
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 2, 3);
      var e = assertThrows(IllegalArgumentException.class, () -> x.topk(4, 1));
      assertTrue(e.getMessage().startsWith("k:"), e.getMessage());
      var ioobe = assertThrows(IndexOutOfBoundsException.class, () -> x.topk(1, 2));
      assertTrue(ioobe.getMessage().startsWith("dim:"), ioobe.getMessage());
    }
  }

  @Test
  void multinomialIsReproducibleAndNeverDrawsAZeroWeight() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor probs = Tensor.fromArray(arena, new float[] {
          0, 1, 2, 3, 0, 4,
          5, 0, 0, 0, 0, 5}, 2, 6);
      Tensor first = probs.multinomial(1000, true, 42);
      Tensor again = probs.multinomial(1000, true, 42);
      assertArrayEquals(new long[] {2, 1000}, first.shape().dims());
      assertArrayEquals(first.toArray(), again.toArray());
      assertFalse(Arrays.equals(first.toArray(), probs.multinomial(1000, true, 43).toArray()));
      float[] draws = first.toArray();
      for (int i = 0; i < draws.length; i++) {
        int c = (int) draws[i];
        assertTrue(probs.get(i / 1000, c) > 0, "drew class " + c + " of weight 0 at " + i);
      }
      // a caller's generator: the same state gives the same draws
      var one = java.util.random.RandomGeneratorFactory.of("L64X128MixRandom").create(5);
      var two = java.util.random.RandomGeneratorFactory.of("L64X128MixRandom").create(5);
      assertArrayEquals(probs.multinomial(50, true, one).toArray(),
          probs.multinomial(50, true, two).toArray());
      Tensor vector = Tensor.fromArray(arena, new float[] {0, 0, 1}, 3);
      assertArrayEquals(new float[] {2, 2, 2, 2}, vector.multinomial(4, true, 1).toArray());
    }
  }

  /**
   * 20 000 draws from weights (1, 2, 3, 4) spread over six classes: the chi-square statistic of
   * the counts against 20 000 · w / 10 has 3 degrees of freedom, whose 0.999 quantile is 16.27.
   * The seed is fixed, so the test is deterministic; the bound says the sampler is right, not
   * lucky.
   */
  @Test
  void multinomialFrequenciesPassAChiSquareTest() {
    try (Arena arena = Arena.ofConfined()) {
      float[] weights = {0, 1, 2, 0, 3, 4};
      int n = 20_000;
      Tensor probs = Tensor.fromArray(arena, weights, 6);
      float[] draws = probs.multinomial(n, true, 2026).toArray();
      long[] counts = new long[6];
      for (float d : draws) {
        counts[(int) d]++;
      }
      assertEquals(0, counts[0]);
      assertEquals(0, counts[3]);
      double chiSquare = 0;
      for (int c = 0; c < 6; c++) {
        if (weights[c] > 0) {
          double expected = n * weights[c] / 10.0;
          chiSquare += (counts[c] - expected) * (counts[c] - expected) / expected;
        }
      }
      assertTrue(chiSquare < 16.27, "chi-square " + chiSquare + ", counts "
          + Arrays.toString(counts));
    }
  }

  @Test
  void multinomialWithoutReplacementDrawsDistinctClasses() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor probs = Tensor.fromArray(arena, new float[] {1, 0, 2, 3, 1, 1}, 6);
      for (long seed = 0; seed < 20; seed++) {
        float[] draws = probs.multinomial(5, false, seed).toArray();
        Set<Float> seen = new HashSet<>();
        for (float d : draws) {
          assertTrue(seen.add(d), "class " + d + " drawn twice");
          assertNotEquals(1f, d);
        }
      }
      var e = assertThrows(IllegalArgumentException.class, () -> probs.multinomial(6, false, 0));
      assertTrue(e.getMessage().startsWith("numSamples:"), e.getMessage());
    }
  }

  @Test
  void multinomialErrorsNameTheirArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor zeroRow = Tensor.fromArray(arena, new float[] {1, 2, 0, 0, 3, 3}, 3, 2);
      var e = assertThrows(IllegalArgumentException.class, () -> zeroRow.multinomial(1, true, 0));
      assertTrue(e.getMessage().startsWith("probs: row 1"), e.getMessage());
      Tensor negative = Tensor.fromArray(arena, new float[] {1, -2}, 2);
      e = assertThrows(IllegalArgumentException.class, () -> negative.multinomial(1, true, 0));
      assertTrue(e.getMessage().startsWith("probs:") && e.getMessage().contains("[1]"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.ones(arena, 2, 2, 2).multinomial(1, true, 0));
      assertTrue(e.getMessage().startsWith("probs:"), e.getMessage());
      var npe = assertThrows(NullPointerException.class,
          () -> Tensor.ones(arena, 2).multinomial(1, true, null));
      assertEquals("random", npe.getMessage());
    }
  }

  @Test
  void dropoutMaskIsReproducibleKeepsTheExpectationAndIsItsGradient() {
    float p = 0.3f;
    float scale = 1 / (1 - p);
    try (Arena arena = Arena.ofConfined()) {
      int n = 200_000;
      Tensor x = Tensor.ones(arena, n).requiresGrad(true);
      Tensor out = x.dropout(p, true, 7);
      assertArrayEquals(out.toArray(), x.dropout(p, true, 7).toArray());
      assertFalse(Arrays.equals(out.toArray(), x.dropout(p, true, 8).toArray()));
      float[] values = out.toArray();
      double sum = 0;
      for (float v : values) {
        assertTrue(v == 0f || v == scale, "an element is " + v);
        sum += v;
      }
      assertEquals(1.0, sum / n, Tolerances.DROPOUT_MEAN);
      double[] w = GradCheck.values(140, n);
      out.backward(Arrays64.tensor(arena, w, n));
      float[] grad = x.grad().toArray();
      for (int i = 0; i < n; i++) {
        float expected = values[i] == 0f ? 0f : (float) w[i] * scale;
        assertEquals(expected, grad[i], Math.ulp(expected), "gradient at " + i);
      }
    }
  }

  @Test
  void dropoutIsTheIdentityOutOfTrainingAndRecordsNothingUnderNoGrad() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 3, 5).requiresGrad(true);
      assertSame(x, x.dropout(0.5f, false, 1));
      assertSame(x, x.dropout(0f, true, 1));
      Tensor all = x.dropout(1f, true, 1);
      assertArrayEquals(new float[15], all.toArray());
      try (var off = Autograd.noGrad()) {
        assertFalse(x.dropout(0.5f, true, 1).requiresGrad());
      }
      var e = assertThrows(IllegalArgumentException.class, () -> x.dropout(1.5f, true, 1));
      assertTrue(e.getMessage().startsWith("p:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> x.dropout(Float.NaN, true, 1));
      assertTrue(e.getMessage().startsWith("p:"), e.getMessage());
    }
  }
}
