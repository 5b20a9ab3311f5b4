package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Shape;

/** The attention and Transformer builders: PyTorch's defaults, and their checks. */
class BuildersTest {

  @Test
  void multiHeadAttentionDefaultsAreTheShortConstructors() {
    try (MultiHeadAttention built = MultiHeadAttention.builder(8, 2).build();
        MultiHeadAttention plain = new MultiHeadAttention(8, 2);
        MultiHeadAttention other = MultiHeadAttention.builder(8, 2).keyDim(3).valueDim(5)
            .bias(false).seed(7).build()) {
      List<Parameter> a = built.parameters();
      List<Parameter> b = plain.parameters();
      assertEquals(a.size(), b.size());
      for (int i = 0; i < a.size(); i++) {
        assertEquals(a.get(i).name(), b.get(i).name());
        assertArrayEquals(a.get(i).data().toArray(), b.get(i).data().toArray());
      }
      assertEquals(List.of("q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"),
          other.parameters().stream().map(Parameter::name).toList());
      assertEquals(Shape.of(8, 3), other.parameters().get(1).data().shape());
    }
    var e = assertThrows(IllegalArgumentException.class,
        () -> MultiHeadAttention.builder(8, 2).dropout(1f).build());
    assertEquals("dropout: expected 0 <= p < 1, got 1.0", e.getMessage());
  }

  @Test
  void transformerLayersTakePyTorchsDefaults() {
    try (TransformerEncoderLayer encoder = TransformerEncoderLayer.builder(8, 2).build();
        TransformerDecoderLayer decoder = TransformerDecoderLayer.builder(8, 2)
            .dimFeedforward(16).build()) {
      Parameter linear1 = encoder.parameters().stream()
          .filter(p -> p.name().equals("linear1.weight")).findFirst().orElseThrow();
      assertEquals(Shape.of(2048, 8), linear1.data().shape());
      Parameter decoderLinear1 = decoder.parameters().stream()
          .filter(p -> p.name().equals("linear1.weight")).findFirst().orElseThrow();
      assertEquals(Shape.of(16, 8), decoderLinear1.data().shape());
    }
    assertThrows(NullPointerException.class,
        () -> TransformerEncoderLayer.builder(8, 2).activation(null));
    var e = assertThrows(IllegalArgumentException.class,
        () -> TransformerDecoderLayer.builder(8, 2).dropout(-0.5f).build());
    assertEquals("dropout: expected 0 <= p < 1, got -0.5", e.getMessage());
  }
}
