package org.seq4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.seq4j.Seq4jException;
import org.seq4j.internal.AbiLayouts.RecurrentWeight;

/**
 * The Java mirrors of seq4j.h's structs and constants against the C side: every number here is
 * one that native/src/core/abi_layouts.cpp checks with static_assert, so a struct or constant that
 * changes on one side only fails either the native build or this test.
 */
class AbiLayoutsTest {

  private static void assertField(StructLayout struct, String field, long offset) {
    assertEquals(offset, AbiLayouts.offset(struct, field), struct + "." + field);
  }

  @Test
  void pointersAreEightBytes() {
    assertEquals(8, ValueLayout.ADDRESS.byteSize());
  }

  @Test
  void rnnLayerDescMatchesTheC() {
    StructLayout desc = AbiLayouts.RNN_LAYER_DESC;
    assertEquals(40, desc.byteSize());
    assertField(desc, "cell", 0);
    assertField(desc, "directions", 4);
    assertField(desc, "input_size", 8);
    assertField(desc, "hidden_size", 16);
    assertField(desc, "proj_size", 24);
    assertField(desc, "peephole", 32);
    assertField(desc, "bias", 36);
  }

  @Test
  void rnnWeightsMatchesTheC() {
    StructLayout weights = AbiLayouts.RNN_WEIGHTS;
    assertEquals(64, weights.byteSize());
    String[] fields = {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ci",
        "weight_cf", "weight_co"};
    assertEquals(fields.length, RecurrentWeight.values().length);
    for (int i = 0; i < fields.length; i++) {
      assertEquals(fields[i], RecurrentWeight.values()[i].field());
      assertField(weights, fields[i], 8L * i);
    }
  }

  @Test
  void attentionDescMatchesTheC() {
    StructLayout desc = AbiLayouts.ATTENTION_DESC;
    assertEquals(120, desc.byteSize());
    assertField(desc, "batch", 0);
    assertField(desc, "query_heads", 8);
    assertField(desc, "kv_heads", 16);
    assertField(desc, "query_length", 24);
    assertField(desc, "kv_length", 32);
    assertField(desc, "head_dim", 40);
    assertField(desc, "value_dim", 48);
    assertField(desc, "scale", 56);
    assertField(desc, "causal", 60);
    assertField(desc, "dropout", 64);
    assertField(desc, "seed", 72);
    assertField(desc, "mask_kind", 80);
    assertField(desc, "mask_strides", 88);
  }

  @Test
  void constantsMatchTheC() {
    assertEquals(0, AbiConstants.OK);
    int[] statuses = {AbiConstants.ERR_INVALID_ARGUMENT, AbiConstants.ERR_UNSUPPORTED,
        AbiConstants.ERR_OUT_OF_MEMORY, AbiConstants.ERR_BACKEND, AbiConstants.ERR_INTERNAL};
    Seq4jException.Status[] named = {Seq4jException.Status.INVALID_ARGUMENT,
        Seq4jException.Status.UNSUPPORTED, Seq4jException.Status.OUT_OF_MEMORY,
        Seq4jException.Status.BACKEND, Seq4jException.Status.INTERNAL};
    for (int i = 0; i < statuses.length; i++) {
      assertEquals(i + 1, statuses[i]);
      assertEquals(statuses[i], named[i].code());
    }
    assertEquals(0, AbiConstants.BACKEND_AUTO);
    assertEquals(1, AbiConstants.BACKEND_ONEDNN);
    assertEquals(2, AbiConstants.BACKEND_BLAS);
    assertEquals(0, AbiConstants.CELL_RNN_TANH);
    assertEquals(1, AbiConstants.CELL_RNN_RELU);
    assertEquals(2, AbiConstants.CELL_LSTM);
    assertEquals(3, AbiConstants.CELL_GRU);
    assertEquals(0, AbiConstants.MASK_NONE);
    assertEquals(1, AbiConstants.MASK_ADDITIVE);
    assertEquals(2, AbiConstants.MASK_BOOLEAN);
    assertEquals(0, AbiConstants.ACTIVATION_RELU);
    assertEquals(1, AbiConstants.ACTIVATION_GELU);
    assertEquals(2, AbiConstants.ACTIVATION_GELU_TANH);
    // seq4j_select_kernels documents these in its comment (seq4j.h has no #define for them)
    assertEquals(0, AbiConstants.ISA_BEST);
    assertEquals(1, AbiConstants.ISA_BASELINE);
    assertEquals(2, AbiConstants.ISA_AVX2);
    assertEquals(3, AbiConstants.ISA_AVX512);
  }
}
