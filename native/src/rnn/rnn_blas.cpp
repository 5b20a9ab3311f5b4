// The BLAS backend of the recurrent layers: seq4j's own implementation, the cross-check of oneDNN's
// and the template for other backends. Forward and backward through time of one layer (one or
// two directions), and the streaming step.
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
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/gemm.h"
#include "rnn/recurrent.h"

namespace seq4j {
namespace {

// Weight rows per panel of the streaming path's packed weights.
constexpr int kPanel = 16;

struct CellKernels {
  void (*lstm_forward)(float *gates, float *cell, float *hidden, const float *bias,
                       const float *peephole, const float *c_prev, int64_t h_size, int64_t j0,
                       int64_t j1);
  void (*lstm_backward)(float *d_gates, float *d_cell, const float *d_hidden, const float *gates,
                        const float *cell, const float *c_prev, const float *peephole,
                        int64_t h_size, int64_t j0, int64_t j1);
  void (*gru_forward)(float *gates, float *recurrent_n, float *hidden, const float *recurrent,
                      const float *bias_ih, const float *bias_hh, const float *h_prev,
                      int64_t h_size, int64_t j0, int64_t j1);
  void (*gru_backward)(float *d_gates_input, float *d_gates_recurrent, float *d_h_direct,
                       const float *d_hidden, const float *gates, const float *recurrent_n,
                       const float *h_prev, int64_t h_size, int64_t j0, int64_t j1);
  void (*rnn_forward)(float *gates, float *hidden, const float *bias, bool relu, int64_t j0,
                      int64_t j1);
  void (*rnn_backward)(float *d_gates, const float *d_hidden, const float *gates, bool relu,
                       int64_t j0, int64_t j1);
  void (*panel_product)(float *out, const float *panel, const float *x, int64_t ldx, int64_t k,
                        int64_t rows);
};

}  // namespace

// One copy of the kernels per instruction set; the pragmas apply to everything in the include.
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
namespace cell_avx512 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace cell_avx2 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx2
#pragma GCC pop_options
#endif

namespace cell_baseline {
#include "rnn/cell_kernels.inc"
}  // namespace cell_baseline

namespace {

const CellKernels *best_kernels() {
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
    return &cell_avx512::kernels;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &cell_avx2::kernels;
#endif
  return &cell_baseline::kernels;
}

std::atomic<const CellKernels *> active_kernels{best_kernels()};

const CellKernels &kernels() { return *active_kernels.load(std::memory_order_relaxed); }

using Sizes = RecurrentSizes;

// The hidden units [begin, end) of thread `part` of `parts`, in blocks of 16 where the size allows,
// so each thread's slice of a row starts on a cache line.
void split(int64_t size, int part, int parts, int64_t *begin, int64_t *end) {
  const int64_t blocks = (size + 15) / 16;
  const int64_t per = blocks / parts, extra = blocks % parts;
  const int64_t first = part * per + std::min<int64_t>(part, extra);
  const int64_t count = per + (part < extra ? 1 : 0);
  *begin = std::min(size, first * 16);
  *end = std::min(size, (first + count) * 16);
}

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

// A weight matrix packed once for the many products of a recurrence: out (n, cols) = x (n, k) * B,
// where B is W^T (transposed: W is (cols, k) row-major, as PyTorch stores weight_hh) or W itself
// ((k, cols)). Columns come in blocks of kPanel, each stored k-major (panel[kk * kPanel + lane]),
// the layout of the register-tiled panel_product; sgemm would re-pack W at every step.
struct PanelMatrix {
  int64_t k = 0, cols = 0;
  std::vector<float> panels;

  void pack(const float *w, int64_t k_size, int64_t col_count, bool transposed) {
    k = k_size;
    cols = col_count;
    const int64_t blocks = (cols + kPanel - 1) / kPanel;
    panels.resize(blocks * k * kPanel);
    float *data = panels.data();
#pragma omp parallel for schedule(static) if (blocks * k * kPanel > (1 << 16))
    for (int64_t b = 0; b < blocks; ++b) {
      float *panel = data + b * k * kPanel;
      for (int64_t kk = 0; kk < k; ++kk)
        for (int lane = 0; lane < kPanel; ++lane) {
          const int64_t c = b * kPanel + lane;
          panel[kk * kPanel + lane] =
              c >= cols ? 0.0f : transposed ? w[c * k + kk] : w[kk * cols + c];
        }
    }
  }

