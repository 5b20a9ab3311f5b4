package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.seq4j.Autograd;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.Tolerances;

/**
 * The gradient through {@link MultiHeadAttention}'s returned attention weights (PyTorch's {@code
 * need_weights=True} with a loss on them), against central finite differences of a float64
 * composition written here from the equations: projections, per-head scores with the causal and
 * key padding masks, softmax, weights (averaged over heads or per head), output.
 */
class MultiHeadAttentionWeightsTest {
  static final int E = 6;
  static final int HEADS = 3;
  static final int D = E / HEADS;

  /** The output (L·N·E, time-major) and the weights ((N, L, S) averaged or (N, H, L, S)). */
  record Forward(double[] output, double[] weights) {}

  static double[] project(double[] x, double[] w, double[] b, int bOffset, int rows, int in) {
    double[] y = new double[rows * E];
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < E; o++) {
        double sum = b == null ? 0 : b[bOffset + o];
        for (int i = 0; i < in; i++) {
          sum += x[r * in + i] * w[o * in + i];
        }
        y[r * E + o] = sum;
      }
    }
    return y;
  }

  /**
   * The layer from the equations: for batch b, head h, query i and key j, s = (q·k)/√d, −∞ where
   * j > i (causal) or key j of batch b is padding; P = softmax over j; out = Σ_j P v; the merged
   * heads go through out_proj.
   */
  static Forward reference(Map<String, double[]> p, double[] query, double[] key,
      double[] value, int l, int s, int n, boolean causal, double[] padding, boolean average) {
    double[] w = p.get("in_proj_weight");
    double[] wq = java.util.Arrays.copyOfRange(w, 0, E * E);
    double[] wk = java.util.Arrays.copyOfRange(w, E * E, 2 * E * E);
    double[] wv = java.util.Arrays.copyOfRange(w, 2 * E * E, 3 * E * E);
    double[] bias = p.get("in_proj_bias");
    double[] q = project(query, wq, bias, 0, l * n, E); // rows (i, b), columns (h, e)
    double[] k = project(key, wk, bias, E, s * n, E);
    double[] v = project(value, wv, bias, 2 * E, s * n, E);
    double[] merged = new double[l * n * E];
    double[] weights = average ? new double[n * l * s] : new double[n * HEADS * l * s];
    for (int b = 0; b < n; b++) {
      for (int h = 0; h < HEADS; h++) {
        for (int i = 0; i < l; i++) {
          double[] score = new double[s];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < s; j++) {
            boolean masked = (causal && j > i) || (padding != null && padding[b * s + j] != 0);
            double dot = 0;
            for (int e = 0; e < D; e++) {
              dot += q[(i * n + b) * E + h * D + e] * k[(j * n + b) * E + h * D + e];
            }
            score[j] = masked ? Double.NEGATIVE_INFINITY : dot / Math.sqrt(D);
            max = Math.max(max, score[j]);
          }
          double total = 0;
          for (int j = 0; j < s; j++) {
            score[j] = Double.isInfinite(score[j]) ? 0 : Math.exp(score[j] - max);
            total += score[j];
          }
          for (int j = 0; j < s; j++) {
            double prob = score[j] / total;
            if (average) {
              weights[(b * l + i) * s + j] += prob / HEADS;
            } else {
              weights[((b * HEADS + h) * l + i) * s + j] = prob;
            }
            for (int e = 0; e < D; e++) {
              merged[(i * n + b) * E + h * D + e] += prob * v[(j * n + b) * E + h * D + e];
            }
          }
        }
      }
    }
    double[] out = project(merged, p.get("out_proj.weight"), p.get("out_proj.bias"), 0, l * n, E);
    return new Forward(out, weights);
  }

  static double dot(double[] a, double[] b) {
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += a[i] * b[i];
    }
    return sum;
  }

  /** Sets every parameter to seeded values (non-zero biases) and returns them by name. */
  static Map<String, double[]> randomize(MultiHeadAttention mha, Random random, Arena arena) {
    Map<String, double[]> params = new LinkedHashMap<>();
    for (Map.Entry<String, Parameter> e : mha.namedParameters().entrySet()) {
      double[] values = MultiHeadAttentionTest.random(random, (int) e.getValue().data().size());
      e.getValue().data().copyFrom(tensor(arena, values, e.getValue().shape().dims()));
      params.put(e.getKey(), values);
    }
    return params;
  }

  @ParameterizedTest(name = "loss on {0}, average={1}, causal={2}, padding={3}")
  @CsvSource({"weights, true, false, false", "weights, false, false, false",
      "weights, true, true, true", "weights, false, true, true", "output, true, true, true",
      "output, false, false, true", "both, true, true, true", "both, false, true, true",
      "both, false, false, false"})
  void gradientsOfALossOnTheWeightsMatchFiniteDifferences(String lossOn, boolean average,
      boolean causal, boolean padding) {
    int l = 3;
    int s = causal ? 3 : 4; // causal self-attention shapes: L = S
    int n = 2;
    Random random = new Random(lossOn.hashCode() * 31L + (average ? 1 : 0) + (causal ? 2 : 0));
    try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).seed(5).build();
        Arena arena = Arena.ofConfined()) {
      Map<String, double[]> params = randomize(mha, random, arena);
      double[] query = MultiHeadAttentionTest.random(random, l * n * E);
      double[] key = MultiHeadAttentionTest.random(random, s * n * E);
      double[] value = MultiHeadAttentionTest.random(random, s * n * E);
      // batch 0 ignores its last key, batch 1 its first (never every key of a causal row 0)
      double[] pad = padding ? (s == 3 ? new double[] {0, 0, 1, 0, 0, 1}
          : new double[] {0, 0, 0, 1, 1, 0, 0, 0}) : null;
      var options = ScaledDotProductAttention.Options.DEFAULT.causal(causal);
      if (pad != null) {
        options = options.keyPaddingMask(tensor(arena, pad, n, s));
      }
      MultiHeadAttention.Result result = mha.forwardWithWeights(arena,
          tensor(arena, query, l, n, E), tensor(arena, key, s, n, E),
          tensor(arena, value, s, n, E), options, average, Mode.TRAINING);
      Forward expected = reference(params, query, key, value, l, s, n, causal, pad, average);
      assertClose(expected.output(), doubles(result.output()),
          Tolerances.MULTI_HEAD_ATTENTION_FORWARD, "output");
      assertEquals(average ? Shape.of(n, l, s) : Shape.of(n, HEADS, l, s),
          result.weights().shape());
      assertClose(expected.weights(), doubles(result.weights()),
          Tolerances.MULTI_HEAD_ATTENTION_FORWARD, "weights");

      boolean onOutput = !lossOn.equals("weights");
      boolean onWeights = !lossOn.equals("output");
      double[] gOut = onOutput ? MultiHeadAttentionTest.random(random, l * n * E) : null;
      double[] gW = onWeights ? MultiHeadAttentionTest.random(random, expected.weights().length)
          : null;
      MultiHeadAttention.Gradients grads = mha.backward(arena, result.context(),
          gOut == null ? null : tensor(arena, gOut, l, n, E),
          gW == null ? null : tensor(arena, gW, result.weights().shape().dims()));
      DoubleSupplier loss = () -> {
        Forward f = reference(params, query, key, value, l, s, n, causal, pad, average);
        return (gOut == null ? 0 : dot(f.output(), gOut))
            + (gW == null ? 0 : dot(f.weights(), gW));
      };
      double budget = Tolerances.MULTI_HEAD_ATTENTION_BACKWARD;
      assertClose(FiniteDifferences.gradient(query, loss), doubles(grads.query()), budget,
          "d query");
      assertClose(FiniteDifferences.gradient(key, loss), doubles(grads.key()), budget, "d key");
      double[] dValue = FiniteDifferences.gradient(value, loss);
      assertClose(dValue, doubles(grads.value()), budget, "d value");
      if (!onOutput) {
        assertEquals(0, dot(dValue, dValue), "the weights do not depend on the values");
      }
      for (Map.Entry<String, Parameter> e : mha.namedParameters().entrySet()) {
        assertClose(FiniteDifferences.gradient(params.get(e.getKey()), loss),
            doubles(e.getValue().grad()), budget, "d " + e.getKey());
      }
    }
  }

  /** A scalar loss Σ gOut·out + Σ gW·w recorded through the public API, for the graph's path. */
  static Tensor loss(Arena arena, Tensor output, Tensor weights, Tensor gOut, Tensor gW) {
    double sum = 0;
    float[] o = output.toArray();
    float[] go = gOut.toArray();
    float[] w = weights.toArray();
    float[] gw = gW.toArray();
    for (int i = 0; i < o.length; i++) {
      sum += (double) o[i] * go[i];
    }
    for (int i = 0; i < w.length; i++) {
      sum += (double) w[i] * gw[i];
    }
    Tensor loss = Tensor.full(arena, (float) sum, 1);
    Autograd.record("test loss", List.of(output, weights), List.of(loss), List.of(),
        (scratch, g) -> new Tensor[] {gOut, gW});
    return loss;
  }

  @Test
  void theGraphGivesTheExplicitGradientsAndTheTwoCannotBothRun() {
    for (boolean average : new boolean[] {true, false}) {
      try (MultiHeadAttention explicit = MultiHeadAttention.builder(E, HEADS).seed(8).build();
          MultiHeadAttention graph = MultiHeadAttention.builder(E, HEADS).seed(8).build();
          Arena arena = Arena.ofConfined()) {
        Tensor x = Tensor.randomNormal(arena, 1, 4, 2, E);
        Tensor gOut = Tensor.randomNormal(arena, 2, 4, 2, E);
        Tensor gW = Tensor.randomNormal(arena, 3,
            average ? new long[] {2, 4, 4} : new long[] {2, HEADS, 4, 4});
        var options = ScaledDotProductAttention.Options.DEFAULT.causal(true);
        var r1 = explicit.forwardWithWeights(arena, x, x, x, options, average, Mode.TRAINING);
        var g1 = explicit.backward(arena, r1.context(), gOut, gW);
        Tensor leaf = x.copy(arena).requiresGrad(true);
        var r2 = graph.forwardWithWeights(arena, leaf, leaf, leaf, options, average,
            Mode.TRAINING);
        loss(arena, r2.output(), r2.weights(), gOut, gW).backward();
        // the graph's one input gets the three gradients' sum by one product against the packed
        // in_proj_weight; the explicit backward returns the three: the same sums, split otherwise
        float[] expected = doubles3(g1);
        assertArrayEquals(expected, leaf.grad().toArray(), (float) Tolerances.REROUTED,
            "d x (query, key and value summed)");
        for (String name : explicit.namedParameters().keySet()) {
          assertArrayEquals(explicit.namedParameters().get(name).grad().toArray(),
              graph.namedParameters().get(name).grad().toArray(), (float) Tolerances.REPLAYED,
              name);
        }
        var e = assertThrows(IllegalStateException.class,
            () -> graph.backward(arena, r2.context(), gOut, gW));
        assertTrue(e.getMessage().startsWith("MultiHeadAttention.backward: the forward's"
            + " backward already ran"), e.getMessage());
        // and the other way round: an explicit backward first, then the graph's
        var r3 = graph.forwardWithWeights(arena, leaf, leaf, leaf, options, average,
            Mode.TRAINING);
        graph.backward(arena, r3.context(), gOut, gW);
        Tensor again = loss(arena, r3.output(), r3.weights(), gOut, gW);
        e = assertThrows(IllegalStateException.class, again::backward);
        assertTrue(e.getMessage().contains("MultiHeadAttention.forwardWithWeights: trying to run"
            + " its backward a second time"), e.getMessage());
      }
    }
  }

  private static float[] doubles3(MultiHeadAttention.Gradients g) {
    float[] q = g.query().toArray();
    float[] k = g.key().toArray();
    float[] v = g.value().toArray();
    float[] sum = new float[q.length];
    for (int i = 0; i < q.length; i++) {
      sum[i] = q[i] + k[i] + v[i];
    }
    return sum;
  }

  @Test
  void withDropoutTheWeightsAreThoseTheOutputWasComputedWith() {
    // PyTorch returns the dropped-out weights: out_proj(Σ_j w_ij v_j) must give the output
    try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).dropout(0.4f).seed(3)
        .build(); Arena arena = Arena.ofConfined()) {
      Random random = new Random(17);
      Map<String, double[]> params = randomize(mha, random, arena);
      int l = 3;
      int s = 5;
      int n = 2;
      double[] query = MultiHeadAttentionTest.random(random, l * n * E);
      double[] kv = MultiHeadAttentionTest.random(random, s * n * E);
      var result = mha.forwardWithWeights(arena, tensor(arena, query, l, n, E),
          tensor(arena, kv, s, n, E), tensor(arena, kv, s, n, E),
          ScaledDotProductAttention.Options.DEFAULT, false, Mode.TRAINING);
      double[] w = doubles(result.weights()); // (N, H, L, S)
      int zeros = 0;
      for (double x : w) {
        zeros += x == 0 ? 1 : 0;
      }
      assertTrue(zeros > 0 && zeros < w.length, "some weights dropped: " + zeros);
      double[] wv = java.util.Arrays.copyOfRange(params.get("in_proj_weight"), 2 * E * E,
          3 * E * E);
      double[] v = project(kv, wv, params.get("in_proj_bias"), 2 * E, s * n, E);
      double[] merged = new double[l * n * E];
      for (int b = 0; b < n; b++) {
        for (int h = 0; h < HEADS; h++) {
          for (int i = 0; i < l; i++) {
            for (int j = 0; j < s; j++) {
              for (int e = 0; e < D; e++) {
                merged[(i * n + b) * E + h * D + e] += w[((b * HEADS + h) * l + i) * s + j]
                    * v[(j * n + b) * E + h * D + e];
              }
            }
          }
        }
      }
      assertClose(project(merged, params.get("out_proj.weight"), params.get("out_proj.bias"), 0,
          l * n, E), doubles(result.output()), Tolerances.MULTI_HEAD_ATTENTION_FORWARD,
          "output from the returned weights");
      // in inference mode (eval), no dropout: the weights are rows of probabilities
      mha.eval();
      var plain = mha.forwardWithWeights(arena, tensor(arena, query, l, n, E),
          tensor(arena, kv, s, n, E), tensor(arena, kv, s, n, E),
          ScaledDotProductAttention.Options.DEFAULT, true, Mode.TRAINING);
      double sum = 0;
      for (int j = 0; j < s; j++) {
        sum += plain.weights().get(1, 2, j);
      }
      assertEquals(1.0, sum, Tolerances.PROBABILITY_SUM);
    }
  }

  @Test
  void aGradientOfDroppedOutWeightsMatchesFiniteDifferencesThroughTheSameMask() {
    // with the mask fixed (the weights that came back), w = mask ⊙ P / (1 − p): check dq against
    // the float64 composition with that mask read off the returned weights
    try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).dropout(0.3f).seed(21)
        .build(); Arena arena = Arena.ofConfined()) {
      Random random = new Random(23);
      Map<String, double[]> params = randomize(mha, random, arena);
      int l = 2;
      int s = 4;
      int n = 2;
      double[] query = MultiHeadAttentionTest.random(random, l * n * E);
      double[] kv = MultiHeadAttentionTest.random(random, s * n * E);
      var result = mha.forwardWithWeights(arena, tensor(arena, query, l, n, E),
          tensor(arena, kv, s, n, E), tensor(arena, kv, s, n, E),
          ScaledDotProductAttention.Options.DEFAULT, false, Mode.TRAINING);
      double[] w = doubles(result.weights());
      double[] keep = new double[w.length];
      for (int i = 0; i < w.length; i++) {
        keep[i] = w[i] == 0 ? 0 : 1 / 0.7;
      }
      double[] gW = MultiHeadAttentionTest.random(random, w.length);
      var grads = mha.backward(arena, result.context(), null,
          tensor(arena, gW, result.weights().shape().dims()));
      DoubleSupplier loss = () -> {
        double[] p = reference(params, query, kv, kv, l, s, n, false, null, false).weights();
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
          sum += p[i] * keep[i] * gW[i];
        }
        return sum;
      };
      assertClose(FiniteDifferences.gradient(query, loss), doubles(grads.query()),
          Tolerances.MULTI_HEAD_ATTENTION_BACKWARD, "d query");
      assertClose(FiniteDifferences.gradient(params.get("in_proj_weight"), loss),
          doubles(mha.namedParameters().get("in_proj_weight").grad()),
          Tolerances.MULTI_HEAD_ATTENTION_BACKWARD, "d in_proj_weight");
    }
  }
}
