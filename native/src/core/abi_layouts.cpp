// abi_layouts.cpp: the sizes and field offsets of every struct of seq4j.h, and the values of its
// constants, checked at compile time. Java mirrors each of them once (org.seq4j.internal.AbiLayouts
// and AbiConstants), and org.seq4j.internal.AbiLayoutsTest asserts the very same numbers against
// the Java layouts: a change to a struct or a constant fails the native build here until this file
// and that test are updated together. Every seq4j platform is 64-bit (8-byte pointers, int64_t
// aligned to 8). Nothing here is compiled into code.

#include <cstddef>

#include "seq4j.h"

static_assert(sizeof(void *) == 8, "seq4j's ABI assumes 64-bit pointers");

// ---- status codes, backends
static_assert(SEQ4J_OK == 0, "SEQ4J_OK");
static_assert(SEQ4J_ERR_INVALID_ARGUMENT == 1, "SEQ4J_ERR_INVALID_ARGUMENT");
static_assert(SEQ4J_ERR_UNSUPPORTED == 2, "SEQ4J_ERR_UNSUPPORTED");
static_assert(SEQ4J_ERR_OUT_OF_MEMORY == 3, "SEQ4J_ERR_OUT_OF_MEMORY");
static_assert(SEQ4J_ERR_BACKEND == 4, "SEQ4J_ERR_BACKEND");
static_assert(SEQ4J_ERR_INTERNAL == 5, "SEQ4J_ERR_INTERNAL");
static_assert(SEQ4J_BACKEND_AUTO == 0, "SEQ4J_BACKEND_AUTO");
static_assert(SEQ4J_BACKEND_ONEDNN == 1, "SEQ4J_BACKEND_ONEDNN");
static_assert(SEQ4J_BACKEND_BLAS == 2, "SEQ4J_BACKEND_BLAS");

// ---- recurrent layers
static_assert(SEQ4J_CELL_RNN_TANH == 0, "SEQ4J_CELL_RNN_TANH");
static_assert(SEQ4J_CELL_RNN_RELU == 1, "SEQ4J_CELL_RNN_RELU");
static_assert(SEQ4J_CELL_LSTM == 2, "SEQ4J_CELL_LSTM");
static_assert(SEQ4J_CELL_GRU == 3, "SEQ4J_CELL_GRU");

static_assert(sizeof(seq4j_rnn_layer_desc) == 40, "seq4j_rnn_layer_desc size");
static_assert(offsetof(seq4j_rnn_layer_desc, cell) == 0, "seq4j_rnn_layer_desc.cell");
static_assert(offsetof(seq4j_rnn_layer_desc, directions) == 4, "seq4j_rnn_layer_desc.directions");
static_assert(offsetof(seq4j_rnn_layer_desc, input_size) == 8, "seq4j_rnn_layer_desc.input_size");
static_assert(offsetof(seq4j_rnn_layer_desc, hidden_size) == 16,
              "seq4j_rnn_layer_desc.hidden_size");
static_assert(offsetof(seq4j_rnn_layer_desc, proj_size) == 24, "seq4j_rnn_layer_desc.proj_size");
static_assert(offsetof(seq4j_rnn_layer_desc, peephole) == 32, "seq4j_rnn_layer_desc.peephole");
static_assert(offsetof(seq4j_rnn_layer_desc, bias) == 36, "seq4j_rnn_layer_desc.bias");

static_assert(sizeof(seq4j_rnn_weights) == 64, "seq4j_rnn_weights size");
static_assert(offsetof(seq4j_rnn_weights, weight_ih) == 0, "seq4j_rnn_weights.weight_ih");
static_assert(offsetof(seq4j_rnn_weights, weight_hh) == 8, "seq4j_rnn_weights.weight_hh");
static_assert(offsetof(seq4j_rnn_weights, bias_ih) == 16, "seq4j_rnn_weights.bias_ih");
static_assert(offsetof(seq4j_rnn_weights, bias_hh) == 24, "seq4j_rnn_weights.bias_hh");
static_assert(offsetof(seq4j_rnn_weights, weight_hr) == 32, "seq4j_rnn_weights.weight_hr");
static_assert(offsetof(seq4j_rnn_weights, weight_ci) == 40, "seq4j_rnn_weights.weight_ci");
static_assert(offsetof(seq4j_rnn_weights, weight_cf) == 48, "seq4j_rnn_weights.weight_cf");
static_assert(offsetof(seq4j_rnn_weights, weight_co) == 56, "seq4j_rnn_weights.weight_co");

// ---- attention
static_assert(SEQ4J_MASK_NONE == 0, "SEQ4J_MASK_NONE");
static_assert(SEQ4J_MASK_ADDITIVE == 1, "SEQ4J_MASK_ADDITIVE");
static_assert(SEQ4J_MASK_BOOLEAN == 2, "SEQ4J_MASK_BOOLEAN");

static_assert(sizeof(seq4j_attention_desc) == 120, "seq4j_attention_desc size");
static_assert(offsetof(seq4j_attention_desc, batch) == 0, "seq4j_attention_desc.batch");
static_assert(offsetof(seq4j_attention_desc, query_heads) == 8,
              "seq4j_attention_desc.query_heads");
static_assert(offsetof(seq4j_attention_desc, kv_heads) == 16, "seq4j_attention_desc.kv_heads");
static_assert(offsetof(seq4j_attention_desc, query_length) == 24,
              "seq4j_attention_desc.query_length");
static_assert(offsetof(seq4j_attention_desc, kv_length) == 32, "seq4j_attention_desc.kv_length");
static_assert(offsetof(seq4j_attention_desc, head_dim) == 40, "seq4j_attention_desc.head_dim");
static_assert(offsetof(seq4j_attention_desc, value_dim) == 48, "seq4j_attention_desc.value_dim");
static_assert(offsetof(seq4j_attention_desc, scale) == 56, "seq4j_attention_desc.scale");
static_assert(offsetof(seq4j_attention_desc, causal) == 60, "seq4j_attention_desc.causal");
static_assert(offsetof(seq4j_attention_desc, dropout) == 64, "seq4j_attention_desc.dropout");
static_assert(offsetof(seq4j_attention_desc, seed) == 72, "seq4j_attention_desc.seed");
static_assert(offsetof(seq4j_attention_desc, mask_kind) == 80, "seq4j_attention_desc.mask_kind");
static_assert(offsetof(seq4j_attention_desc, mask_strides) == 88,
              "seq4j_attention_desc.mask_strides");

// ---- activations
static_assert(SEQ4J_ACTIVATION_RELU == 0, "SEQ4J_ACTIVATION_RELU");
static_assert(SEQ4J_ACTIVATION_GELU == 1, "SEQ4J_ACTIVATION_GELU");
static_assert(SEQ4J_ACTIVATION_GELU_TANH == 2, "SEQ4J_ACTIVATION_GELU_TANH");