  // out[i * ldo + c] (+)= (x B)[i][c] for the columns [c0, c1). scratch holds n * kPanel floats.
  void product(const CellKernels &kernels, float *out, int64_t ldo, const float *x, int64_t ldx,
               int64_t n, int64_t c0, int64_t c1, bool accumulate, float *scratch) const {
    for (int64_t b = c0 / kPanel; c0 < c1 && b * kPanel < c1; ++b) {
      kernels.panel_product(scratch, panels.data() + b * k * kPanel, x, ldx, k, n);
      const int64_t first = std::max(c0, b * kPanel), last = std::min(c1, b * kPanel + kPanel);
      for (int64_t i = 0; i < n; ++i) {
        float *row = out + i * ldo;
        const float *value = scratch + i * kPanel - b * kPanel;
        if (accumulate)
          for (int64_t c = first; c < last; ++c) row[c] += value[c];
        else
          for (int64_t c = first; c < last; ++c) row[c] = value[c];
      }
    }
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
    kDState, kDCell, kDHidden, kDDirect, kDProjected, kStepInput, kStepOut, kZeros, kPanelOut,
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

// Batches above this take the GEMM route of the full forward instead of the panels.
constexpr int64_t kStepPanelMaxBatch = 8;

// ---- the streaming step

// The weights of one direction packed for matrix-vector work: for each block of 16 hidden units
// and each product group, a panel over the group's slice of [x; h]. Groups: LSTM i, f, g, o and
// the simple RNN's one over [x; h]; GRU r, z over [x; h], n over x alone and over h alone (r
// multiplies the latter). The projection has its own panels over m.
struct StepWeights {
  struct Group {
    int64_t gate, k_begin, k_end;
    bool recurrent_only;  // GRU n's recurrent product (goes to `recurrent`, not `gates`)
  };
  std::vector<Group> groups;
  int64_t blocks = 0;
  std::vector<int64_t> panel_offset;  // per (block, group)
  std::vector<float> panels;
  PanelMatrix projection;  // W_hr^T
  std::vector<float> bias, peephole;
};

std::shared_ptr<StepWeights> pack_step(const Sizes &s, const seq4j_rnn_weights &w,
                                      int64_t direction) {
  auto packed = std::make_shared<StepWeights>();
  const int64_t I = s.input, O = s.output, H = s.hidden, K = I + O;
  require_weight("weight_ih", direction, w.weight_ih);
  require_weight("weight_hh", direction, w.weight_hh);
  if (s.gru()) {
    packed->groups = {{0, 0, K, false}, {1, 0, K, false}, {2, 0, I, false}, {2, I, K, true}};
  } else {
    for (int64_t g = 0; g < s.gates; ++g) packed->groups.push_back({g, 0, K, false});
  }
  packed->blocks = (H + kPanel - 1) / kPanel;
  int64_t offset = 0;
  for (int64_t b = 0; b < packed->blocks; ++b)
    for (const auto &group : packed->groups) {
      packed->panel_offset.push_back(offset);
      offset += (group.k_end - group.k_begin) * kPanel;
    }
  packed->panels.assign(offset, 0.0f);
  for (int64_t b = 0; b < packed->blocks; ++b)
    for (size_t gi = 0; gi < packed->groups.size(); ++gi) {
      const auto &group = packed->groups[gi];
      float *panel = packed->panels.data() + packed->panel_offset[b * packed->groups.size() + gi];
      for (int lane = 0; lane < kPanel; ++lane) {
        const int64_t unit = b * kPanel + lane;
        if (unit >= H) break;
        const int64_t row = group.gate * H + unit;
        for (int64_t kk = group.k_begin; kk < group.k_end; ++kk) {
          const float value = kk < I ? w.weight_ih[row * I + kk] : w.weight_hh[row * O + (kk - I)];
          panel[(kk - group.k_begin) * kPanel + lane] = value;
        }
      }
    }
  if (s.projection()) {
    require_weight("weight_hr", direction, w.weight_hr);
    packed->projection.pack(w.weight_hr, H, O, true);
  }
  if (s.bias) {
    require_weight("bias_ih", direction, w.bias_ih);
    require_weight("bias_hh", direction, w.bias_hh);
    const int64_t GH = s.gates * H;
    if (s.gru()) {
      packed->bias.assign(w.bias_ih, w.bias_ih + GH);
      packed->bias.insert(packed->bias.end(), w.bias_hh, w.bias_hh + GH);
    } else {
      packed->bias.resize(GH);
      for (int64_t i = 0; i < GH; ++i) packed->bias[i] = w.bias_ih[i] + w.bias_hh[i];
    }
  }
  if (s.peephole) {
    require_weight("weight_ci", direction, w.weight_ci);
    require_weight("weight_cf", direction, w.weight_cf);
    require_weight("weight_co", direction, w.weight_co);
    packed->peephole.assign(w.weight_ci, w.weight_ci + H);
    packed->peephole.insert(packed->peephole.end(), w.weight_cf, w.weight_cf + H);
    packed->peephole.insert(packed->peephole.end(), w.weight_co, w.weight_co + H);
  }
  return packed;
}


void split_blocks(int64_t blocks, int part, int parts, int64_t *begin, int64_t *end) {
  const int64_t per = blocks / parts, extra = blocks % parts;
  *begin = part * per + std::min<int64_t>(part, extra);
  *end = *begin + per + (part < extra ? 1 : 0);
}

// The packed weights of each direction, re-packed when the caller's weights_version changes.
class PackedStepWeights {
 public:
  std::shared_ptr<StepWeights> get(const Sizes &s, const seq4j_rnn_weights &w, int64_t direction,
                                   int64_t version) {
    std::lock_guard<std::mutex> lock(mutex_);
    Entry &entry = entries_[direction];
    if (version < 0 || !entry.packed || version != entry.version) {
      entry.packed = pack_step(s, w, direction);
      entry.version = version;
    }
    return entry.packed;
  }

 private:
  struct Entry {
    std::shared_ptr<StepWeights> packed;
    int64_t version = -1;
  };
  std::mutex mutex_;
  Entry entries_[2];
};

// One step of one direction on packed weights, for n <= kStepPanelMaxBatch samples: h (n, Hout)
// and c (n, H) are read and overwritten in place. One parallel region; each thread owns blocks of
// 16 hidden units and runs the products and the cell on them back to back.
void step_packed(const Sizes &s, const StepWeights &pw, float *h, float *c, const float *input,
               int64_t n) {
  const int64_t I = s.input, O = s.output, H = s.hidden, K = I + O, G = s.gates, GH = G * H;
  BlasScratch &sc = blas_scratch();
  // [x; h] of every sample, so the threads can overwrite h while others still read it.
  float *xh = sc.slots[BlasScratch::kStepInput].floats(n * K);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(xh + i * K, input + i * I, I * sizeof(float));
    std::memcpy(xh + i * K + I, h + i * O, O * sizeof(float));
  }
  // Per sample: the gate products (G*H), then the GRU's recurrent products (3H, only n used).
  float *gates = sc.slots[BlasScratch::kGates].floats(n * GH);
  float *recurrent = s.gru() ? sc.slots[BlasScratch::kRecurrent].floats(n * GH) : nullptr;
  float *recurrent_n = s.gru() ? sc.slots[BlasScratch::kRecurrentN].floats(n * H) : nullptr;
  float *hidden = s.projection() ? sc.slots[BlasScratch::kHidden].floats(n * H) : nullptr;
  float *c_prev = s.lstm() ? sc.slots[BlasScratch::kCell].floats(n * H) : nullptr;
  if (s.lstm()) std::memcpy(c_prev, c, n * H * sizeof(float));
  const CellKernels &k = kernels();
  const int64_t groups = static_cast<int64_t>(pw.groups.size());
  const float *bias = pw.bias.empty() ? nullptr : pw.bias.data();
  const float *peephole = pw.peephole.empty() ? nullptr : pw.peephole.data();
  const bool relu = s.cell == SEQ4J_CELL_RNN_RELU;
  // One thread for small layers: the fork costs more than it saves below ~64K weights.
  const int threads = pw.panels.size() < (size_t{1} << 16) ? 1 : seq4j::threads();
  float *out_buffer = sc.slots[BlasScratch::kStepOut].floats(threads * n * kPanel);
  if (s.gru()) std::memset(recurrent, 0, n * GH * sizeof(float));

#pragma omp parallel num_threads(threads)
  {
    const int parts = omp_get_num_threads(), part = omp_get_thread_num();
    int64_t b0, b1;
    split_blocks(pw.blocks, part, parts, &b0, &b1);
    float *out = out_buffer + part * n * kPanel;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t u0 = b * kPanel, u1 = std::min(H, u0 + kPanel);
      for (int64_t gi = 0; gi < groups; ++gi) {
        const auto &group = pw.groups[gi];
        k.panel_product(out, pw.panels.data() + pw.panel_offset[b * groups + gi], xh + group.k_begin,
                        K, group.k_end - group.k_begin, n);
        float *target = group.recurrent_only ? recurrent : gates;
        for (int64_t i = 0; i < n; ++i)
          std::memcpy(target + i * GH + group.gate * H + u0, out + i * kPanel, (u1 - u0) * sizeof(float));
      }
      for (int64_t i = 0; i < n; ++i) {
        float *g_row = gates + i * GH;
        if (s.lstm()) {
          float *dst = s.projection() ? hidden + i * H : h + i * O;
          k.lstm_forward(g_row, c + i * H, dst, bias, peephole, c_prev + i * H, H, u0, u1);
        } else if (s.gru()) {
          k.gru_forward(g_row, recurrent_n + i * H, h + i * O, recurrent + i * GH, bias,
                        bias == nullptr ? nullptr : bias + GH, xh + i * K + I, H, u0, u1);
        } else {
          k.rnn_forward(g_row, h + i * O, bias, relu, u0, u1);
        }
      }
    }
    if (s.projection()) {
#pragma omp barrier
      int64_t o0, o1;
      split(O, part, parts, &o0, &o1);
      pw.projection.product(k, h, O, hidden, H, n, o0, o1, false, out);
    }
  }
}

class BlasRecurrent final : public RecurrentBackend {
 public:
  explicit BlasRecurrent(const Sizes &sizes) : s_(sizes) {}

