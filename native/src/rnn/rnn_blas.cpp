// The BLAS backend of the recurrent layers: seq4j's own implementation, the cross-check of oneDNN's
// and the template for other backends. Forward and backward through time of one layer (one or
// two directions). The streaming step is rnn_step.cpp; the fused cell kernels, one copy per
// instruction set, are cell_kernels.inc (compiled by cell_kernels.cpp).
//
// The story of a forward, per direction:
//  1. The input projections of every step in one GEMM: gates (T*N, G*H) = x (T*N, I) W_ih^T.
//     Parameters stay in PyTorch's layout; sgemm reads W_ih transposed, so nothing is converted.
//  2. The recurrence, in one OpenMP parallel region for the whole sequence. W_hh is packed once per
//     call into panels of 16 units (PanelMatrix), so no step re-packs it as an sgemm call would
//     (that re-packing was 17% of the forward). Each thread owns a slice of the hidden units; per
//     step it multiplies h(t-1) by its panels (6 samples x 16 units per register tile), then runs
//     the fused cell kernel (cell_kernels.inc) on its units while they are still in cache, and the
//     threads meet at one barrier before the next step reads the new h.
//  3. Samples past their length are carried: their state stays, their output is 0, so both
//     directions start and end at each sample's own ends without gathering anything.
//  4. A training forward keeps in the workspace what the backward reads: the gate activations, the
//     state entering each step, the cells (LSTM), the hidden before projection, W_hn h + b_hn (GRU).
// The backward runs the steps in reverse in one parallel region (kernel on own units, barrier,
// dh(t-1) = dgates W_hh on own columns, with W_hh packed the other way, barrier). It keeps the
// gradients of the gate pre-activations of every step; the weight gradients are then one GEMM each
// over all steps (dW_ih = dgates^T x, dW_hh = dgates^T h_prev, dW_hr = dh^T m) and the input
// gradient one GEMM.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/gemm.h"
#include "rnn/rnn_blas.h"

namespace seq4j {
namespace {

using Sizes = RecurrentSizes;

// Inside a parallel region: the calling thread's hidden units [j0, j1) and output columns [o0, o1).
struct ThreadSlice {
  int part;
  int64_t j0, j1, o0, o1;
  ThreadSlice(int64_t hidden, int64_t output) : part(omp_get_thread_num()) {
    const int parts = omp_get_num_threads();
    split(hidden, part, parts, &j0, &j1);
    split(output, part, parts, &o0, &o1);
  }
};

bool active(const int64_t *lengths, int64_t sample, int64_t t) {
  return lengths == nullptr || t < lengths[sample];
}

// dst[0, count) = src[offset, offset + count), or zeros when src is NULL (an initial state or a
// gradient the caller did not give).
void copy_or_zero(float *dst, const float *src, int64_t offset, int64_t count) {
  if (src != nullptr)
    std::memcpy(dst, src + offset, count * sizeof(float));
  else
    std::memset(dst, 0, count * sizeof(float));
}

// What a training forward keeps for one direction, in floats, each block (T, N, width).
struct WorkspaceLayout {
  int64_t gates, h_prev, c_prev, cell, hidden, recurrent_n, per_direction;
  WorkspaceLayout(const Sizes &s, int64_t t, int64_t n) {
    const int64_t steps = t * n;
    int64_t offset = 0;
    auto take = [&](int64_t width) {
      const int64_t at = offset;
      offset += (steps * width + 15) / 16 * 16;
      return at;
    };
    gates = take(s.gates * s.hidden);
    h_prev = take(s.output);
    c_prev = s.lstm() ? take(s.hidden) : -1;
    cell = s.lstm() ? take(s.hidden) : -1;
    hidden = s.projection() ? take(s.hidden) : -1;
    recurrent_n = s.gru() ? take(s.hidden) : -1;
    per_direction = offset;
  }
};

// The forward recurrence's packed weights of one direction: W_hh per gate, W_hr^T.
struct ForwardPanels {
  PanelMatrix gates[4], projection;
  void pack(const Sizes &s, const seq4j_rnn_weights &w) {
    const int64_t H = s.hidden, O = s.output;
    for (int64_t g = 0; g < s.gates; ++g) gates[g].pack(w.weight_hh + g * H * O, O, H, true);
    if (s.projection()) projection.pack(w.weight_hr, H, O, true);
  }
};

// Per-thread scratch of the BLAS backend, so concurrent inference calls never share buffers.
struct BlasScratch {
  enum Slot {
    kGates, kState, kCell, kHidden, kRecurrent, kRecurrentN, kBias, kDGates, kDGatesRecurrent,
    kDState, kDCell, kDHidden, kDDirect, kDProjected, kZeros, kPanelOut,
    kSlotCount
  };
  AlignedBuffer slots[kSlotCount];
  // Training's packed weights, re-packed at every call: the forward's, then W_hh and W_hr for the
  // backward.
  ForwardPanels forward_panels;
  PanelMatrix recurrent_back_panels, projection_back_panels;
};

BlasScratch &blas_scratch() {
  thread_local BlasScratch instance;
  return instance;
}

// Inference keeps each direction's ForwardPanels while the caller's weights_version stays the same.
class CachedForwardPanels {
 public:
  std::shared_ptr<const ForwardPanels> get(const Sizes &s, const seq4j_rnn_weights &w,
                                           int64_t direction, int64_t version) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry &entry = entries_[direction];
    if (!entry.panels || version != entry.version) {
      auto panels = std::make_shared<ForwardPanels>();
      panels->pack(s, w);
      entry.panels = panels;
      entry.version = version;
    }
    return entry.panels;
  }

