package org.seq4j.nn;

import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Random;
import java.util.function.DoubleSupplier;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Tensor;
import org.seq4j.reference.AttentionReference;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.Tolerances;

/** The memory-efficient attention against the plain float64 reference and finite differences. */
class AttentionTest {
  record Case(String name, int batch, int heads, int kvHeads, int tq, int tk, int d, int dv,
      boolean causal, String mask, boolean padding, float dropout) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Case> cases() {
    return Stream.of(
        new Case("one head, odd T", 1, 1, 1, 5, 5, 3, 3, false, "none", false, 0f),
        new Case("Tq != Tk, value size differs", 2, 2, 2, 3, 7, 4, 5, false, "none", false, 0f),
        new Case("causal", 1, 2, 2, 6, 6, 3, 3, true, "none", false, 0f),
        new Case("grouped-query 4 over 2", 1, 4, 2, 5, 6, 3, 2, false, "none", false, 0f),
        new Case("additive mask (Tq, Tk)", 2, 2, 1, 4, 5, 3, 3, false, "additive", false, 0f),
        new Case("boolean mask (N, 1, Tq, Tk) with fully masked rows", 2, 2, 2, 4, 5, 3, 3,
            false, "boolean", false, 0f),
        new Case("key padding", 2, 1, 1, 4, 6, 3, 3, false, "none", true, 0f),
        new Case("dropout", 1, 2, 1, 5, 7, 3, 4, false, "none", false, 0.3f),
        new Case("across key and query blocks, causal, padding", 1, 2, 1, 70, 130, 4, 3, true,
            "none", true, 0.1f));
  }

