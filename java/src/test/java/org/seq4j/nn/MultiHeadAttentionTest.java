package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.seq4j.Tensor;
import org.seq4j.reference.AttentionReference;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.Tolerances;

/** Multi-head attention against a float64 composition of projections and reference attention. */
class MultiHeadAttentionTest {
  static final int E = 6;
  static final int HEADS = 2;

  /** y (T·N rows) = x W^T + b. */
  static double[] project(double[] x, double[] w, double[] b, int bOffset, int rows, int in,
      int out) {
    double[] y = new double[rows * out];
    for (int r = 0; r < rows; r++) {
      for (int o = 0; o < out; o++) {
        double sum = b == null ? 0 : b[bOffset + o];
        for (int i = 0; i < in; i++) {
          sum += x[r * in + i] * w[o * in + i];
        }
        y[r * out + o] = sum;
      }
    }
    return y;
  }

  /** (T, N, H·d) time-major -> (N, H, T, d) and back. */
  static double[] toHeads(double[] x, int t, int n, int d) {
    double[] out = new double[x.length];
    for (int a = 0; a < t; a++) {
      for (int b = 0; b < n; b++) {
        for (int h = 0; h < HEADS; h++) {
          for (int e = 0; e < d; e++) {
            out[((b * HEADS + h) * t + a) * d + e] = x[(a * n + b) * HEADS * d + h * d + e];
          }
        }
      }
    }
    return out;
  }

  static double[] fromHeads(double[] x, int t, int n, int d) {
    double[] out = new double[x.length];
    for (int a = 0; a < t; a++) {
      for (int b = 0; b < n; b++) {
        for (int h = 0; h < HEADS; h++) {
          for (int e = 0; e < d; e++) {
            out[(a * n + b) * HEADS * d + h * d + e] = x[((b * HEADS + h) * t + a) * d + e];
          }
        }
      }
    }
    return out;
  }

  static double[] reference(Map<String, double[]> p, double[] query, double[] key,
      double[] value, int l, int s, int n, int kdim, boolean causal, double[] padding) {
    int d = E / HEADS;
    boolean packed = p.containsKey("in_proj_weight");
    double[] wq = packed ? java.util.Arrays.copyOfRange(p.get("in_proj_weight"), 0, E * E)
        : p.get("q_proj_weight");
    double[] wk = packed ? java.util.Arrays.copyOfRange(p.get("in_proj_weight"), E * E, 2 * E * E)
        : p.get("k_proj_weight");
    double[] wv = packed ? java.util.Arrays.copyOfRange(p.get("in_proj_weight"), 2 * E * E,
        3 * E * E) : p.get("v_proj_weight");
    double[] b = p.get("in_proj_bias");
    double[] q = toHeads(project(query, wq, b, 0, l * n, E, E), l, n, d);
    double[] k = toHeads(project(key, wk, b, E, s * n, kdim, E), s, n, d);
    double[] v = toHeads(project(value, wv, b, 2 * E, s * n, kdim, E), s, n, d);
    AttentionReference.Problem problem = new AttentionReference.Problem(n, HEADS, HEADS, l, s,
        d, d, 1 / Math.sqrt(d), causal, null, null, padding, 0, 0);
    double[] merged = fromHeads(AttentionReference.forward(problem, q, k, v), l, n, d);
    return project(merged, p.get("out_proj.weight"), p.get("out_proj.bias"), 0, l * n, E, E);
  }

  static double[] random(Random random, int size) {
    double[] out = new double[size];
    for (int i = 0; i < size; i++) {
      out[i] = (float) random.nextGaussian();
    }
    return out;
  }

  static double[] swap(double[] x, int a, int b, int c) {
    double[] out = new double[x.length];
    for (int i = 0; i < a; i++) {
      for (int j = 0; j < b; j++) {
        System.arraycopy(x, (i * b + j) * c, out, (j * a + i) * c, c);
      }
    }
    return out;
  }

  /** Every parameter of mha set to standard normals; their values by name, for the reference. */
  static Map<String, double[]> randomParameters(MultiHeadAttention mha, Arena arena,
      Random random) {
    Map<String, double[]> params = new LinkedHashMap<>();
    for (Parameter p : mha.parameters()) {
      double[] values = random(random, (int) p.data().size());
      p.data().copyFrom(tensor(arena, values, p.shape().dims()));
      params.put(p.name(), values);
    }
    return params;
  }

  /** x, given time-major (t, n, c), as the layer takes it: (n, t, c) when batch-first. */
  static Tensor layerTensor(Arena arena, double[] x, int t, int n, int c, boolean batchFirst) {
    return batchFirst ? tensor(arena, swap(x, t, n, c), n, t, c) : tensor(arena, x, t, n, c);
  }

