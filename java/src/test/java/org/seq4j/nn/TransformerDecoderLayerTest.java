package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.LayerNormReference;
import org.seq4j.reference.Tolerances;

/** The decoder layer against a float64 composition of the references of its parts. */
class TransformerDecoderLayerTest {
  static final int E = MultiHeadAttentionTest.E;
  static final int FF = 5;

  static Map<String, double[]> part(Map<String, double[]> p, String prefix) {
    Map<String, double[]> out = new LinkedHashMap<>();
    for (String name : List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias")) {
      out.put(name, p.get(prefix + name));
    }
    return out;
  }

  static double[] norm(Map<String, double[]> p, String name, double[] x, int rows) {
    return LayerNormReference.forward(x, p.get(name + ".weight"), p.get(name + ".bias"), rows, E);
  }

  static double[] reference(Map<String, double[]> p, double[] target, double[] memory, int t,
      int s, int n, boolean normFirst) {
    int rows = t * n;
    double[] a = normFirst ? norm(p, "norm1", target, rows) : target;
    double[] x1 = TransformerEncoderLayerTest.add(target,
        MultiHeadAttentionTest.reference(part(p, "self_attn."), a, a, a, t, t, n, E, true, null));
    if (!normFirst) {
      x1 = norm(p, "norm1", x1, rows);
    }
    double[] b = normFirst ? norm(p, "norm2", x1, rows) : x1;
    double[] x2 = TransformerEncoderLayerTest.add(x1, MultiHeadAttentionTest.reference(
        part(p, "multihead_attn."), b, memory, memory, t, s, n, E, false, null));
    if (!normFirst) {
      x2 = norm(p, "norm2", x2, rows);
    }
    double[] c = normFirst ? norm(p, "norm3", x2, rows) : x2;
    double[] hidden = MultiHeadAttentionTest.project(c, p.get("linear1.weight"),
        p.get("linear1.bias"), 0, rows, E, FF);
    double[] ff = MultiHeadAttentionTest.project(
        TransformerEncoderLayerTest.apply(Activation.RELU, hidden), p.get("linear2.weight"),
        p.get("linear2.bias"), 0, rows, FF, E);
    double[] y = TransformerEncoderLayerTest.add(x2, ff);
    return normFirst ? y : norm(p, "norm3", y, rows);
  }

  @ParameterizedTest(name = "normFirst={0}")
  @CsvSource({"false", "true"})
  void forwardAndGradientsMatchTheReference(boolean normFirst) {
    int t = 3;
    int s = 4;
    int n = 2;
    Random random = new Random(normFirst ? 5 : 6);
    try (TransformerDecoderLayer layer = TransformerDecoderLayer.builder(E, 2).dimFeedforward(FF)
        .dropout(0f).activation(Activation.RELU).normFirst(normFirst).seed(8)
        .build(); Arena arena = Arena.ofConfined()) {
      Map<String, double[]> params = new LinkedHashMap<>();
      for (Parameter p : layer.parameters()) {
        double[] values = MultiHeadAttentionTest.random(random, (int) p.data().size());
        if (p.name().startsWith("norm") && p.name().endsWith("weight")) {
          for (int i = 0; i < values.length; i++) {
            values[i] = 1 + 0.3 * values[i];
          }
        }
        p.data().copyFrom(tensor(arena, values, p.shape().dims()));
        params.put(p.name(), values);
      }
      assertEquals(18, params.size(), "PyTorch's 18 tensors: " + params.keySet());
      double[] target = MultiHeadAttentionTest.random(random, t * n * E);
      double[] memory = MultiHeadAttentionTest.random(random, s * n * E);
      var result = layer.forward(arena, tensor(arena, target, t, n, E),
          tensor(arena, memory, s, n, E),
          ScaledDotProductAttention.Options.DEFAULT.causal(true),
          ScaledDotProductAttention.Options.DEFAULT, Mode.TRAINING);
      assertClose(reference(params, target, memory, t, s, n, normFirst),
          doubles(result.output()), Tolerances.TRANSFORMER_LAYER_FORWARD, "output");
      double[] g = MultiHeadAttentionTest.random(random, t * n * E);
      var grads = layer.backward(arena, result.context(), tensor(arena, g, t, n, E));
      DoubleSupplier loss = () -> {
        double[] y = reference(params, target, memory, t, s, n, normFirst);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
          sum += y[i] * g[i];
        }
        return sum;
      };
      assertClose(FiniteDifferences.gradient(target, loss), doubles(grads.target()),
          Tolerances.TRANSFORMER_LAYER_BACKWARD, "d target");
      assertClose(FiniteDifferences.gradient(memory, loss), doubles(grads.memory()),
          Tolerances.TRANSFORMER_LAYER_BACKWARD, "d memory");
      for (Parameter p : layer.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss),
            doubles(p.grad()), Tolerances.TRANSFORMER_LAYER_BACKWARD, "d " + p.name());
      }
    }
  }

  @Test
  void cachedIncrementalDecodingEqualsTheFullForward() {
    for (boolean normFirst : new boolean[] {false, true}) {
      try (TransformerDecoderLayer layer = TransformerDecoderLayer.builder(E, 2).dimFeedforward(FF)
          .dropout(0f).activation(Activation.GELU).normFirst(normFirst).seed(3)
          .build(); Arena arena = Arena.ofConfined()) {
        int t = 6;
        int n = 2;
        org.seq4j.Tensor target = org.seq4j.Tensor.randomNormal(arena, 1, t, n, E);
        org.seq4j.Tensor memory = org.seq4j.Tensor.randomNormal(arena, 2, 4, n, E);
        org.seq4j.Tensor full = layer.forward(arena, target, memory,
            ScaledDotProductAttention.Options.DEFAULT.causal(true),
            ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE).output();
        MultiHeadAttention.Cache cache = layer.newCache(arena, n, t);
        for (int position = 0; position < t; position++) {
          org.seq4j.Tensor out = layer.forwardStep(arena, target.slice(position, position + 1),
              memory, ScaledDotProductAttention.Options.DEFAULT, cache);
          org.junit.jupiter.api.Assertions.assertArrayEquals(
              full.slice(position, position + 1).toArray(), out.toArray(),
              (float) Tolerances.CACHED_DECODER_STEP,
              "normFirst=" + normFirst + " position " + position);
        }
      }
    }
  }
}