 private:
  struct Entry {
    std::shared_ptr<const ForwardPanels> panels;
    int64_t version = -1;
  };
  std::mutex mutex_;
  Entry entries_[2];
};

// The summed bias of the LSTM and the simple RNN (b_ih + b_hh), or NULL without bias.
const float *summed_bias(const Sizes &s, const seq4j_rnn_weights &w, int64_t direction,
                         AlignedBuffer &buffer) {
  if (!s.bias || s.gru()) return nullptr;
  require_weight("bias_ih", direction, w.bias_ih);
  require_weight("bias_hh", direction, w.bias_hh);
  const int64_t count = s.gates * s.hidden;
  float *b = buffer.floats(count);
  for (int64_t i = 0; i < count; ++i) b[i] = w.bias_ih[i] + w.bias_hh[i];
  return b;
}

// Peepholes as one (3H) block: w_ci, w_cf, w_co.
const float *peephole_block(const Sizes &s, const seq4j_rnn_weights &w, int64_t direction,
                            AlignedBuffer &buffer) {
  if (!s.peephole) return nullptr;
  require_weight("weight_ci", direction, w.weight_ci);
  require_weight("weight_cf", direction, w.weight_cf);
  require_weight("weight_co", direction, w.weight_co);
  const int64_t h = s.hidden;
  float *p = buffer.floats(3 * h);
  std::memcpy(p, w.weight_ci, h * sizeof(float));
  std::memcpy(p + h, w.weight_cf, h * sizeof(float));
  std::memcpy(p + 2 * h, w.weight_co, h * sizeof(float));
  return p;
}

class BlasRecurrent final : public RecurrentBackend {
 public:
  explicit BlasRecurrent(const Sizes &sizes) : s_(sizes) {}

  int64_t workspace_bytes(const int64_t *, int64_t t, int64_t n) override {
    return s_.directions * WorkspaceLayout(s_, t, n).per_direction * int64_t{sizeof(float)};
  }

  void set_step_weights(int32_t storage) override { packed_.set_storage(storage); }

  void forward(const seq4j_rnn_weights *weights, int64_t version, float *output, float *h_n,
               float *c_n, void *workspace, int64_t workspace_size, const float *input,
               const float *h0, const float *c0, const int64_t *lengths, int64_t t,
               int64_t n) override {
    if (workspace == nullptr && n <= kStepPanelMaxBatch) {
      // Small-batch inference: step by step on packed weights, which read the weights once per
      // step instead of sgemm's read, pack and re-read.
      for (int64_t d = 0; d < s_.directions; ++d)
        forward_direction_packed(d, weights[d], version, output, h_n, c_n, input, h0, c0, lengths,
                                 t, n);
      return;
    }
    const WorkspaceLayout layout(s_, t, n);
    if (workspace != nullptr && workspace_size < workspace_bytes(lengths, t, n))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", workspace_bytes(lengths, t, n),
           ", got ", workspace_size);
    for (int64_t d = 0; d < s_.directions; ++d) {
      float *ws = workspace == nullptr ? nullptr
                                       : static_cast<float *>(workspace) + d * layout.per_direction;
      forward_direction(d, weights[d], version, output, h_n, c_n, ws, layout, input, h0, c0,
                        lengths, t, n);
    }
  }

