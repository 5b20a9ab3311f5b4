// The streaming path of the BLAS backend: one step of a unidirectional layer for a few samples
// (seq4j_rnn_step), on each direction's weights packed for matrix-vector work, with a thread team
// only when the weights are large. The BLAS backend's small-batch inference forward runs the same
// step along the sequence; larger batches take the full forward's GEMM route over one step.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/runtime.h"
#include "rnn/rnn_blas.h"

namespace seq4j {

using Sizes = RecurrentSizes;

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
  std::vector<int64_t> panel_offset;  // per (block, group), in elements of panels or panels_bf16
  bool bf16 = false;
  std::vector<float> panels;
  std::vector<uint16_t> panels_bf16;  // instead of panels when bf16 (cell_kernels.inc's layout)
  PanelMatrix projection;  // W_hr^T
  std::vector<float> bias, peephole;
};

namespace {

// float32 to bfloat16, rounded to nearest even as oneDNN and PyTorch round; NaN stays NaN.
uint16_t to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

std::shared_ptr<StepWeights> pack_step(const Sizes &s, const seq4j_rnn_weights &w,
                                       int64_t direction, bool bf16) {
  auto packed = std::make_shared<StepWeights>();
  packed->bf16 = bf16;
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
      const int64_t depth = group.k_end - group.k_begin;
      offset += (bf16 ? (depth + 1) / 2 * 2 : depth) * kPanel;  // bf16: whole pairs, pad 0
    }
  if (bf16)
    packed->panels_bf16.assign(offset, 0);
  else
    packed->panels.assign(offset, 0.0f);
  for (int64_t b = 0; b < packed->blocks; ++b)
    for (size_t gi = 0; gi < packed->groups.size(); ++gi) {
      const auto &group = packed->groups[gi];
      const int64_t at = packed->panel_offset[b * packed->groups.size() + gi];
      for (int lane = 0; lane < kPanel; ++lane) {
        const int64_t unit = b * kPanel + lane;
        if (unit >= H) break;
        const int64_t row = group.gate * H + unit;
        for (int64_t kk = group.k_begin; kk < group.k_end; ++kk) {
          const float value = kk < I ? w.weight_ih[row * I + kk] : w.weight_hh[row * O + (kk - I)];
          const int64_t local = kk - group.k_begin;
          if (bf16)
            packed->panels_bf16[at + ((local / 2) * kPanel + lane) * 2 + local % 2] = to_bf16(value);
          else
            packed->panels[at + local * kPanel + lane] = value;
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

// Per-thread scratch of the step, so concurrent calls never share buffers.
struct StepScratch {
  enum Slot {
    kInput, kGates, kRecurrent, kRecurrentN, kHidden, kCellPrev, kPanelOut, kGemmOutput,
    kGemmHidden, kGemmCell, kPairs, kPairsShifted, kSlotCount
  };
  AlignedBuffer slots[kSlotCount];
};

StepScratch &step_scratch() {
  thread_local StepScratch instance;
  return instance;
}

void split_blocks(int64_t blocks, int part, int parts, int64_t *begin, int64_t *end) {
  const int64_t per = blocks / parts, extra = blocks % parts;
  *begin = part * per + std::min<int64_t>(part, extra);
  *end = *begin + per + (part < extra ? 1 : 0);
}

}  // namespace

std::shared_ptr<StepWeights> PackedStepWeights::get(const Sizes &s, const seq4j_rnn_weights &w,
                                                    int64_t direction, int64_t version) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry &entry = entries_[direction];
  if (version < 0 || !entry.packed || version != entry.version || entry.packed->bf16 != bf16_) {
    entry.packed = pack_step(s, w, direction, bf16_);
    entry.version = version;
  }
  return entry.packed;
}

void PackedStepWeights::set_storage(int32_t storage) {
  std::lock_guard<std::mutex> lock(mutex_);
  bf16_ = storage == SEQ4J_STEP_WEIGHTS_BF16;
}

void step_packed(const Sizes &s, const StepWeights &pw, float *h, float *c, const float *input,
                 int64_t n) {
  const int64_t I = s.input, O = s.output, H = s.hidden, K = I + O, G = s.gates, GH = G * H;
  StepScratch &sc = step_scratch();
  // [x; h] of every sample, so the threads can overwrite h while others still read it.
  float *xh = sc.slots[StepScratch::kInput].floats(n * K);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(xh + i * K, input + i * I, I * sizeof(float));
    std::memcpy(xh + i * K + I, h + i * O, O * sizeof(float));
  }
  // bf16 weights take bf16 inputs: [x; h] rounded and paired as the panels are (cell_kernels.inc),
  // once from kk = 0 and, for a group that starts at an odd kk (the GRU's n over h when I is odd),
  // once from kk = 1.
  const int64_t ld_pairs = (K + 1) / 2;
  uint32_t *pairs = nullptr, *pairs_shifted = nullptr;
  if (pw.bf16) {
    auto fill = [&](uint32_t *dst, int64_t from) {
      for (int64_t i = 0; i < n; ++i)
        for (int64_t p = 0; p < ld_pairs; ++p) {
          const int64_t kk = from + 2 * p;
          const uint32_t low = kk < K ? to_bf16(xh[i * K + kk]) : 0u;
          const uint32_t high = kk + 1 < K ? to_bf16(xh[i * K + kk + 1]) : 0u;
          dst[i * ld_pairs + p] = low | high << 16;
        }
    };
    pairs = reinterpret_cast<uint32_t *>(sc.slots[StepScratch::kPairs].floats(n * ld_pairs));
    fill(pairs, 0);
    for (const auto &group : pw.groups)
      if (group.k_begin % 2 != 0 && pairs_shifted == nullptr) {
        pairs_shifted =
            reinterpret_cast<uint32_t *>(sc.slots[StepScratch::kPairsShifted].floats(n * ld_pairs));
        fill(pairs_shifted, 1);
      }
  }
  // Per sample: the gate products (G*H), then the GRU's recurrent products (3H, only n used).
  float *gates = sc.slots[StepScratch::kGates].floats(n * GH);
  float *recurrent = s.gru() ? sc.slots[StepScratch::kRecurrent].floats(n * GH) : nullptr;
  float *recurrent_n = s.gru() ? sc.slots[StepScratch::kRecurrentN].floats(n * H) : nullptr;
  float *hidden = s.projection() ? sc.slots[StepScratch::kHidden].floats(n * H) : nullptr;
  float *c_prev = s.lstm() ? sc.slots[StepScratch::kCellPrev].floats(n * H) : nullptr;
  if (s.lstm()) std::memcpy(c_prev, c, n * H * sizeof(float));
  const CellKernels &k = kernels();
  const int64_t groups = static_cast<int64_t>(pw.groups.size());
  const float *bias = pw.bias.empty() ? nullptr : pw.bias.data();
  const float *peephole = pw.peephole.empty() ? nullptr : pw.peephole.data();
  const bool relu = s.cell == SEQ4J_CELL_RNN_RELU;
  // One thread for small layers: the fork costs more than it saves below ~64K weights.
  const size_t weights = pw.bf16 ? pw.panels_bf16.size() : pw.panels.size();
  const int threads = weights < (size_t{1} << 16) ? 1 : seq4j::threads();
  float *out_buffer = sc.slots[StepScratch::kPanelOut].floats(threads * n * kPanel);
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
        const int64_t at = pw.panel_offset[b * groups + gi], depth = group.k_end - group.k_begin;
        if (pw.bf16)
          k.panel_product_bf16(out, pw.panels_bf16.data() + at,
                               group.k_begin % 2 == 0 ? pairs + group.k_begin / 2
                                                      : pairs_shifted + (group.k_begin - 1) / 2,
                               ld_pairs, depth, n);
        else
          k.panel_product(out, pw.panels.data() + at, xh + group.k_begin, K, depth, n);
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

namespace {

class BlasStepper final : public RecurrentStepper {
 public:
  explicit BlasStepper(const Sizes &sizes) : s_(sizes), full_(make_blas_recurrent(sizes)) {}

  void set_step_weights(int32_t storage) override { packed_.set_storage(storage); }

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
    StepScratch &sc = step_scratch();
    const int64_t O = s_.output, H = s_.hidden;
    float *out = sc.slots[StepScratch::kGemmOutput].floats(n * O);
    float *h_n = sc.slots[StepScratch::kGemmHidden].floats(n * O);
    float *c_n = s_.lstm() ? sc.slots[StepScratch::kGemmCell].floats(n * H) : nullptr;
    full_->forward(weights, -1, out, h_n, c_n, nullptr, 0, input, h, c, nullptr, 1, n);
    std::memcpy(h, h_n, n * O * sizeof(float));
    if (s_.lstm()) std::memcpy(c, c_n, n * H * sizeof(float));
  }

  Sizes s_;
  std::unique_ptr<RecurrentBackend> full_;
  PackedStepWeights packed_;
};

}  // namespace

std::unique_ptr<RecurrentStepper> make_recurrent_stepper(const RecurrentSizes &sizes) {
  return std::make_unique<BlasStepper>(sizes);
}

}  // namespace seq4j