  @ParameterizedTest(name = "kdim={0} batchFirst={1} causal={2} padding={3}")
  @CsvSource({"6, false, false, false", "4, false, true, false", "6, true, false, true",
      "4, true, true, true"})
  void forwardAndGradientsMatchTheReference(int kdim, boolean batchFirst, boolean causal,
      boolean padding) {
    int l = 3;
    int s = 4;
    int n = 2;
    Random random = new Random(kdim * 7 + (batchFirst ? 1 : 0));
    try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).keyDim(kdim).valueDim(kdim)
        .batchFirst(batchFirst).seed(3).build(); Arena arena = Arena.ofConfined()) {
      Map<String, double[]> params = randomParameters(mha, arena, random); // biases too
      assertEquals(kdim == E ? List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
          "out_proj.bias") : List.of("q_proj_weight", "k_proj_weight", "v_proj_weight",
          "in_proj_bias", "out_proj.weight", "out_proj.bias"),
          mha.parameters().stream().map(Parameter::name).toList());
      double[] query = random(random, l * n * E);
      double[] key = random(random, s * n * kdim);
      double[] value = random(random, s * n * kdim);
      double[] pad = padding ? new double[] {0, 0, 1, 1, 0, 0, 0, 1} : null;
      ScaledDotProductAttention.Options options =
          ScaledDotProductAttention.Options.DEFAULT.causal(causal);
      if (pad != null) {
        options = options.keyPaddingMask(tensor(arena, pad, n, s));
      }
      Tensor tq = layerTensor(arena, query, l, n, E, batchFirst);
      Tensor tk = layerTensor(arena, key, s, n, kdim, batchFirst);
      Tensor tv = layerTensor(arena, value, s, n, kdim, batchFirst);
      MultiHeadAttention.Result result =
          mha.forwardWithWeights(arena, tq, tk, tv, options, Mode.TRAINING);
      double[] out = doubles(result.output());
      if (batchFirst) {
        out = swap(out, n, l, E);
      }
      assertClose(reference(params, query, key, value, l, s, n, kdim, causal, pad), out,
          Tolerances.MULTI_HEAD_ATTENTION_FORWARD, "output");
      assertEquals(org.seq4j.Shape.of(n, l, s), result.weights().shape());
      double rowSum = 0;
      for (int j = 0; j < s; j++) {
        rowSum += result.weights().get(1, 2, j);
      }
      assertEquals(1.0, rowSum, Tolerances.PROBABILITY_SUM, "averaged weights are a distribution");

      double[] g = random(random, l * n * E);
      Tensor gradOutput = layerTensor(arena, g, l, n, E, batchFirst);
      MultiHeadAttention.Gradients grads = mha.backward(arena, result.context(), gradOutput);
      DoubleSupplier loss = () -> {
        double[] y = reference(params, query, key, value, l, s, n, kdim, causal, pad);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
          sum += y[i] * g[i];
        }
        return sum;
      };
      double[] dq = doubles(grads.query());
      double[] dk = doubles(grads.key());
      double[] dv = doubles(grads.value());
      if (batchFirst) {
        dq = swap(dq, n, l, E);
        dk = swap(dk, n, s, kdim);
        dv = swap(dv, n, s, kdim);
      }
      double budget = Tolerances.MULTI_HEAD_ATTENTION_BACKWARD;
      assertClose(FiniteDifferences.gradient(query, loss), dq, budget, "d query");
      assertClose(FiniteDifferences.gradient(key, loss), dk, budget, "d key");
      assertClose(FiniteDifferences.gradient(value, loss), dv, budget, "d value");
      for (Parameter p : mha.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss), doubles(p.grad()),
            budget, "d " + p.name());
      }
    }
  }

  /**
   * Self-attention, query, key and value one tensor: the packed path (one product against
   * in_proj_weight, one permute into heads, and in the backward one product for the summed input
   * gradient). The forward against the float64 reference; the input gradient, by the explicit
   * backward (three gradients, summed here) and by the graph (one), against finite differences of
   * the loss through all three uses of x; the parameters' gradients too, by either route.
   */
  @ParameterizedTest(name = "batchFirst={0} causal={1} padding={2} graph={3}")
  @CsvSource({"false, false, false, false", "true, true, false, false", "true, false, true, true",
      "false, true, true, true"})
  void selfAttentionMatchesTheReference(boolean batchFirst, boolean causal, boolean padding,
      boolean graph) {
    int l = 4;
    int n = 2;
    Random random = new Random(31 + (batchFirst ? 1 : 0) + (causal ? 2 : 0));
    try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).batchFirst(batchFirst)
        .seed(5).build(); Arena arena = Arena.ofConfined()) {
      Map<String, double[]> params = randomParameters(mha, arena, random);
      double[] x = random(random, l * n * E);
      double[] pad = padding ? new double[] {0, 0, 1, 1, 0, 0, 0, 1} : null;
      ScaledDotProductAttention.Options options =
          ScaledDotProductAttention.Options.DEFAULT.causal(causal);
      if (pad != null) {
        options = options.keyPaddingMask(tensor(arena, pad, n, l));
      }
      Tensor input = layerTensor(arena, x, l, n, E, batchFirst);
      double[] g = random(random, l * n * E);
      Tensor gradOutput = layerTensor(arena, g, l, n, E, batchFirst);
      double[] dx;
      MultiHeadAttention.Result result;
      if (graph) {
        Tensor leaf = input.requiresGrad(true);
        result = mha.forward(arena, leaf, leaf, leaf, options, Mode.TRAINING);
        result.output().backward(gradOutput);
        dx = doubles(leaf.grad());
      } else {
        result = mha.forward(arena, input, input, input, options, Mode.TRAINING);
        MultiHeadAttention.Gradients grads = mha.backward(arena, result.context(), gradOutput);
        dx = doubles(grads.query());
        double[] dk = doubles(grads.key());
        double[] dv = doubles(grads.value());
        for (int i = 0; i < dx.length; i++) {
          dx[i] += dk[i] + dv[i];
        }
      }
      double[] out = doubles(result.output());
      if (batchFirst) {
        out = swap(out, n, l, E);
        dx = swap(dx, n, l, E);
      }
      assertClose(reference(params, x, x, x, l, l, n, E, causal, pad), out,
          Tolerances.MULTI_HEAD_ATTENTION_FORWARD, "output");
      DoubleSupplier loss = () -> {
        double[] y = reference(params, x, x, x, l, l, n, E, causal, pad);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
          sum += y[i] * g[i];
        }
        return sum;
      };
      double budget = Tolerances.MULTI_HEAD_ATTENTION_BACKWARD;
      assertClose(FiniteDifferences.gradient(x, loss), dx, budget, "d x");
      for (Parameter p : mha.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss), doubles(p.grad()),
            budget, "d " + p.name());
      }
    }
  }

  @Test
  void cachedDecodingEqualsTheFullCausalForward() {
    for (boolean batchFirst : new boolean[] {false, true}) {
      try (MultiHeadAttention mha = MultiHeadAttention.builder(E, HEADS).batchFirst(batchFirst)
          .seed(11).build(); Arena arena = Arena.ofConfined()) {
        int t = 5;
        int n = 2;
        Tensor x = batchFirst ? Tensor.randomNormal(arena, 1, n, t, E)
            : Tensor.randomNormal(arena, 1, t, n, E);
        Tensor full = mha.forward(arena, x, x, x,
            ScaledDotProductAttention.Options.DEFAULT.causal(true), Mode.INFERENCE)
            .output();
        MultiHeadAttention.Cache cache = mha.newCache(arena, n, 8);
        // one position, then two, then two: any split gives the same outputs
        long[][] chunks = {{0, 1}, {1, 3}, {3, 5}};
        for (long[] chunk : chunks) {
          Tensor step = batchFirst ? slice(arena, x, n, t, chunk[0], chunk[1])
              : x.slice(chunk[0], chunk[1]);
          Tensor out = mha.forwardStep(arena, step, cache);
          Tensor expected = batchFirst ? slice(arena, full, n, t, chunk[0], chunk[1])
              : full.slice(chunk[0], chunk[1]);
          org.junit.jupiter.api.Assertions.assertArrayEquals(expected.toArray(), out.toArray(),
              (float) Tolerances.CACHED_ATTENTION_STEP, "positions " + chunk[0] + ".." + chunk[1]);
        }
        assertEquals(5, cache.length());
        var e = assertThrows(IllegalStateException.class, () -> mha.forwardStep(arena,
            batchFirst ? Tensor.zeros(arena, n, 4, E) : Tensor.zeros(arena, 4, n, E), cache));
        assertEquals("cache: it holds 5 of 8 positions; 4 more do not fit", e.getMessage());
      }
    }
  }

  /** Positions [from, to) of a batch-first (n, t, E) tensor, copied. */
  static Tensor slice(Arena arena, Tensor x, int n, int t, long from, long to) {
    Tensor out = Tensor.zeros(arena, n, to - from, E);
    for (int b = 0; b < n; b++) {
      out.slice(b, b + 1).reshape(to - from, E).copyFrom(
          x.slice(b, b + 1).reshape(t, E).slice(from, to));
    }
    return out;
  }

  @Test
  void badShapesAreRejected() {
    try (MultiHeadAttention mha = new MultiHeadAttention(6, 2); Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class, () -> mha.forward(arena,
          Tensor.zeros(arena, 3, 2, 5), Tensor.zeros(arena, 4, 2, 6), Tensor.zeros(arena, 4, 2, 6),
          ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE));
      assertEquals("query: expected shape (L, N, 6), got (3, 2, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> mha.forward(arena,
          Tensor.zeros(arena, 3, 2, 6), Tensor.zeros(arena, 4, 3, 6), Tensor.zeros(arena, 4, 3, 6),
          ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE));
      assertEquals("key, value: expected the same batch (2) and source length, got key (4, 3, 6)"
          + " and value (4, 3, 6)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> new MultiHeadAttention(7, 2));
      assertEquals("embedDim, heads: expected embedDim divisible by heads, both >= 1, got 7 and 2",
          e.getMessage());
    }
  }
}