  void backward(const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                float *grad_input, float *grad_h0, float *grad_c0, const float *grad_output,
                const float *grad_h_n, const float *grad_c_n, const void *workspace,
                int64_t workspace_size, const float *input, const float *, const float *,
                const float *, const float *, const float *, const int64_t *lengths, int64_t t,
                int64_t n) override {
    const WorkspaceLayout layout(s_, t, n);
    if (workspace == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace is NULL: the backward needs a training forward's");
    if (workspace_size < workspace_bytes(lengths, t, n))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", workspace_bytes(lengths, t, n),
           ", got ", workspace_size);
    for (int64_t d = 0; d < s_.directions; ++d) {
      const float *ws = static_cast<const float *>(workspace) + d * layout.per_direction;
      backward_direction(d, weights[d], grads[d], grad_input, grad_h0, grad_c0, grad_output,
                         grad_h_n, grad_c_n, ws, layout, input, lengths, t, n);
    }
  }

 private:
  void forward_direction_packed(int64_t d, const seq4j_rnn_weights &w, int64_t version,
                                float *output, float *h_n, float *c_n, const float *input,
                                const float *h0, const float *c0, const int64_t *lengths,
                                int64_t t, int64_t n) {
    const Sizes &s = s_;
    const int64_t H = s.hidden, O = s.output, D = s.directions;
    std::shared_ptr<StepWeights> packed = packed_.get(s, w, d, version);
    BlasScratch &sc = blas_scratch();  // step_packed has scratch of its own
    float *h = sc.slots[BlasScratch::kDState].floats(n * O);
    float *c = s.lstm() ? sc.slots[BlasScratch::kDCell].floats(n * H) : nullptr;
    float *saved_h = sc.slots[BlasScratch::kDDirect].floats(n * O);
    float *saved_c = s.lstm() ? sc.slots[BlasScratch::kDGatesRecurrent].floats(n * H) : nullptr;
    copy_or_zero(h, h0, d * n * O, n * O);
    if (s.lstm()) copy_or_zero(c, c0, d * n * H, n * H);
    for (int64_t p = 0; p < t; ++p) {
      const int64_t step = d == 0 ? p : t - 1 - p;
      bool any_inactive = false;
      for (int64_t i = 0; i < n; ++i) any_inactive |= !active(lengths, i, step);
      if (any_inactive) {
        std::memcpy(saved_h, h, n * O * sizeof(float));
        if (s.lstm()) std::memcpy(saved_c, c, n * H * sizeof(float));
      }
      step_packed(s, *packed, h, c, input + step * n * s.input, n);
      for (int64_t i = 0; i < n; ++i) {
        float *y = output + (step * n + i) * D * O + d * O;
        if (active(lengths, i, step)) {
          std::memcpy(y, h + i * O, O * sizeof(float));
        } else {
          std::memcpy(h + i * O, saved_h + i * O, O * sizeof(float));
          if (s.lstm()) std::memcpy(c + i * H, saved_c + i * H, H * sizeof(float));
          std::memset(y, 0, O * sizeof(float));
        }
      }
    }
    if (h_n != nullptr) std::memcpy(h_n + d * n * O, h, n * O * sizeof(float));
    if (s.lstm() && c_n != nullptr) std::memcpy(c_n + d * n * H, c, n * H * sizeof(float));
  }