  static double[] random(Random random, int size) {
    double[] out = new double[size];
    for (int i = 0; i < size; i++) {
      out[i] = (float) random.nextGaussian();
    }
    return out;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void forwardWeightsAndGradientsMatchTheReference(Case c) {
    Random random = new Random(c.name().hashCode());
    try (Arena arena = Arena.ofConfined()) {
      double[] q = random(random, c.batch() * c.heads() * c.tq() * c.d());
      double[] k = random(random, c.batch() * c.kvHeads() * c.tk() * c.d());
      double[] v = random(random, c.batch() * c.kvHeads() * c.tk() * c.dv());
      double scale = 1 / Math.sqrt(c.d());
      ScaledDotProductAttention.Options options = ScaledDotProductAttention.Options.DEFAULT
          .causal(c.causal()).dropout(c.dropout(), 77);
      AttentionReference.MaskFunction additive = null;
      AttentionReference.MaskFunction attend = null;
      if (c.mask().equals("additive")) {
        double[] m = random(random, c.tq() * c.tk());
        options = options.additiveMask(tensor(arena, m, c.tq(), c.tk()));
        additive = (n, h, i, j) -> m[i * c.tk() + j];
      } else if (c.mask().equals("boolean")) {
        double[] m = new double[c.batch() * c.tq() * c.tk()];
        for (int i = 0; i < m.length; i++) {
          m[i] = random.nextDouble() < 0.6 ? 1 : 0;
        }
        for (int j = 0; j < c.tk(); j++) {
          m[(1 * c.tq() + 2) * c.tk() + j] = 0; // sample 1, query 2: every key masked
        }
        options = options.booleanMask(tensor(arena, m, c.batch(), 1, c.tq(), c.tk()));
        attend = (n, h, i, j) -> m[(n * c.tq() + i) * c.tk() + j];
      }
      double[] padding = null;
      if (c.padding()) {
        padding = new double[c.batch() * c.tk()];
        for (int j = c.tk() - 2; j < c.tk(); j++) {
          padding[j] = 1; // sample 0 ignores its last two keys
        }
        options = options.keyPaddingMask(tensor(arena, padding, c.batch(), c.tk()));
      }
      AttentionReference.Problem problem = new AttentionReference.Problem(c.batch(), c.heads(),
          c.kvHeads(), c.tq(), c.tk(), c.d(), c.dv(), scale, c.causal(), additive, attend,
          padding, c.dropout(), 77);
      Tensor tq = tensor(arena, q, c.batch(), c.heads(), c.tq(), c.d());
      Tensor tk = tensor(arena, k, c.batch(), c.kvHeads(), c.tk(), c.d());
      Tensor tv = tensor(arena, v, c.batch(), c.kvHeads(), c.tk(), c.dv());
      var result = ScaledDotProductAttention.forward(arena, tq, tk, tv, options, Mode.TRAINING);
      double[] out = doubles(result.output());
      assertClose(AttentionReference.forward(problem, q, k, v), out, Tolerances.ATTENTION_FORWARD,
          "output");
      for (double value : out) {
        assertTrue(Double.isFinite(value), "no NaN, even for fully masked rows");
      }
      assertClose(AttentionReference.weights(problem, q, k),
          doubles(ScaledDotProductAttention.weights(arena, tq, tk, options)),
          Tolerances.ATTENTION_FORWARD, "weights");

      double[] g = random(random, out.length);
      var grads = ScaledDotProductAttention.backward(arena, result.context(),
          tensor(arena, g, result.output().shape().dims()));
      DoubleSupplier loss = () -> {
        double[] o = AttentionReference.forward(problem, q, k, v);
        double sum = 0;
        for (int i = 0; i < o.length; i++) {
          sum += o[i] * g[i];
        }
        return sum;
      };
      double budget = Tolerances.ATTENTION_BACKWARD;
      assertClose(FiniteDifferences.gradient(q, loss), doubles(grads.query()), budget, "dq");
      assertClose(FiniteDifferences.gradient(k, loss), doubles(grads.key()), budget, "dk");
      assertClose(FiniteDifferences.gradient(v, loss), doubles(grads.value()), budget, "dv");
    }
  }

  /**
   * The forward's vector kernels at the head and value sizes of real models, across query blocks
   * (96) and key blocks (128) and their ragged ends: 16-, 8- and single-column value paths. The
   * backward's kernels too, against the float64 gradient worked out analytically (finite
   * differences at these sizes take seconds).
   */
  @ParameterizedTest(name = "d={0} dv={1} causal={2}")
  @org.junit.jupiter.params.provider.CsvSource({
    "64, 64, false", "64, 72, true", "64, 20, false", "33, 8, true", "80, 9, false", "7, 24, true"})
  void wideHeadsMatchTheReferenceAcrossBlocks(int d, int dv, boolean causal) {
    shapeMatchesTheReference(101, 261, d, dv, causal);
  }

  /**
   * Forward and backward of two query heads over one key/value head, two samples (the second
   * ignores its last five keys), against the float64 reference: tq queries, tk keys (tk > 5).
   */
  void shapeMatchesTheReference(int tq, int tk, int d, int dv, boolean causal) {
    Random random = new Random(31L * d + dv);
    int batch = 2, heads = 2, kvHeads = 1;
    try (Arena arena = Arena.ofConfined()) {
      double[] q = random(random, batch * heads * tq * d);
      double[] k = random(random, batch * kvHeads * tk * d);
      double[] v = random(random, batch * kvHeads * tk * dv);
      double[] padding = new double[batch * tk];
      for (int j = tk - 5; j < tk; j++) {
        padding[tk + j] = 1; // sample 1 ignores its last five keys
      }
      ScaledDotProductAttention.Options options = ScaledDotProductAttention.Options.DEFAULT
          .causal(causal).keyPaddingMask(tensor(arena, padding, batch, tk));
      AttentionReference.Problem problem = new AttentionReference.Problem(batch, heads, kvHeads,
          tq, tk, d, dv, 1 / Math.sqrt(d), causal, null, null, padding, 0f, 0);
      assertForwardAndGradients(arena, problem, options, q, k, v, random(random,
          batch * heads * tq * dv), Tolerances.ATTENTION_FORWARD,
          Tolerances.ATTENTION_BACKWARD_ANALYTIC);
    }
  }

  /**
   * The forward of (q, k, v) against the float64 reference, and its backward of the output
   * gradient g against the float64 gradients worked out analytically.
   */
  static void assertForwardAndGradients(Arena arena, AttentionReference.Problem p,
      ScaledDotProductAttention.Options options, double[] q, double[] k, double[] v, double[] g,
      double forwardTolerance, double backwardTolerance) {
    var result = ScaledDotProductAttention.forward(arena,
        tensor(arena, q, p.batch(), p.heads(), p.tq(), p.d()),
        tensor(arena, k, p.batch(), p.kvHeads(), p.tk(), p.d()),
        tensor(arena, v, p.batch(), p.kvHeads(), p.tk(), p.dv()), options, Mode.TRAINING);
    assertClose(AttentionReference.forward(p, q, k, v), doubles(result.output()),
        forwardTolerance, "output");
    var grads = ScaledDotProductAttention.backward(arena, result.context(),
        tensor(arena, g, p.batch(), p.heads(), p.tq(), p.dv()));
    double[][] expected = gradients(p, q, k, v, g);
    assertClose(expected[0], doubles(grads.query()), backwardTolerance, "dq");
    assertClose(expected[1], doubles(grads.key()), backwardTolerance, "dk");
    assertClose(expected[2], doubles(grads.value()), backwardTolerance, "dv");
  }

  /**
   * Scores far from zero along one unit direction u: q_i = 20 u + noise and k_j = a_j u + noise,
   * scale 1/8. Without a causal mask every score is below -100, and a key count that is not a
   * multiple of the 16-key panels leaves zero-padded keys whose score 0 must not count as a row's
   * max; with one, a key that rows do not see yet scores +8 against their -120, and must not count
   * either: a row max taken over either would shift every exp below float's range (all weights
   * 0). Forward and gradients against float64, no key padding mask (so that the kernels'
   * unmasked path runs).
   */
  void extremeScoresMatchTheReference(int tq, int tk, boolean causal) {
    Random random = new Random(tq * 31L + tk);
    int batch = 1, heads = 2, kvHeads = 1, d = 64, dv = 16;
    double[] u = new double[d];
    for (int e = 0; e < d; e++) {
      u[e] = 1 / Math.sqrt(d);
    }
    try (Arena arena = Arena.ofConfined()) {
      double[] q = new double[batch * heads * tq * d];
      for (int row = 0; row < batch * heads * tq; row++) {
        for (int e = 0; e < d; e++) {
          q[row * d + e] = (float) (20 * u[e] + 0.01 * random.nextGaussian());
        }
      }
      double[] k = new double[batch * kvHeads * tk * d];
      for (int j = 0; j < tk; j++) {
        // causal: key 47 bright (score +8), the others dim (-120 and below). Queries 36 to 47 are
        // one tile row group of 12 rows (or 42 to 47 one of 6) that computes keys 0 to 47, a whole
        // number of 16-key panels: all but its last query see only dim keys, key 47 masked
        double along = causal ? (j == 47 ? 3.2 : -48 - 0.02 * j) : -40 - 0.1 * j;
        for (int e = 0; e < d; e++) {
          k[j * d + e] = (float) (along * u[e] + 0.01 * random.nextGaussian());
        }
      }
      double[] v = random(random, batch * kvHeads * tk * dv);
      ScaledDotProductAttention.Options options =
          ScaledDotProductAttention.Options.DEFAULT.causal(causal);
      AttentionReference.Problem problem = new AttentionReference.Problem(batch, heads, kvHeads,
          tq, tk, d, dv, 1 / Math.sqrt(d), causal, null, null, null, 0f, 0);
      assertForwardAndGradients(arena, problem, options, q, k, v, random(random,
          batch * heads * tq * dv), Tolerances.ATTENTION_EXTREME_SCORES,
          Tolerances.ATTENTION_EXTREME_SCORES);
    }
  }

  /** dq, dk, dv of Σ out · g in float64, without dropout. */
  static double[][] gradients(AttentionReference.Problem p, double[] q, double[] k, double[] v,
      double[] g) {
    double[] w = AttentionReference.weights(p, q, k);
    double[] dq = new double[q.length];
    double[] dk = new double[k.length];
    double[] dv = new double[v.length];
    int group = p.heads() / p.kvHeads();
    for (int n = 0; n < p.batch(); n++) {
      for (int h = 0; h < p.heads(); h++) {
        int kh = n * p.kvHeads() + h / group;
        for (int i = 0; i < p.tq(); i++) {
          int row = (n * p.heads() + h) * p.tq() + i;
          double[] dp = new double[p.tk()];
          double dot = 0;
          for (int j = 0; j < p.tk(); j++) {
            double weight = w[row * p.tk() + j];
            for (int e = 0; e < p.dv(); e++) {
              dp[j] += g[row * p.dv() + e] * v[(kh * p.tk() + j) * p.dv() + e];
              dv[(kh * p.tk() + j) * p.dv() + e] += weight * g[row * p.dv() + e];
            }
            dot += weight * dp[j];
          }
          for (int j = 0; j < p.tk(); j++) {
            double ds = p.scale() * w[row * p.tk() + j] * (dp[j] - dot);
            for (int e = 0; e < p.d(); e++) {
              dq[row * p.d() + e] += ds * k[(kh * p.tk() + j) * p.d() + e];
              dk[(kh * p.tk() + j) * p.d() + e] += ds * q[row * p.d() + e];
            }
          }
        }
      }
    }
    return new double[][] {dq, dk, dv};
  }

  @Test
  void inferenceAppliesNoDropoutAndSavesNothing() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.randomNormal(arena, 1, 1, 2, 4, 3);
      Tensor k = Tensor.randomNormal(arena, 2, 1, 2, 5, 3);
      Tensor v = Tensor.randomNormal(arena, 3, 1, 2, 5, 3);
      var options = ScaledDotProductAttention.Options.DEFAULT.dropout(0.5f, 1);
      var inference = ScaledDotProductAttention.forward(arena, q, k, v, options, Mode.INFERENCE);
      var plain = ScaledDotProductAttention.forward(arena, q, k, v,
          ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE);
      assertEquals(null, inference.context());
      org.junit.jupiter.api.Assertions.assertArrayEquals(plain.output().toArray(),
          inference.output().toArray());
    }
  }

  @Test
  void badShapesAndMasksAreRejected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.zeros(arena, 2, 6, 4, 8);
      var options = ScaledDotProductAttention.Options.DEFAULT;
      var e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention
          .forward(arena, q, Tensor.zeros(arena, 2, 4, 5, 8), Tensor.zeros(arena, 2, 4, 5, 8),
              options, Mode.INFERENCE));
      assertEquals("k: the query heads (6) must be a multiple of the key/value heads, got 4",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention
          .forward(arena, q, Tensor.zeros(arena, 2, 3, 5, 7), Tensor.zeros(arena, 2, 3, 5, 8),
              options, Mode.INFERENCE));
      assertEquals("k: expected (2, kv_heads, Tk, 8) to match q (2, 6, 4, 8) in batch and head"
          + " size, got (2, 3, 5, 7)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention
          .forward(arena, q, Tensor.zeros(arena, 2, 3, 5, 8), Tensor.zeros(arena, 2, 3, 5, 8),
              options.booleanMask(Tensor.zeros(arena, 3, 5)), Mode.INFERENCE));
      assertEquals("mask: shape (3, 5) does not broadcast to (2, 6, 4, 5) (N, Hq, Tq, Tk)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> ScaledDotProductAttention
          .forward(arena, q, Tensor.zeros(arena, 2, 3, 5, 8), Tensor.zeros(arena, 2, 3, 5, 8),
              options.keyPaddingMask(Tensor.zeros(arena, 2, 4)), Mode.INFERENCE));
      assertEquals("keyPaddingMask: expected shape (2, 5) (N, Tk), got (2, 4)", e.getMessage());
    }
  }
}