  int64_t workspace_bytes(const int64_t *, int64_t t, int64_t n) override {
    return s_.directions * WorkspaceLayout(s_, t, n).per_direction * int64_t{sizeof(float)};
  }

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
    BlasScratch &sc = blas_scratch();  // step_packed uses other slots than these
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

class BlasStepper final : public RecurrentStepper {
 public:
  explicit BlasStepper(const Sizes &sizes) : s_(sizes), full_(sizes) {}

  void step(const seq4j_rnn_weights *weights, int64_t version, float *h, float *c,
            const float *input, int64_t n) override {
    if (n > kStepPanelMaxBatch) {
      step_by_gemm(weights, h, c, input, n);
      return;
    }
    step_packed(s_, *packed_.get(s_, *weights, 0, version), h, c, input, n);
  }

 private:
  // Larger batches: the full forward's GEMM route over one step, into scratch, then copied back.
  void step_by_gemm(const seq4j_rnn_weights *weights, float *h, float *c, const float *input,
                    int64_t n) {
    BlasScratch &sc = blas_scratch();
    const int64_t O = s_.output, H = s_.hidden;
    float *out = sc.slots[BlasScratch::kStepOut].floats(n * O);
    float *h_n = sc.slots[BlasScratch::kDState].floats(n * O);
    float *c_n = s_.lstm() ? sc.slots[BlasScratch::kDCell].floats(n * H) : nullptr;
    full_.forward(weights, -1, out, h_n, c_n, nullptr, 0, input, h, c, nullptr, 1, n);
    std::memcpy(h, h_n, n * O * sizeof(float));
    if (s_.lstm()) std::memcpy(c, c_n, n * H * sizeof(float));
  }