  void forward_direction(int64_t d, const seq4j_rnn_weights &w, int64_t version, float *output,
                         float *h_n,
                         float *c_n, float *ws, const WorkspaceLayout &layout, const float *input,
                         const float *h0, const float *c0, const int64_t *lengths, int64_t t,
                         int64_t n) {
    const Sizes &s = s_;
    const int64_t H = s.hidden, O = s.output, G = s.gates, GH = G * H, D = s.directions;
    const bool training = ws != nullptr;
    require_weight("weight_ih", d, w.weight_ih);
    require_weight("weight_hh", d, w.weight_hh);
    if (s.projection()) require_weight("weight_hr", d, w.weight_hr);
    if (s.gru() && s.bias) {
      require_weight("bias_ih", d, w.bias_ih);
      require_weight("bias_hh", d, w.bias_hh);
    }
    BlasScratch &sc = blas_scratch();
    const float *bias = summed_bias(s, w, d, sc.slots[BlasScratch::kBias]);
    AlignedBuffer peephole_buffer;
    const float *peephole = peephole_block(s, w, d, peephole_buffer);

    // 1. every step's input projection
    float *gates = training ? ws + layout.gates : sc.slots[BlasScratch::kGates].floats(t * n * GH);
    matmul_blas(gates, input, w.weight_ih, t * n, GH, s.input, false, true, 1.0f, 0.0f);

    // State ping-pong buffers: [0] and [1] of (N, O) hidden and (N, H) cells.
    float *state = sc.slots[BlasScratch::kState].floats(2 * n * O);
    float *cells = s.lstm() ? sc.slots[BlasScratch::kCell].floats(2 * n * H) : nullptr;
    copy_or_zero(state, h0, d * n * O, n * O);
    if (s.lstm()) copy_or_zero(cells, c0, d * n * H, n * H);
    // Per step: the hidden before projection (LSTM with projection), W_hh h (GRU), W_hn h + b_hn.
    float *hidden_scratch = s.projection() && !training ? sc.slots[BlasScratch::kHidden].floats(n * H) : nullptr;
    float *recurrent = s.gru() ? sc.slots[BlasScratch::kRecurrent].floats(n * GH) : nullptr;
    float *recurrent_n_scratch = s.gru() && !training ? sc.slots[BlasScratch::kRecurrentN].floats(n * H) : nullptr;
    const CellKernels &k = kernels();
    const bool relu = s.cell == SEQ4J_CELL_RNN_RELU;
    const int threads = seq4j::threads();
    // The per-step products stream weights packed once per call (see PanelMatrix), or kept from an
    // earlier inference call with the same weights_version.
    std::shared_ptr<const ForwardPanels> cached;
    const ForwardPanels *panels = &sc.forward_panels;
    if (!training && version >= 0) {
      cached = forward_panels_.get(s, w, d, version);
      panels = cached.get();
    } else {
      sc.forward_panels.pack(s, w);
    }
    float *panel_out = sc.slots[BlasScratch::kPanelOut].floats(threads * n * kPanel);

#pragma omp parallel num_threads(threads)
    {
      const ThreadSlice mine(H, O);
      const int64_t j0 = mine.j0, j1 = mine.j1, o0 = mine.o0, o1 = mine.o1;
      float *my_panel_out = panel_out + mine.part * n * kPanel;
      for (int64_t p = 0; p < t; ++p) {
        const int64_t step = d == 0 ? p : t - 1 - p;
        float *h_cur = state + (p & 1) * n * O, *h_next = state + ((p + 1) & 1) * n * O;
        float *c_cur = s.lstm() ? cells + (p & 1) * n * H : nullptr;
        float *c_next = s.lstm() ? cells + ((p + 1) & 1) * n * H : nullptr;
        float *g_step = gates + step * n * GH;
        float *hidden = !s.projection() ? nullptr
                        : training ? ws + layout.hidden + step * n * H : hidden_scratch;
        float *recurrent_n = !s.gru() ? nullptr
                             : training ? ws + layout.recurrent_n + step * n * H : recurrent_n_scratch;
        if (training) {
          for (int64_t i = 0; i < n; ++i) {
            std::memcpy(ws + layout.h_prev + (step * n + i) * O + o0, h_cur + i * O + o0,
                        (o1 - o0) * sizeof(float));
            if (s.lstm())
              std::memcpy(ws + layout.c_prev + (step * n + i) * H + j0, c_cur + i * H + j0,
                          (j1 - j0) * sizeof(float));
          }
        }
        // The recurrent products of this thread's units, gate by gate.
        for (int64_t g = 0; g < G; ++g)
          panels->gates[g].product(k, (s.gru() ? recurrent : g_step) + g * H, GH, h_cur, O, n, j0,
                                    j1, !s.gru(), my_panel_out);
        // The cell on this thread's units, sample by sample.
        for (int64_t i = 0; i < n; ++i) {
          float *g_row = g_step + i * GH;
          if (!active(lengths, i, step)) {
            if (s.lstm()) std::memcpy(c_next + i * H + j0, c_cur + i * H + j0, (j1 - j0) * sizeof(float));
            // dW_hr multiplies this row by a zero gradient: it must be finite, not stale memory.
            if (s.projection()) std::memset(hidden + i * H + j0, 0, (j1 - j0) * sizeof(float));
            if (!s.projection())
              std::memcpy(h_next + i * O + j0, h_cur + i * O + j0, (j1 - j0) * sizeof(float));
            continue;
          }
          if (s.lstm()) {
            float *out = s.projection() ? hidden + i * H : h_next + i * O;
            k.lstm_forward(g_row, c_next + i * H, out, bias, peephole, c_cur + i * H, H, j0, j1);
          } else if (s.gru()) {
            k.gru_forward(g_row, recurrent_n + i * H, h_next + i * O, recurrent + i * GH,
                          s.bias ? w.bias_ih : nullptr, s.bias ? w.bias_hh : nullptr,
                          h_cur + i * O, H, j0, j1);
          } else {
            k.rnn_forward(g_row, h_next + i * O, bias, relu, j0, j1);
          }
        }
        if (s.projection()) {
#pragma omp barrier
          panels->projection.product(k, h_next, O, hidden, H, n, o0, o1, false, my_panel_out);
          for (int64_t i = 0; i < n; ++i)
            if (!active(lengths, i, step))
              std::memcpy(h_next + i * O + o0, h_cur + i * O + o0, (o1 - o0) * sizeof(float));
        }
        if (training && s.lstm()) {
          for (int64_t i = 0; i < n; ++i)
            std::memcpy(ws + layout.cell + (step * n + i) * H + j0, c_next + i * H + j0,
                        (j1 - j0) * sizeof(float));
        }
        for (int64_t i = 0; i < n; ++i) {
          float *y = output + (step * n + i) * D * O + d * O;
          if (active(lengths, i, step))
            std::memcpy(y + o0, h_next + i * O + o0, (o1 - o0) * sizeof(float));
          else
            std::memset(y + o0, 0, (o1 - o0) * sizeof(float));
        }
#pragma omp barrier
      }
    }
    const float *h_last = state + (t & 1) * n * O;
    if (h_n != nullptr) std::memcpy(h_n + d * n * O, h_last, n * O * sizeof(float));
    if (s.lstm() && c_n != nullptr)
      std::memcpy(c_n + d * n * H, cells + (t & 1) * n * H, n * H * sizeof(float));
  }

