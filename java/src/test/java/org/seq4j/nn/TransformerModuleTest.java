package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Tolerances;

/**
 * The attention family as modules: PyTorch's state-dict keys, a save/load round trip, the
 * training mode's dropout, and their place in the one autograd (recorded forwards, explicit and
 * graph backwards exclusive, inference forwards that fail loudly, in-place changes, frozen
 * parameters).
 */
class TransformerModuleTest {
  static final int E = 6;

  /** nn.Transformer's shape: an encoder and a decoder stack of two layers with final norms. */
  static final class EncoderDecoder extends Module {
    final TransformerEncoder encoder;
    final TransformerDecoder decoder;

    EncoderDecoder(long seed) {
      encoder = register("encoder", new TransformerEncoder(2,
          i -> TransformerEncoderLayer.builder(E, 2).dimFeedforward(5).seed(seed + i).build(),
          new LayerNorm(E)));
      decoder = register("decoder", new TransformerDecoder(2,
          i -> TransformerDecoderLayer.builder(E, 2).dimFeedforward(5).seed(seed + 10 + i)
              .build(), new LayerNorm(E)));
    }
  }

  /** {@code nn.Transformer(d_model=6, nhead=2, 2, 2, dim_feedforward=5).state_dict().keys()}. */
  static List<String> pytorchKeys() {
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      String p = "encoder.layers." + i + ".";
      keys.addAll(List.of(p + "self_attn.in_proj_weight", p + "self_attn.in_proj_bias",
          p + "self_attn.out_proj.weight", p + "self_attn.out_proj.bias", p + "linear1.weight",
          p + "linear1.bias", p + "linear2.weight", p + "linear2.bias", p + "norm1.weight",
          p + "norm1.bias", p + "norm2.weight", p + "norm2.bias"));
    }
    keys.addAll(List.of("encoder.norm.weight", "encoder.norm.bias"));
    for (int i = 0; i < 2; i++) {
      String p = "decoder.layers." + i + ".";
      keys.addAll(List.of(p + "self_attn.in_proj_weight", p + "self_attn.in_proj_bias",
          p + "self_attn.out_proj.weight", p + "self_attn.out_proj.bias",
          p + "multihead_attn.in_proj_weight", p + "multihead_attn.in_proj_bias",
          p + "multihead_attn.out_proj.weight", p + "multihead_attn.out_proj.bias",
          p + "linear1.weight", p + "linear1.bias", p + "linear2.weight", p + "linear2.bias",
          p + "norm1.weight", p + "norm1.bias", p + "norm2.weight", p + "norm2.bias",
          p + "norm3.weight", p + "norm3.bias"));
    }
    keys.addAll(List.of("decoder.norm.weight", "decoder.norm.bias"));
    return keys;
  }

  @Test
  void anEncoderDecoderHasPyTorchsStateDictKeysAndRoundTrips(@TempDir Path dir)
      throws IOException {
    try (EncoderDecoder model = new EncoderDecoder(1); EncoderDecoder other = new EncoderDecoder(2);
        Arena arena = Arena.ofConfined()) {
      assertEquals(pytorchKeys(), new ArrayList<>(model.stateDict().keySet()));
      assertEquals(pytorchKeys(), new ArrayList<>(model.namedParameters().keySet()));
      assertEquals(org.seq4j.Shape.of(3L * E, E), model.stateDict()
          .get("decoder.layers.1.multihead_attn.in_proj_weight").shape());
      Tensor src = Tensor.randomNormal(arena, 1, 4, 2, E);
      Tensor tgt = Tensor.randomNormal(arena, 2, 3, 2, E);
      model.eval();
      other.eval();
      float[] before;
      try (var off = Autograd.noGrad()) {
        before = run(model, arena, src, tgt);
        assertFalse(java.util.Arrays.equals(before, run(other, arena, src, tgt)),
            "different seeds, different models");
      }
      Path file = dir.resolve("transformer.safetensors");
      model.save(file);
      Module.LoadResult loaded = other.load(file, true);
      assertEquals(List.of(), loaded.missingKeys());
      assertEquals(List.of(), loaded.unexpectedKeys());
      try (var off = Autograd.noGrad()) {
        assertArrayEquals(before, run(other, arena, src, tgt));
      }
    }
  }

  private static float[] run(EncoderDecoder model, Arena arena, Tensor src, Tensor tgt) {
    var none = ScaledDotProductAttention.Options.DEFAULT;
    Tensor memory = model.encoder.forward(arena, src, none, Mode.INFERENCE).output();
    return model.decoder.forward(arena, tgt, memory, none.causal(true), none, Mode.INFERENCE)
        .output().toArray();
  }

  @Test
  void theModulesKeepTheirOldParameterNames() {
    try (MultiHeadAttention packed = new MultiHeadAttention(E, 2);
        MultiHeadAttention separate = MultiHeadAttention.builder(E, 2).keyDim(4).valueDim(5)
            .build();
        TransformerDecoderLayer layer = TransformerDecoderLayer.builder(E, 2).dimFeedforward(5)
            .build()) {
      assertEquals(List.of("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"),
          new ArrayList<>(packed.namedParameters().keySet()));
      assertEquals(List.of("q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
          "out_proj.weight", "out_proj.bias"), new ArrayList<>(separate.namedParameters()
          .keySet()));
      assertEquals(org.seq4j.Shape.of(E, 5), separate.namedParameters().get("v_proj_weight")
          .shape());
      assertEquals(List.of("self_attn", "multihead_attn", "linear1", "linear2", "norm1", "norm2",
          "norm3"), new ArrayList<>(layer.children().keySet()));
      assertEquals(18, layer.parameters().size());
      assertEquals("self_attn.in_proj_weight", layer.parameters().get(0).name());
    }
  }

  @Test
  void dropoutFollowsTheTrainingModeOfTheTree() {
    try (TransformerEncoder stack = new TransformerEncoder(2,
        i -> TransformerEncoderLayer.builder(E, 2).dimFeedforward(5).dropout(0.5f).seed(4 + i)
            .build(), null);
        TransformerEncoder plain = new TransformerEncoder(2,
            i -> TransformerEncoderLayer.builder(E, 2).dimFeedforward(5).dropout(0f)
                .seed(4 + i).build(), null);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 3, 3, 2, E);
      var none = ScaledDotProductAttention.Options.DEFAULT;
      float[] reference = plain.forward(arena, x, none, Mode.INFERENCE).output().toArray();
      float[] training = stack.forward(arena, x, none, Mode.TRAINING).output().toArray();
      assertFalse(java.util.Arrays.equals(reference, training), "training mode drops out");
      stack.eval();
      assertFalse(stack.layers().get(1).children().get("self_attn").isTraining(),
          "eval() reaches every part");
      var evaluated = stack.forward(arena, x, none, Mode.TRAINING);
      assertArrayEquals(reference, evaluated.output().toArray(), (float) Tolerances.REPLAYED,
          "eval(): no dropout, even with a context kept for backward");
      // the backward of a forward without dropout applies no mask either: equal gradients
      Tensor g = Tensor.randomNormal(arena, 5, 3, 2, E);
      Tensor dx = stack.backward(arena, evaluated.context(), g);
      Tensor dxPlain = plain.backward(arena, plain.forward(arena, x, none, Mode.TRAINING)
          .context(), g);
      assertArrayEquals(dxPlain.toArray(), dx.toArray(), (float) Tolerances.REPLAYED);
      // Layer.forward in training mode under noGrad still drops out, as PyTorch's
      stack.train();
      try (var off = Autograd.noGrad()) {
        assertFalse(java.util.Arrays.equals(reference, stack.forward(x).toArray()));
        stack.eval();
        assertArrayEquals(reference, stack.forward(x).toArray(), (float) Tolerances.REPLAYED);
      }
    }
  }

  @Test
  void theLayerForwardTakesPartInTheGraph() {
    try (TransformerEncoderLayer layer = TransformerEncoderLayer.builder(E, 2).dimFeedforward(5)
        .dropout(0f).batchFirst(true).seed(6).build();
        TransformerEncoderLayer twin = TransformerEncoderLayer.builder(E, 2).dimFeedforward(5)
            .dropout(0f).batchFirst(true).seed(6).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 7, 2, 3, E);
      Tensor g = Tensor.randomNormal(arena, 8, 2, 3, E);
      var explicit = layer.forward(arena, x, ScaledDotProductAttention.Options.DEFAULT,
          Mode.TRAINING);
      Tensor dx = layer.backward(arena, explicit.context(), g);
      Tensor leaf = x.copy(arena).requiresGrad(true);
      Sequential model = new Sequential(twin);
      Tensor y = model.forward(leaf);
      assertTrue(y.requiresGrad());
      assertArrayEquals(explicit.output().toArray(), y.toArray());
      y.backward(g);
      assertArrayEquals(dx.toArray(), leaf.grad().toArray(), (float) Tolerances.REPLAYED);
      for (String name : layer.namedParameters().keySet()) {
        assertArrayEquals(layer.namedParameters().get(name).grad().toArray(),
            model.namedParameters().get("0." + name).grad().toArray(),
            (float) Tolerances.REPLAYED, name);
      }
      // the explicit backward claimed its forward: the graph's cannot run through it as well
      var e = assertThrows(IllegalStateException.class, () -> explicit.output().backward(g));
      assertTrue(e.getMessage().contains("an explicit TransformerEncoderLayer.backward"),
          e.getMessage());
      model.close();
      assertTrue(twin.isClosed(), "the sequential closes its layers");
    }
  }

  @Test
  void anInferenceForwardReachedByABackwardFailsNamingTheCall() {
    try (TransformerEncoder encoder = new TransformerEncoder(1,
        i -> TransformerEncoderLayer.builder(E, 2).dimFeedforward(5).build(), new LayerNorm(E));
        TransformerDecoder decoder = new TransformerDecoder(1,
            i -> TransformerDecoderLayer.builder(E, 2).dimFeedforward(5).build(), null);
        MultiHeadAttention attention = new MultiHeadAttention(E, 2);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 3, 2, E);
      var none = ScaledDotProductAttention.Options.DEFAULT;
      Tensor g = Tensor.ones(arena, 3, 2, E);
      Tensor memory = encoder.forward(arena, x, none, Mode.INFERENCE).output();
      var e = assertThrows(IllegalStateException.class, () -> memory.backward(g));
      assertEquals("TransformerEncoder.forward in Mode.INFERENCE cannot compute gradients, but a"
          + " gradient reached its output: run it in Mode.TRAINING to compute gradients, or"
          + " under Autograd.noGrad() when none are wanted", e.getMessage());
      Tensor decoded = decoder.forward(arena, x, x, none, none, Mode.INFERENCE).output();
      e = assertThrows(IllegalStateException.class, () -> decoded.backward(g));
      assertTrue(e.getMessage().startsWith("TransformerDecoder.forward in Mode.INFERENCE"),
          e.getMessage());
      Tensor attended = attention.forward(arena, x, x, x, none, Mode.INFERENCE).output();
      e = assertThrows(IllegalStateException.class, () -> attended.backward(g));
      assertTrue(e.getMessage().startsWith("MultiHeadAttention.forward in Mode.INFERENCE"),
          e.getMessage());
      Tensor step = decoder.forwardStep(arena, x.slice(0, 1), x, none,
          decoder.newCache(arena, 2, 3));
      e = assertThrows(IllegalStateException.class,
          () -> step.backward(Tensor.ones(arena, 1, 2, E)));
      assertTrue(e.getMessage().startsWith("TransformerDecoder.forwardStep cannot compute"),
          e.getMessage());
      var q = Tensor.randomNormal(arena, 2, 1, 2, 3, 4).requiresGrad(true);
      Tensor sdpa = ScaledDotProductAttention.forward(arena, q, q, q, none, Mode.INFERENCE)
          .output();
      e = assertThrows(IllegalStateException.class,
          () -> sdpa.backward(Tensor.ones(arena, 1, 2, 3, 4)));
      assertTrue(e.getMessage().startsWith("ScaledDotProductAttention.forward in"
          + " Mode.INFERENCE"), e.getMessage());
      // under noGrad nothing is recorded, so nothing can fail later
      try (var off = Autograd.noGrad()) {
        assertFalse(encoder.forward(arena, x, none, Mode.INFERENCE).output().requiresGrad());
      }
    }
  }

  @Test
  void anOptimizerStepBetweenForwardAndBackwardIsDetected() {
    try (TransformerDecoderLayer layer = TransformerDecoderLayer.builder(E, 2).dimFeedforward(5)
        .dropout(0f).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 3, 2, E);
      var none = ScaledDotProductAttention.Options.DEFAULT;
      Tensor y = layer.forward(arena, x, x, none, none, Mode.TRAINING).output();
      Parameter w = layer.namedParameters().get("multihead_attn.out_proj.weight");
      w.data().fill(0.5f); // an in-place change of a saved tensor
      var e = assertThrows(IllegalStateException.class, () -> y.backward(Tensor.ones(arena, 3, 2,
          E)));
      assertTrue(e.getMessage().startsWith("TransformerDecoderLayer.forward: a tensor it saved"
          + " for backward"), e.getMessage());
    }
  }

  @Test
  void frozenParametersGetNoGradientAndAllFrozenRecordsNothing() {
    try (MultiHeadAttention mha = new MultiHeadAttention(E, 2); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 3, 2, E);
      var none = ScaledDotProductAttention.Options.DEFAULT;
      Map<String, Parameter> p = mha.namedParameters();
      p.get("in_proj_weight").requiresGrad(false);
      mha.forward(arena, x, x, x, none, Mode.TRAINING).output()
          .backward(Tensor.ones(arena, 3, 2, E));
      assertEquals(0f, max(p.get("in_proj_weight").grad()), "frozen");
      assertNotEquals(0f, max(p.get("out_proj.weight").grad()));
      assertNotEquals(0f, max(p.get("in_proj_bias").grad()));
      for (Parameter each : p.values()) {
        each.requiresGrad(false);
      }
      Tensor y = mha.forward(arena, x, x, x, none, Mode.TRAINING).output();
      assertFalse(y.requiresGrad(), "nothing requires a gradient: nothing recorded");
    }
  }

  private static float max(Tensor t) {
    float m = 0;
    for (float v : t.toArray()) {
      m = Math.max(m, Math.abs(v));
    }
    return m;
  }

  @Test
  void aModuleListNamesItsPartsByIndex() {
    try (ModuleList<MultiHeadAttention> list = new ModuleList<>(List.of(
        new MultiHeadAttention(E, 2), new MultiHeadAttention(E, 3)))) {
      assertEquals(List.of("0", "1"), new ArrayList<>(list.children().keySet()));
      assertEquals("1.out_proj.bias", list.parameters().get(7).name());
      assertEquals(3, list.get(1).heads());
      assertEquals(2, list.size());
      list.close();
      assertTrue(list.get(0).isClosed());
    }
  }
}
