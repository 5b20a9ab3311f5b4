package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.seq4j.Tensor;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.LayerNormReference;
import org.seq4j.reference.Tolerances;

/** The encoder layer against a float64 composition of the references of its parts. */
class TransformerEncoderLayerTest {
  static final int E = MultiHeadAttentionTest.E;
  static final int FF = 5;

  static double[] add(double[] a, double[] b) {
    double[] out = new double[a.length];
    for (int i = 0; i < a.length; i++) {
      out[i] = a[i] + b[i];
    }
    return out;
  }

  static double[] apply(Activation kind, double[] x) {
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = NormalizationAndEmbeddingTest.reference(kind, x[i]);
    }
    return out;
  }

  static double[] reference(Map<String, double[]> p, double[] x, int t, int n, boolean normFirst,
      Activation kind) {
    Map<String, double[]> attention = new LinkedHashMap<>();
    for (String name : List.of("in_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias")) {
      attention.put(name, p.get("self_attn." + name));
    }
    int rows = t * n;
    double[] a = normFirst ? LayerNormReference.forward(x, p.get("norm1.weight"),
        p.get("norm1.bias"), rows, E) : x;
    double[] sa = MultiHeadAttentionTest.reference(attention, a, a, a, t, t, n, E, false, null);
    double[] h = add(x, sa);
    if (!normFirst) {
      h = LayerNormReference.forward(h, p.get("norm1.weight"), p.get("norm1.bias"), rows, E);
    }
    double[] f = normFirst ? LayerNormReference.forward(h, p.get("norm2.weight"),
        p.get("norm2.bias"), rows, E) : h;
    double[] hidden = MultiHeadAttentionTest.project(f, p.get("linear1.weight"),
        p.get("linear1.bias"), 0, rows, E, FF);
    double[] ff = MultiHeadAttentionTest.project(apply(kind, hidden), p.get("linear2.weight"),
        p.get("linear2.bias"), 0, rows, FF, E);
    double[] y = add(h, ff);
    return normFirst ? y : LayerNormReference.forward(y, p.get("norm2.weight"),
        p.get("norm2.bias"), rows, E);
  }

  @ParameterizedTest(name = "normFirst={0} activation={1}")
  @CsvSource({"false, RELU", "true, GELU", "true, RELU", "false, GELU"})
  void forwardAndGradientsMatchTheReference(boolean normFirst, Activation kind) {
    int t = 3;
    int n = 2;
    Random random = new Random(normFirst ? 1 : 2);
    try (TransformerEncoderLayer layer = TransformerEncoderLayer.builder(E, 2).dimFeedforward(FF)
        .dropout(0f).activation(kind).normFirst(normFirst).seed(4)
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
      assertEquals(List.of("self_attn.in_proj_weight", "self_attn.in_proj_bias",
          "self_attn.out_proj.weight", "self_attn.out_proj.bias", "linear1.weight",
          "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
          "norm2.weight", "norm2.bias"), new ArrayList<>(params.keySet()));
      double[] x = MultiHeadAttentionTest.random(random, t * n * E);
      var result = layer.forward(arena, tensor(arena, x, t, n, E),
          ScaledDotProductAttention.Options.DEFAULT, Mode.TRAINING);
      assertClose(reference(params, x, t, n, normFirst, kind), doubles(result.output()),
          Tolerances.TRANSFORMER_LAYER_FORWARD, "output");
      double[] g = MultiHeadAttentionTest.random(random, t * n * E);
      Tensor dx = layer.backward(arena, result.context(), tensor(arena, g, t, n, E));
      DoubleSupplier loss = () -> {
        double[] y = reference(params, x, t, n, normFirst, kind);
        double sum = 0;
        for (int i = 0; i < y.length; i++) {
          sum += y[i] * g[i];
        }
        return sum;
      };
      assertClose(FiniteDifferences.gradient(x, loss), doubles(dx),
          Tolerances.TRANSFORMER_LAYER_BACKWARD, "dx");
      for (Parameter p : layer.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss),
            doubles(p.grad()), Tolerances.TRANSFORMER_LAYER_BACKWARD, "d " + p.name());
      }
    }
  }

  @Test
  void theGraphGivesTheExplicitBackwardsGradientsWithDropout() {
    try (TransformerEncoderLayer layer = TransformerEncoderLayer.builder(E, 2).dimFeedforward(FF)
        .dropout(0.3f).activation(Activation.RELU).batchFirst(true).seed(9)
        .build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 2, 4, E);
      Tensor g = Tensor.randomNormal(arena, 2, 2, 4, E);
      var first = layer.forward(arena, x, ScaledDotProductAttention.Options.DEFAULT,
          Mode.TRAINING);
      Tensor dx = layer.backward(arena, first.context(), g);
      List<float[]> explicit = new ArrayList<>();
      for (Parameter p : layer.parameters()) {
        explicit.add(p.grad().toArray());
        p.zeroGrad();
      }
      // the same dropout masks: a fresh layer with the same seed makes the same first call
      try (TransformerEncoderLayer twin = TransformerEncoderLayer.builder(E, 2).dimFeedforward(FF)
          .dropout(0.3f).activation(Activation.RELU).batchFirst(true).seed(9)
          .build()) {
        var result = twin.forward(arena, x, ScaledDotProductAttention.Options.DEFAULT,
            Mode.TRAINING);
        assertArrayEquals(first.output().toArray(), result.output().toArray());
        result.output().backward(g);
        List<Parameter> parameters = twin.parameters();
        for (int i = 0; i < parameters.size(); i++) {
          assertArrayEquals(explicit.get(i), parameters.get(i).grad().toArray(),
              (float) Tolerances.REPLAYED,
              parameters.get(i).name());
        }
      }
      assertEquals(org.seq4j.Shape.of(2, 4, E), dx.shape());
    }
  }
}