  void backward_direction(int64_t d, const seq4j_rnn_weights &w, const seq4j_rnn_weights &gw,
                          float *grad_input, float *grad_h0, float *grad_c0,
                          const float *grad_output, const float *grad_h_n, const float *grad_c_n,
                          const float *ws, const WorkspaceLayout &layout, const float *input,
                          const int64_t *lengths, int64_t t, int64_t n) {
    const Sizes &s = s_;
    const int64_t H = s.hidden, O = s.output, G = s.gates, GH = G * H, D = s.directions;
    const int64_t P = s.proj, rows = t * n;
    require_weight("weight_ih", d, w.weight_ih);
    require_weight("weight_hh", d, w.weight_hh);
    require_weight("weight_ih (gradient)", d, gw.weight_ih);
    require_weight("weight_hh (gradient)", d, gw.weight_hh);
    if (s.projection()) {
      require_weight("weight_hr", d, w.weight_hr);
      require_weight("weight_hr (gradient)", d, gw.weight_hr);
    }
    if (s.bias) {
      require_weight("bias_ih (gradient)", d, gw.bias_ih);
      require_weight("bias_hh (gradient)", d, gw.bias_hh);
    }
    if (s.peephole) {
      require_weight("weight_ci (gradient)", d, gw.weight_ci);
      require_weight("weight_cf (gradient)", d, gw.weight_cf);
      require_weight("weight_co (gradient)", d, gw.weight_co);
    }
    BlasScratch &sc = blas_scratch();
    AlignedBuffer peephole_buffer;
    const float *peephole = peephole_block(s, w, d, peephole_buffer);
    const float *gates = ws + layout.gates, *h_prev_all = ws + layout.h_prev;
    // Gradients of the gate pre-activations of every step (T, N, G*H); for the GRU, those the
    // recurrent product saw differ from the input product's in n.
    float *d_gates = sc.slots[BlasScratch::kDGates].floats(rows * GH);
    float *d_gates_recurrent = s.gru() ? sc.slots[BlasScratch::kDGatesRecurrent].floats(rows * GH) : d_gates;
    // The gradient of the projected h of every step (T, N, P), for dW_hr.
    float *d_projected = s.projection() ? sc.slots[BlasScratch::kDProjected].floats(rows * P) : nullptr;
    float *d_state = sc.slots[BlasScratch::kDState].floats(2 * n * O);
    float *d_cell = s.lstm() ? sc.slots[BlasScratch::kDCell].floats(n * H) : nullptr;
    float *d_hidden = s.projection() ? sc.slots[BlasScratch::kDHidden].floats(n * H) : nullptr;
    float *d_direct = s.gru() ? sc.slots[BlasScratch::kDDirect].floats(n * H) : nullptr;
    // The step processed first (p = t - 1) reads buffer (t - 1) & 1; p = 0 leaves dh0 in [1].
    float *d_first = d_state + ((t - 1) & 1) * n * O;
    copy_or_zero(d_first, grad_h_n, d * n * O, n * O);
    if (s.lstm()) copy_or_zero(d_cell, grad_c_n, d * n * H, n * H);
    const CellKernels &k = kernels();
    const bool relu = s.cell == SEQ4J_CELL_RNN_RELU;
    const int threads = seq4j::threads();
    sc.recurrent_back_panels.pack(w.weight_hh, GH, O, false);
    if (s.projection()) sc.projection_back_panels.pack(w.weight_hr, P, H, false);
    float *panel_out = sc.slots[BlasScratch::kPanelOut].floats(threads * n * kPanel);

#pragma omp parallel num_threads(threads)
    {
      const ThreadSlice mine(H, O);
      const int64_t j0 = mine.j0, j1 = mine.j1, o0 = mine.o0, o1 = mine.o1;
      float *my_panel_out = panel_out + mine.part * n * kPanel;
      for (int64_t p = t - 1; p >= 0; --p) {
        const int64_t step = d == 0 ? p : t - 1 - p;
        // dh of this step's output: from later steps (d_cur) plus from the layer's output.
        float *d_cur = d_state + (p & 1) * n * O, *d_next = d_state + ((p + 1) & 1) * n * O;
        for (int64_t i = 0; i < n; ++i) {
          if (!active(lengths, i, step)) continue;
          const float *dy = grad_output + (step * n + i) * D * O + d * O;
          float *dh = d_cur + i * O;
          for (int64_t o = o0; o < o1; ++o) dh[o] += dy[o];
        }
        const float *d_out = d_cur;  // the gradient the cell kernels see, per unit
        if (s.projection()) {
          float *dp = d_projected + step * n * P;
          for (int64_t i = 0; i < n; ++i) {
            if (active(lengths, i, step))
              std::memcpy(dp + i * P + o0, d_cur + i * O + o0, (o1 - o0) * sizeof(float));
            else
              std::memset(dp + i * P + o0, 0, (o1 - o0) * sizeof(float));
          }
#pragma omp barrier
          sc.projection_back_panels.product(k, d_hidden, H, dp, P, n, j0, j1, false, my_panel_out);
          d_out = d_hidden;
        }
        const int64_t d_width = s.projection() ? H : O;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t row = step * n + i;
          float *dg = d_gates + row * GH;
          if (!active(lengths, i, step)) {
            for (int64_t g = 0; g < G; ++g) {
              std::memset(dg + g * H + j0, 0, (j1 - j0) * sizeof(float));
              if (s.gru()) std::memset(d_gates_recurrent + row * GH + g * H + j0, 0, (j1 - j0) * sizeof(float));
            }
            continue;
          }
          const float *g_row = gates + row * GH;
          if (s.lstm()) {
            k.lstm_backward(dg, d_cell + i * H, d_out + i * d_width, g_row, ws + layout.cell + row * H,
                            ws + layout.c_prev + row * H, peephole, H, j0, j1);
          } else if (s.gru()) {
            k.gru_backward(dg, d_gates_recurrent + row * GH, d_direct + i * H, d_out + i * d_width,
                           g_row, ws + layout.recurrent_n + row * H, h_prev_all + row * O, H, j0, j1);
          } else {
            k.rnn_backward(dg, d_out + i * d_width, g_row, relu, j0, j1);
          }
        }
#pragma omp barrier
        // dh(t-1) on this thread's columns: through W_hh, plus the carried or direct parts.
        sc.recurrent_back_panels.product(k, d_next, O, d_gates_recurrent + step * n * GH, GH, n,
                                         o0, o1, false, my_panel_out);
        for (int64_t i = 0; i < n; ++i) {
          float *dn = d_next + i * O;
          const float *dc = d_cur + i * O;
          if (!active(lengths, i, step)) {
            for (int64_t o = o0; o < o1; ++o) dn[o] += dc[o];
          } else if (s.gru()) {
            const float *direct = d_direct + i * H;
            for (int64_t o = o0; o < o1; ++o) dn[o] += direct[o];
          }
        }
#pragma omp barrier
      }
    }
    const float *d_h0 = d_state + 1 * n * O;
    if (grad_h0 != nullptr) std::memcpy(grad_h0 + d * n * O, d_h0, n * O * sizeof(float));
    if (s.lstm() && grad_c0 != nullptr) std::memcpy(grad_c0 + d * n * H, d_cell, n * H * sizeof(float));

