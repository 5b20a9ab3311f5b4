// The C entry points of the recurrent layers and the choice between their two backends: a
// seq4j_rnn_layer handle holds both implementations of one layer (rnn_onednn.cpp: oneDNN's RNN
// primitives; rnn_blas.cpp: OpenBLAS sgemm and seq4j's fused cell kernels) and the streaming
// stepper (rnn_step.cpp); each call checks its arguments, resolves AUTO by the table below and
// runs on one of them.
#include <memory>

#include "core/cpu.h"
#include "core/error.h"
#include "core/runtime.h"
#include "rnn/recurrent.h"

namespace seq4j {
namespace {

using Sizes = RecurrentSizes;

// What a seq4j_rnn_layer handle points at: both backends of one layer, and its streaming stepper.
struct LayerHandle {
  Sizes sizes;
  std::unique_ptr<RecurrentBackend> onednn, blas;
  std::unique_ptr<RecurrentStepper> stepper;
};

LayerHandle *checked(seq4j_rnn_layer *handle) {
  if (handle == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "layer is NULL");
  return reinterpret_cast<LayerHandle *>(handle);
}

// AUTO's table, measured with bench/ and the peer comparison (both backends in one run; README
// "Recurrent backends" has the figures). On a CPU with AVX-512, where oneDNN runs its AVX-512
// kernels (2026-12-04, a 2-core Xeon; T = 35, H = 200 and 512, medians of 40-2000 calls):
//  - training on at most 6 samples: BLAS (N = 1: 0.63x of oneDNN's time at H = 200, 0.60x at
//    512; N = 6: 0.94x, 0.81x); from 8 samples on oneDNN (N = 8, H = 200: 0.85x of BLAS's time, H = 512:
//    1.04x; N = 16: 0.78x, 0.96x; N = 32: 0.75x, 0.81x), peepholes too (DESIGN.md's M: 0.75x forward,
//    0.86x forward+backward);
//  - inference of single steps on at most 4 samples: BLAS's steps on weights packed for
//    matrix-vector work (T = 1, N = 1..4: 0.67-0.95x of oneDNN's time); longer sequences and more
//    samples oneDNN, which projects every step's input in one product (T = 12, N = 1: 0.79x at
//    H = 200, 0.35x at 512; T = 35, N = 8: 0.70x, 0.74x).
// Elsewhere (AVX2, measured on a 2-core AMD EPYC):
//  - inference on at most 8 samples: BLAS steps on weights packed for matrix-vector work, where
//    oneDNN's primitive pays fixed costs per call (the streaming step: about 2x faster);
//  - training on at most 32 samples: BLAS, whose per-step products stream weights packed once per
//    call (1.2-1.8x faster than oneDNN at N = 1..32, H = 256 and 512);
//  - LSTMs with peepholes: BLAS, whose peepholes are fused into the cell kernels (oneDNN loses
//    5-15% to them, BLAS nothing measurable);
//  - everything else (large batches): oneDNN, as fast or up to 10% faster.
// Deterministic mode (seq4j_set_deterministic): BLAS always, whose results do not depend on the
// thread count then; oneDNN's primitives split their work by it.
int32_t choose_backend(const Sizes &s, int64_t t, int64_t n, bool training) {
  if (deterministic()) return SEQ4J_BACKEND_BLAS;
  if (best_isa() == Isa::kAvx512) {
    const bool blas = training ? n <= 6 : t == 1 && n <= 4;
    return blas ? SEQ4J_BACKEND_BLAS : SEQ4J_BACKEND_ONEDNN;
  }
  if (s.peephole) return SEQ4J_BACKEND_BLAS;
  if (n <= (training ? 32 : 8)) return SEQ4J_BACKEND_BLAS;
  return SEQ4J_BACKEND_ONEDNN;
}

int32_t resolve(const LayerHandle &h, int32_t backend, int64_t t, int64_t n, bool training) {
  switch (backend) {
    case SEQ4J_BACKEND_AUTO:
      return choose_backend(h.sizes, t, n, training);
    case SEQ4J_BACKEND_ONEDNN:
    case SEQ4J_BACKEND_BLAS:
      return backend;
    default:
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "backend must be 0 (AUTO), 1 (ONEDNN) or 2 (BLAS), got ",
           backend);
  }
}

RecurrentBackend &implementation(LayerHandle &h, int32_t backend, int64_t t, int64_t n,
                                 bool training) {
  return resolve(h, backend, t, n, training) == SEQ4J_BACKEND_BLAS ? *h.blas : *h.onednn;
}

void check_sizes(int64_t t, int64_t n) {
  if (t < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "t must be >= 1, got ", t);
  if (n < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n must be >= 1, got ", n);
}

}  // namespace

void require_weight(const char *name, int64_t direction, const float *pointer) {
  if (pointer == nullptr)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "weights[", direction, "].", name, " is NULL");
}

