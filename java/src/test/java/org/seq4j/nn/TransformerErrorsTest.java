package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;

/** Bad inputs to the Transformer parts give exceptions that name the argument. */
class TransformerErrorsTest {
  @Test
  void badArgumentsAreRejected() {
    try (Arena arena = Arena.ofConfined();
        TransformerEncoderLayer encoder = TransformerEncoderLayer.builder(6, 2).dimFeedforward(5)
            .dropout(0f).activation(Activation.RELU).seed(1).build();
        TransformerDecoderLayer decoder = TransformerDecoderLayer.builder(6, 2).dimFeedforward(5)
            .dropout(0f).activation(Activation.RELU).seed(1).build()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> Activation.GELU.backward(arena, Tensor.zeros(arena, 3), Tensor.zeros(arena, 4)));
      assertEquals("gradOutput: expected shape (3,) (the input's), got (4,)", e.getMessage());
      Tensor x = Tensor.zeros(arena, 3, 2, 6);
      var encoded = encoder.forward(arena, x, ScaledDotProductAttention.Options.DEFAULT,
          Mode.TRAINING);
      e = assertThrows(IllegalArgumentException.class,
          () -> encoder.backward(arena, encoded.context(), Tensor.zeros(arena, 2, 3, 6)));
      assertEquals("gradOutput: expected shape (3, 2, 6) (the input's), got (2, 3, 6)",
          e.getMessage());
      var decoded = decoder.forward(arena, x, Tensor.zeros(arena, 4, 2, 6),
          ScaledDotProductAttention.Options.DEFAULT, ScaledDotProductAttention.Options.DEFAULT,
          Mode.TRAINING);
      e = assertThrows(IllegalArgumentException.class,
          () -> decoder.backward(arena, decoded.context(), Tensor.zeros(arena, 3, 2, 5)));
      assertEquals("gradOutput: expected shape (3, 2, 6) (the target's), got (3, 2, 5)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> decoder.forward(arena, x,
          Tensor.zeros(arena, 4, 2, 5), ScaledDotProductAttention.Options.DEFAULT,
          ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE));
      // the decoder names its own argument, not the cross-attention's key
      assertEquals("memory: expected shape (S, N, 6), got (4, 2, 5)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> new TransformerEncoder(0, i -> null, null));
      assertEquals("numLayers: expected >= 1, got 0", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> TransformerEncoderLayer.builder(6, 2)
          .dimFeedforward(5).dropout(1f).activation(Activation.RELU).seed(1).build());
      assertEquals("dropout: expected 0 <= p < 1, got 1.0", e.getMessage());
    }
  }
}
