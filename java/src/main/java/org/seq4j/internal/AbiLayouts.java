package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.StructLayout;

/**
 * The structs of {@code native/include/seq4j.h}, mirrored once, with the code that fills them.
 * {@code AbiLayoutsTest} asserts every size and field offset against the numbers that {@code
 * native/src/core/abi_layouts.cpp} checks with {@code static_assert} on the C side, so the two
 * cannot drift apart silently.
 */
public final class AbiLayouts {
  private AbiLayouts() {}

  /**
   * {@code seq4j_rnn_layer_desc}: {@code int32_t cell, directions; int64_t input_size,
   * hidden_size, proj_size; int32_t peephole, bias}.
   */
  public static final StructLayout RNN_LAYER_DESC = MemoryLayout.structLayout(
      JAVA_INT.withName("cell"), JAVA_INT.withName("directions"),
      JAVA_LONG.withName("input_size"), JAVA_LONG.withName("hidden_size"),
      JAVA_LONG.withName("proj_size"), JAVA_INT.withName("peephole"), JAVA_INT.withName("bias"));

  /** The pointer fields of {@code seq4j_rnn_weights}, in the struct's order. */
  public enum RecurrentWeight {
    WEIGHT_IH("weight_ih"),
    WEIGHT_HH("weight_hh"),
    BIAS_IH("bias_ih"),
    BIAS_HH("bias_hh"),
    WEIGHT_HR("weight_hr"),
    WEIGHT_CI("weight_ci"),
    WEIGHT_CF("weight_cf"),
    WEIGHT_CO("weight_co");

    private final String field;

    RecurrentWeight(String field) {
      this.field = field;
    }

    /** The C field's name, which is also the prefix of PyTorch's parameter name. */
    public String field() {
      return field;
    }
  }

  /** {@code seq4j_rnn_weights}: eight {@code float *}, one per {@link RecurrentWeight}. */
  public static final StructLayout RNN_WEIGHTS = rnnWeights();

  /**
   * {@code seq4j_attention_desc}: seven {@code int64_t} sizes, {@code float scale; int32_t causal;
   * float dropout; int64_t seed; int32_t mask_kind; int64_t mask_strides[4]}.
   */
  public static final StructLayout ATTENTION_DESC = MemoryLayout.structLayout(
      JAVA_LONG.withName("batch"), JAVA_LONG.withName("query_heads"),
      JAVA_LONG.withName("kv_heads"), JAVA_LONG.withName("query_length"),
      JAVA_LONG.withName("kv_length"), JAVA_LONG.withName("head_dim"),
      JAVA_LONG.withName("value_dim"), JAVA_FLOAT.withName("scale"), JAVA_INT.withName("causal"),
      JAVA_FLOAT.withName("dropout"), MemoryLayout.paddingLayout(4), JAVA_LONG.withName("seed"),
      JAVA_INT.withName("mask_kind"), MemoryLayout.paddingLayout(4),
      MemoryLayout.sequenceLayout(4, JAVA_LONG).withName("mask_strides"));

  private static StructLayout rnnWeights() {
    MemoryLayout[] fields = new MemoryLayout[RecurrentWeight.values().length];
    for (RecurrentWeight weight : RecurrentWeight.values()) {
      fields[weight.ordinal()] = ADDRESS.withName(weight.field());
    }
    return MemoryLayout.structLayout(fields);
  }

  /** The byte offset of a named field of a struct. */
  public static long offset(StructLayout struct, String field) {
    return struct.byteOffset(MemoryLayout.PathElement.groupElement(field));
  }

  /** A filled {@code seq4j_rnn_layer_desc}. */
  public static MemorySegment rnnLayerDesc(SegmentAllocator allocator, int cell, int directions,
      long inputSize, long hiddenSize, long projSize, boolean peephole, boolean bias) {
    MemorySegment desc = allocator.allocate(RNN_LAYER_DESC);
    desc.set(JAVA_INT, offset(RNN_LAYER_DESC, "cell"), cell);
    desc.set(JAVA_INT, offset(RNN_LAYER_DESC, "directions"), directions);
    desc.set(JAVA_LONG, offset(RNN_LAYER_DESC, "input_size"), inputSize);
    desc.set(JAVA_LONG, offset(RNN_LAYER_DESC, "hidden_size"), hiddenSize);
    desc.set(JAVA_LONG, offset(RNN_LAYER_DESC, "proj_size"), projSize);
    desc.set(JAVA_INT, offset(RNN_LAYER_DESC, "peephole"), peephole ? 1 : 0);
    desc.set(JAVA_INT, offset(RNN_LAYER_DESC, "bias"), bias ? 1 : 0);
    return desc;
  }

  /** {@code count} zeroed (all NULL) {@code seq4j_rnn_weights} structs, one after the other. */
  public static MemorySegment rnnWeights(SegmentAllocator allocator, int count) {
    return allocator.allocate(RNN_WEIGHTS, count);
  }

  /** Sets one pointer of struct {@code index} of an array of {@code seq4j_rnn_weights}. */
  public static void setRnnWeight(MemorySegment structs, int index, RecurrentWeight weight,
      MemorySegment pointer) {
    structs.set(ADDRESS, index * RNN_WEIGHTS.byteSize() + offset(RNN_WEIGHTS, weight.field()),
        pointer);
  }

  /** An array of {@code count} pointers ({@code T *const *}), all NULL. */
  public static MemorySegment pointers(SegmentAllocator allocator, int count) {
    return allocator.allocate(ADDRESS, count);
  }

  /** Sets element {@code index} of a pointer array. */
  public static void setPointer(MemorySegment pointers, int index, MemorySegment pointer) {
    pointers.setAtIndex(ADDRESS, index, pointer);
  }

  /**
   * A filled {@code seq4j_attention_desc}.
   *
   * @param sizes {batch, query_heads, kv_heads, query_length, kv_length, head_dim, value_dim}
   * @param maskStrides element strides of the mask for (n, h, i, j), 0 broadcasting
   */
  public static MemorySegment attentionDesc(SegmentAllocator allocator, long[] sizes, float scale,
      boolean causal, float dropout, long seed, int maskKind, long[] maskStrides) {
    MemorySegment desc = allocator.allocate(ATTENTION_DESC);
    for (int i = 0; i < 7; i++) {
      desc.set(JAVA_LONG, 8L * i, sizes[i]);
    }
    desc.set(JAVA_FLOAT, offset(ATTENTION_DESC, "scale"), scale);
    desc.set(JAVA_INT, offset(ATTENTION_DESC, "causal"), causal ? 1 : 0);
    desc.set(JAVA_FLOAT, offset(ATTENTION_DESC, "dropout"), dropout);
    desc.set(JAVA_LONG, offset(ATTENTION_DESC, "seed"), seed);
    desc.set(JAVA_INT, offset(ATTENTION_DESC, "mask_kind"), maskKind);
    long strides = offset(ATTENTION_DESC, "mask_strides");
    for (int a = 0; a < 4; a++) {
      desc.set(JAVA_LONG, strides + 8L * a, maskStrides[a]);
    }
    return desc;
  }
}
