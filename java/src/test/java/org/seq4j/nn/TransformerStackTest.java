package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.reference.Tolerances;

/** The stacks equal their layers chained by hand; the decoder stack decodes incrementally. */
class TransformerStackTest {
  static final int E = 6;

  @Test
  void anEncoderStackIsItsLayersChainedWithTheFinalNorm() {
    try (TransformerEncoder stack = new TransformerEncoder(2,
        i -> TransformerEncoderLayer.builder(E, 2).dimFeedforward(5).dropout(0f)
            .activation(Activation.RELU).seed(10 + i).build(), new LayerNorm(E));
        TransformerEncoderLayer a = TransformerEncoderLayer.builder(E, 2).dimFeedforward(5)
            .dropout(0f).activation(Activation.RELU).seed(10).build();
        TransformerEncoderLayer b = TransformerEncoderLayer.builder(E, 2).dimFeedforward(5)
            .dropout(0f).activation(Activation.RELU).seed(11).build();
        LayerNorm norm = new LayerNorm(E); Arena arena = Arena.ofConfined()) {
      assertEquals("layers.1.norm2.bias", stack.parameters().get(2 * 12 - 1).name());
      assertEquals("norm.weight", stack.parameters().get(24).name());
      Tensor x = Tensor.randomNormal(arena, 1, 3, 2, E);
      Tensor g = Tensor.randomNormal(arena, 2, 3, 2, E);
      var options = ScaledDotProductAttention.Options.DEFAULT;
      var result = stack.forward(arena, x, options, Mode.TRAINING);
      Tensor dx = stack.backward(arena, result.context(), g);
      var ra = a.forward(arena, x, options, Mode.TRAINING);
      var rb = b.forward(arena, ra.output(), options, Mode.TRAINING);
      var rn = norm.forward(arena, rb.output());
      assertArrayEquals(rn.output().toArray(), result.output().toArray(),
          (float) Tolerances.REPLAYED);
      Tensor expected = a.backward(arena, ra.context(),
          b.backward(arena, rb.context(), norm.backward(arena, rn.context(), g)));
      assertArrayEquals(expected.toArray(), dx.toArray(), (float) Tolerances.REPLAYED);
      List<Parameter> mine = stack.parameters();
      List<Parameter> chained = new java.util.ArrayList<>(a.parameters());
      chained.addAll(b.parameters());
      chained.addAll(norm.parameters());
      for (int i = 0; i < mine.size(); i++) {
        assertArrayEquals(chained.get(i).grad().toArray(), mine.get(i).grad().toArray(),
            (float) Tolerances.REPLAYED,
            mine.get(i).name());
      }
    }
  }

  @Test
  void aDecoderStackDecodesIncrementallyAsItsFullForward() {
    try (TransformerDecoder stack = new TransformerDecoder(2,
        i -> TransformerDecoderLayer.builder(E, 2).dimFeedforward(5).dropout(0f)
            .activation(Activation.GELU).normFirst(i == 1).seed(20 + i).build(),
        new LayerNorm(E));
        Arena arena = Arena.ofConfined()) {
      Tensor target = Tensor.randomNormal(arena, 3, 5, 2, E);
      Tensor memory = Tensor.randomNormal(arena, 4, 4, 2, E);
      var full = stack.forward(arena, target, memory,
          ScaledDotProductAttention.Options.DEFAULT.causal(true),
          ScaledDotProductAttention.Options.DEFAULT, Mode.TRAINING);
      TransformerDecoder.Cache cache = stack.newCache(arena, 2, 5);
      for (int t = 0; t < 5; t++) {
        Tensor out = stack.forwardStep(arena, target.slice(t, t + 1), memory,
            ScaledDotProductAttention.Options.DEFAULT, cache);
        assertArrayEquals(full.output().slice(t, t + 1).toArray(), out.toArray(),
            (float) Tolerances.CACHED_DECODER_STEP,
            "position " + t);
      }
      assertEquals(5, cache.length());
      var grads = stack.backward(arena, full.context(), Tensor.ones(arena, 5, 2, E));
      assertEquals(memory.shape(), grads.memory().shape());
      assertEquals(target.shape(), grads.target().shape());
    }
  }
}