    // Every step's share of the parameter gradients at once.
    if (grad_input != nullptr)
      matmul_blas(grad_input, d_gates, w.weight_ih, rows, s.input, GH, false, false, 1.0f,
                  d == 0 ? 0.0f : 1.0f);
    matmul_blas(gw.weight_ih, d_gates, input, GH, s.input, rows, true, false, 1.0f, 1.0f);
    matmul_blas(gw.weight_hh, d_gates_recurrent, h_prev_all, GH, O, rows, true, false, 1.0f, 1.0f);
    if (s.projection())
      matmul_blas(gw.weight_hr, d_projected, ws + layout.hidden, P, H, rows, true, false, 1.0f, 1.0f);
    // Bias and peephole gradients: column sums over every (step, sample) row, one block of 16
    // units of one gate per task, so each row contributes one cache line per task.
    const int64_t unit_blocks = (H + 15) / 16;
    const float *c_prev_all = s.lstm() ? ws + layout.c_prev : nullptr;
    const float *cell_all = s.lstm() ? ws + layout.cell : nullptr;
#pragma omp parallel for collapse(2) num_threads(threads) schedule(static) if (s.bias || s.peephole)
    for (int64_t g = 0; g < (s.bias || s.peephole ? G : 0); ++g) {
      for (int64_t block = 0; block < unit_blocks; ++block) {
        const int64_t u0 = block * 16, u1 = std::min(H, u0 + 16), width = u1 - u0;
        // w_ci and w_cf see c(t-1) in gates i and f; w_co sees c(t) in gate o; g has none.
        const float *peephole_source =
            !s.peephole || g == 2 ? nullptr : g == 3 ? cell_all : c_prev_all;
        float sum_input[16] = {}, sum_recurrent[16] = {}, sum_peephole[16] = {};
        for (int64_t r = 0; r < rows; ++r) {
          const float *a = d_gates + r * GH + g * H + u0;
          const float *b = d_gates_recurrent + r * GH + g * H + u0;
          for (int64_t u = 0; u < width; ++u) {
            sum_input[u] += a[u];
            sum_recurrent[u] += b[u];
          }
          if (peephole_source != nullptr) {
            const float *c = peephole_source + r * H + u0;
            for (int64_t u = 0; u < width; ++u) sum_peephole[u] += a[u] * c[u];
          }
        }
        for (int64_t u = 0; u < width; ++u) {
          if (s.bias) {
            gw.bias_ih[g * H + u0 + u] += sum_input[u];
            gw.bias_hh[g * H + u0 + u] += sum_recurrent[u];
          }
          if (peephole_source != nullptr) {
            float *target = g == 0 ? gw.weight_ci : g == 1 ? gw.weight_cf : gw.weight_co;
            target[u0 + u] += sum_peephole[u];
          }
        }
      }
    }
  }

  Sizes s_;
  PackedStepWeights packed_;
  CachedForwardPanels forward_panels_;
};

}  // namespace

std::unique_ptr<RecurrentBackend> make_blas_recurrent(const RecurrentSizes &sizes) {
  return std::make_unique<BlasRecurrent>(sizes);
}

}  // namespace seq4j