void check_lengths(const int64_t *lengths, int64_t t, int64_t n) {
  if (lengths == nullptr) return;
  for (int64_t i = 0; i < n; ++i) {
    if (lengths[i] < 1 || lengths[i] > t)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "lengths[", i, "] must be in [1, ", t, "], got ",
           lengths[i]);
  }
}

}  // namespace seq4j

using seq4j::fail;
using seq4j::guarded;

extern "C" {

int seq4j_rnn_layer_create(seq4j_rnn_layer **layer, const seq4j_rnn_layer_desc *desc) {
  return guarded(__func__, [&] {
    if (layer == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "layer is NULL");
    *layer = nullptr;
    if (desc == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc is NULL");
    seq4j::Sizes s{};
    s.cell = desc->cell;
    if (s.cell < SEQ4J_CELL_RNN_TANH || s.cell > SEQ4J_CELL_GRU)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.cell must be 0..3, got ", desc->cell);
    if (desc->directions != 1 && desc->directions != 2)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.directions must be 1 or 2, got ", desc->directions);
    if (desc->input_size < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.input_size must be >= 1, got ", desc->input_size);
    if (desc->hidden_size < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.hidden_size must be >= 1, got ", desc->hidden_size);
    if (desc->proj_size < 0 || (desc->proj_size > 0 && (s.cell != SEQ4J_CELL_LSTM || desc->proj_size >= desc->hidden_size)))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.proj_size must be 0, or in [1, hidden_size) for an LSTM, got ",
           desc->proj_size);
    if (desc->peephole && s.cell != SEQ4J_CELL_LSTM)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc.peephole is only for an LSTM");
    s.directions = desc->directions;
    s.input = desc->input_size;
    s.hidden = desc->hidden_size;
    s.proj = desc->proj_size;
    s.output = s.proj > 0 ? s.proj : s.hidden;
    s.gates = s.cell == SEQ4J_CELL_LSTM ? 4 : s.cell == SEQ4J_CELL_GRU ? 3 : 1;
    s.bias_gates = s.cell == SEQ4J_CELL_GRU ? 4 : s.gates;
    s.peephole = desc->peephole != 0;
    s.bias = desc->bias != 0;
    auto handle = std::make_unique<seq4j::LayerHandle>();
    handle->sizes = s;
    handle->onednn = seq4j::make_onednn_recurrent(s);
    handle->blas = seq4j::make_blas_recurrent(s);
    if (s.directions == 1) handle->stepper = seq4j::make_recurrent_stepper(s);
    *layer = reinterpret_cast<seq4j_rnn_layer *>(handle.release());
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_destroy(seq4j_rnn_layer *layer) {
  return guarded(__func__, [&] {
    delete reinterpret_cast<seq4j::LayerHandle *>(layer);
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_backend(seq4j_rnn_layer *layer, int32_t backend, int64_t t, int64_t n,
                            int32_t training, int32_t *chosen) {
  return guarded(__func__, [&] {
    seq4j::LayerHandle *l = seq4j::checked(layer);
    seq4j::check_sizes(t, n);
    if (chosen == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "chosen is NULL");
    *chosen = seq4j::resolve(*l, backend, t, n, training != 0);
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_workspace_size(seq4j_rnn_layer *layer, int32_t backend,
                                   const int64_t *lengths, int64_t t, int64_t n, int64_t *bytes) {
  return guarded(__func__, [&] {
    seq4j::LayerHandle *l = seq4j::checked(layer);
    seq4j::check_sizes(t, n);
    if (bytes == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "bytes is NULL");
    seq4j::check_lengths(lengths, t, n);
    *bytes = seq4j::implementation(*l, backend, t, n, true).workspace_bytes(lengths, t, n);
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_forward(seq4j_rnn_layer *layer, int32_t backend,
                            const seq4j_rnn_weights *weights, int64_t weights_version,
                            float *output, float *h_n, float *c_n, void *workspace,
                            int64_t workspace_bytes, const float *input, const float *h0,
                            const float *c0, const int64_t *lengths, int64_t t, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::LayerHandle *l = seq4j::checked(layer);
    seq4j::check_sizes(t, n);
    if (weights == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "weights is NULL");
    if (input == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "input is NULL");
    if (output == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "output is NULL");
    seq4j::check_lengths(lengths, t, n);
    seq4j::use_configured_threads();
    seq4j::implementation(*l, backend, t, n, workspace != nullptr)
        .forward(weights, weights_version, output, h_n, c_n, workspace, workspace_bytes, input,
                 h0, c0, lengths, t, n);
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_backward(seq4j_rnn_layer *layer, int32_t backend,
                             const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                             float *grad_input, float *grad_h0, float *grad_c0,
                             const float *grad_output, const float *grad_h_n,
                             const float *grad_c_n, const void *workspace, int64_t workspace_bytes,
                             const float *input, const float *h0, const float *c0,
                             const float *output, const float *h_n, const float *c_n,
                             const int64_t *lengths, int64_t t, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::LayerHandle *l = seq4j::checked(layer);
    seq4j::check_sizes(t, n);
    if (weights == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "weights is NULL");
    if (grads == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "grads is NULL");
    if (input == nullptr || output == nullptr || grad_output == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "input, output and grad_output must not be NULL");
    seq4j::check_lengths(lengths, t, n);
    seq4j::use_configured_threads();
    seq4j::implementation(*l, backend, t, n, true)
        .backward(weights, grads, grad_input, grad_h0, grad_c0, grad_output, grad_h_n, grad_c_n,
                  workspace, workspace_bytes, input, h0, c0, output, h_n, c_n, lengths, t, n);
    return SEQ4J_OK;
  });
}

int seq4j_rnn_step(seq4j_rnn_layer *const *layers, const seq4j_rnn_weights *const *weights,
                   int64_t weights_version, int32_t num_layers, float *h, float *c,
                   const float *input, int64_t n) {
  return guarded(__func__, [&] {
    if (layers == nullptr || weights == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "layers and weights must not be NULL");
    if (num_layers < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "num_layers must be >= 1, got ", num_layers);
    if (n < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n must be >= 1, got ", n);
    if (input == nullptr || h == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "input and h must not be NULL");
    seq4j::use_configured_threads();
    const float *layer_input = input;
    float *layer_h = h, *layer_c = c;
    for (int32_t i = 0; i < num_layers; ++i) {
      seq4j::LayerHandle *l = seq4j::checked(layers[i]);
      if (l->stepper == nullptr)
        fail(SEQ4J_ERR_INVALID_ARGUMENT, "layers[", i, "] is bidirectional: it cannot stream");
      if (weights[i] == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "weights[", i, "] is NULL");
      if (l->sizes.lstm() && c == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "c is NULL for an LSTM");
      l->stepper->step(weights[i], weights_version, layer_h, layer_c, layer_input, n);
      layer_input = layer_h;
      layer_h += n * l->sizes.output;
      if (l->sizes.lstm()) layer_c += n * l->sizes.hidden;
    }
    return SEQ4J_OK;
  });
}

int seq4j_rnn_layer_set_step_weights(seq4j_rnn_layer *layer, int32_t storage) {
  return guarded(__func__, [&] {
    seq4j::LayerHandle *l = seq4j::checked(layer);
    if (storage != SEQ4J_STEP_WEIGHTS_F32 && storage != SEQ4J_STEP_WEIGHTS_BF16)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "storage must be SEQ4J_STEP_WEIGHTS_F32 (0) or _BF16 (1), got ",
           storage);
    l->blas->set_step_weights(storage);
    if (l->stepper != nullptr) l->stepper->set_step_weights(storage);
    return SEQ4J_OK;
  });
}

}  // extern "C"