  Sizes s_;
  BlasRecurrent full_;
  PackedStepWeights packed_;
};

}  // namespace

std::unique_ptr<RecurrentBackend> make_blas_recurrent(const RecurrentSizes &sizes) {
  return std::make_unique<BlasRecurrent>(sizes);
}

std::unique_ptr<RecurrentStepper> make_recurrent_stepper(const RecurrentSizes &sizes) {
  return std::make_unique<BlasStepper>(sizes);
}

// Which copy of the cell kernels runs: 0 the best the CPU has, 1 the baseline, 2 AVX2, 3 AVX-512.
void select_cell_kernels(int32_t isa) {
  const CellKernels *chosen = nullptr;
  switch (isa) {
    case 0: chosen = best_kernels(); break;
    case 1: chosen = &cell_baseline::kernels; break;
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
    case 2:
      __builtin_cpu_init();
      if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        fail(SEQ4J_ERR_UNSUPPORTED, "this CPU has no AVX2 and FMA");
      chosen = &cell_avx2::kernels;
      break;
    case 3:
      if (best_kernels() != &cell_avx512::kernels)
        fail(SEQ4J_ERR_UNSUPPORTED, "this CPU has no AVX-512 (F, VL, DQ, BW)");
      chosen = &cell_avx512::kernels;
      break;
#else
    case 2:
    case 3: fail(SEQ4J_ERR_UNSUPPORTED, "the AVX2 and AVX-512 kernels exist only on x86-64");
#endif
    default:
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "isa must be 0 (best), 1 (baseline), 2 (AVX2) or 3 (AVX-512), got ", isa);
  }
  active_kernels.store(chosen);
}

int32_t selected_cell_kernels() {
  const CellKernels *k = active_kernels.load();
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
  return k == &cell_avx512::kernels ? 3 : k == &cell_avx2::kernels ? 2 : 1;
#else
  (void)k;
  return 1;
#endif
}

}  // namespace seq4j
