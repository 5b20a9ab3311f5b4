// Recurrent layers on oneDNN's RNN primitives: simple RNN (tanh, relu), LSTM (peepholes,
// projection) and PyTorch's GRU (oneDNN's linear-before-reset GRU), forward and backward through
// time, one layer with one or two directions per handle.
//
// The story of a call:
//  1. The PyTorch-layout parameters are converted to oneDNN's plain layouts (ldigo, ldgo, ldio),
//     with GRU gates reordered from (r, z, n) to oneDNN's (u, r, o); the result is cached while the
//     caller's weights_version stays the same (inference), and redone otherwise (training).
//  2. Samples are grouped by length. With no lengths, or all equal to T, there is one group and the
//     caller's buffers are used directly. Otherwise each group's samples are gathered into dense
//     buffers and run with T = its length, so both directions start and stop at each sample's own
//     ends; outputs past the end are zero.
//  3. A primitive per (kind, T, N) is created once and cached (at most kMaxPrimitives per layer,
//     then the cache starts again); oneDNN picks the weight formats
//     ("any") and the plain weights are reordered into them when they differ.
//  4. Backward runs the same groups, with gradients of the weights accumulated in oneDNN's format,
//     then converted back and added into the caller's PyTorch-layout gradient buffers.
//  5. A group of a small layer is split by samples (batch_parts): each thread gathers its part of
//     the samples into its own scratch and runs their whole recurrence, forward or backward, on a
//     primitive of its own, instead of every thread taking a slice of each step and meeting the
//     others at a barrier per step. The backward's parts keep weight gradients of their own,
//     added in part order at the end; the workspace's header keeps the thread count the forward
//     split for, so that its backward splits the same way.
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/cpu.h"
#include "core/error.h"
#include "core/runtime.h"
#include "core/transpose.h"
#include "dnnl.hpp"
#include "rnn/recurrent.h"

namespace seq4j {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine &cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// Per-thread scratch memory, so concurrent calls on one layer never share buffers.
struct Scratch {
  enum Slot {
    kSrcLayer, kSrcIter, kSrcIterC, kDstLayer, kDstIter, kDstIterC, kDiffDstLayer, kDiffDstIter,
    kDiffDstIterC, kDiffSrcLayer, kDiffSrcIter, kDiffSrcIterC, kZeros,
    kOnednnScratchpad, kReorderedLayer, kReorderedIter, kReorderedProjection,
    kDiffWeightsLayer, kDiffWeightsIter, kDiffWeightsProjection, kDiffPlainLayer,
    kDiffPlainIter, kDiffPlainProjection, kDiffBias, kDiffPeephole, kRecomputedOutput,
    kRecomputedHN, kRecomputedCN, kSlotCount
  };
  AlignedBuffer slots[kSlotCount];
  // the weight gradients of parts 1, 2, ... of a split backward (part 0 writes the slots above)
  struct PartGradients {
    AlignedBuffer layer, iter, projection, bias, peephole;
  };
  std::vector<std::unique_ptr<PartGradients>> part_gradients;
  dnnl::stream stream{cpu_engine()};
};

Scratch &scratch() {
  thread_local Scratch instance;
  return instance;
}

int64_t round_up_64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

// oneDNN's backward overwrites part of its workspace (it reuses the forward's gate buffers), so a
// second backward of the same training forward cannot read it again. The workspace starts with a
// 64-byte header saying which state it is in: a training forward fills it, a backward marks it
// consumed, and a backward that finds it consumed first recomputes the forward into it (from the
// input, initial states and weights the backward is given anyway; its outputs go to scratch, the
// caller's stay as they are). Callers never see the difference, except in the time it takes.
constexpr int64_t kWorkspaceHeader = 64;
constexpr uint64_t kWorkspaceFilled = 0x7365713466696c6cull;    // "seq4fill"
constexpr uint64_t kWorkspaceConsumed = 0x73657134636f6e73ull;  // "seq4cons"

uint64_t workspace_state(const void *workspace) {
  uint64_t state;
  std::memcpy(&state, workspace, sizeof state);
  return state;
}

void set_workspace_state(const void *workspace, uint64_t state) {
  std::memcpy(const_cast<void *>(workspace), &state, sizeof state);
}

// After the state, the thread count the training forward planned its parts for (batch_parts):
// its backward splits the same way, and finds the same workspace layout, whatever the thread
// count is by then.
int64_t workspace_threads(const void *workspace) {
  int64_t threads;
  std::memcpy(&threads, static_cast<const char *>(workspace) + sizeof(uint64_t), sizeof threads);
  return threads;
}

void set_workspace_threads(void *workspace, int64_t threads) {
  std::memcpy(static_cast<char *>(workspace) + sizeof(uint64_t), &threads, sizeof threads);
}

using Sizes = RecurrentSizes;

// The gate of oneDNN's order that holds PyTorch's gate g. GRU: PyTorch r, z, n -> oneDNN u(=z), r, o(=n).
int64_t onednn_gate(const Sizes &s, int64_t g) {
  if (!s.gru()) return g;
  static const int64_t gru_map[3] = {1, 0, 2};
  return gru_map[g];
}

// Parameters in oneDNN's plain layouts for all directions, immutable once built.
struct PackedWeights {
  std::vector<float> layer;       // ldigo (1, D, I, G, H)
  std::vector<float> iter;        // ldigo (1, D, Hout, G, H)
  std::vector<float> bias;        // ldgo  (1, D, Gb, H)
  std::vector<float> peephole;    // ldgo  (1, D, 3, H)
  std::vector<float> projection;  // ldio  (1, D, H, P)
  // Weights reordered into an inference primitive's chosen formats, keyed by argument and format.
  struct Reordered {
    int arg;
    memory::desc desc;
    std::vector<float> storage;
  };
  std::mutex reordered_mutex;
  std::deque<Reordered> reordered;  // a deque: growing it never moves the storage in use
};

// dst[c * dst_stride + r] (+)= src[r * src_stride + c] for r < rows, c < cols, in cache-sized tiles:
// the weights' conversion to oneDNN's layout on every training call, and their gradients' back.
// With AVX-512 the tiles' 16 x 16 blocks go through registers (the scalar loops were a twentieth
// of an LSTM training step at DESIGN.md's shape S).
template <bool Add>
void transpose(float *dst, int64_t dst_stride, const float *src, int64_t src_stride, int64_t rows,
               int64_t cols) {
  constexpr int64_t kTile = 64;
#if SEQ4J_X86_64
  const bool avx512 = active_isa() == Isa::kAvx512;
#endif
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  // one gate block of a small layer (200 x 200 at shape S) takes microseconds: below a quarter
  // million floats the pool's fork and join would cost more than they save
#pragma omp parallel for collapse(2) if (rows * cols >= (1 << 18))
  for (int64_t rt = 0; rt < row_tiles; ++rt)
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t r0 = rt * kTile, c0 = ct * kTile;
      const int64_t r_end = std::min(rows, r0 + kTile), c_end = std::min(cols, c0 + kTile);
#if SEQ4J_X86_64
      if (avx512) {
        transpose_rect_avx512<Add>(dst + c0 * dst_stride + r0, dst_stride, src + r0 * src_stride + c0,
                                   src_stride, r_end - r0, c_end - c0);
        continue;
      }
#endif
      for (int64_t c = c0; c < c_end; ++c)
        for (int64_t r = r0; r < r_end; ++r) {
          if (Add)
            dst[c * dst_stride + r] += src[r * src_stride + c];
          else
            dst[c * dst_stride + r] = src[r * src_stride + c];
        }
    }
}

std::shared_ptr<PackedWeights> pack(const Sizes &s, const seq4j_rnn_weights *weights) {
  auto packed = std::make_shared<PackedWeights>();
  const int64_t D = s.directions, I = s.input, H = s.hidden, O = s.output, G = s.gates;
  packed->layer.resize(D * I * G * H);
  packed->iter.resize(D * O * G * H);
  packed->bias.assign(D * s.bias_gates * H, 0.0f);
  if (s.peephole) packed->peephole.resize(D * 3 * H);
  if (s.projection()) packed->projection.resize(D * H * s.proj);
  for (int64_t d = 0; d < D; ++d) {
    const seq4j_rnn_weights &w = weights[d];
    require_weight("weight_ih", d, w.weight_ih);
    require_weight("weight_hh", d, w.weight_hh);
    // Gate g of weight_ih is an (H, I) block; ldigo holds its transpose with row stride G*H.
    for (int64_t g = 0; g < G; ++g) {
      const int64_t og = onednn_gate(s, g);
      transpose<false>(packed->layer.data() + d * I * G * H + og * H, G * H,
                       w.weight_ih + g * H * I, I, H, I);
      transpose<false>(packed->iter.data() + d * O * G * H + og * H, G * H,
                       w.weight_hh + g * H * O, O, H, O);
    }
    if (s.bias) {
      require_weight("bias_ih", d, w.bias_ih);
      require_weight("bias_hh", d, w.bias_hh);
      float *b = packed->bias.data() + d * s.bias_gates * H;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t og = onednn_gate(s, g);
        const bool new_gate_of_gru = s.gru() && g == 2;
        for (int64_t h = 0; h < H; ++h) {
          if (new_gate_of_gru) {
            b[2 * H + h] = w.bias_ih[g * H + h];  // B_o: input part of n
            b[3 * H + h] = w.bias_hh[g * H + h];  // B_u': recurrent part, inside r * (...)
          } else {
            b[og * H + h] = w.bias_ih[g * H + h] + w.bias_hh[g * H + h];
          }
        }
      }
    }
    if (s.peephole) {
      require_weight("weight_ci", d, w.weight_ci);
      require_weight("weight_cf", d, w.weight_cf);
      require_weight("weight_co", d, w.weight_co);
      float *p = packed->peephole.data() + d * 3 * H;
      std::memcpy(p, w.weight_ci, H * sizeof(float));
      std::memcpy(p + H, w.weight_cf, H * sizeof(float));
      std::memcpy(p + 2 * H, w.weight_co, H * sizeof(float));
    }
    if (s.projection()) {
      require_weight("weight_hr", d, w.weight_hr);
      for (int64_t p = 0; p < s.proj; ++p)
        for (int64_t h = 0; h < H; ++h)
          packed->projection[(d * H + h) * s.proj + p] = w.weight_hr[p * H + h];
    }
  }
  return packed;
}

// Adds gradients held in oneDNN's plain layouts into the caller's PyTorch-layout buffers.
void unpack_add_gradients(const Sizes &s, const seq4j_rnn_weights *grads, const float *layer,
                          const float *iter, const float *bias, const float *peephole,
                          const float *projection) {
  const int64_t D = s.directions, I = s.input, H = s.hidden, O = s.output, G = s.gates;
  for (int64_t d = 0; d < D; ++d) {
    const seq4j_rnn_weights &w = grads[d];
    require_weight("weight_ih (gradient)", d, w.weight_ih);
    require_weight("weight_hh (gradient)", d, w.weight_hh);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t og = onednn_gate(s, g);
      transpose<true>(w.weight_ih + g * H * I, I, layer + d * I * G * H + og * H, G * H, I, H);
      transpose<true>(w.weight_hh + g * H * O, O, iter + d * O * G * H + og * H, G * H, O, H);
    }
    if (s.bias) {
      require_weight("bias_ih (gradient)", d, w.bias_ih);
      require_weight("bias_hh (gradient)", d, w.bias_hh);
      const float *b = bias + d * s.bias_gates * H;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t og = onednn_gate(s, g);
        const bool new_gate_of_gru = s.gru() && g == 2;
        for (int64_t h = 0; h < H; ++h) {
          if (new_gate_of_gru) {
            w.bias_ih[g * H + h] += b[2 * H + h];
            w.bias_hh[g * H + h] += b[3 * H + h];
          } else {
            w.bias_ih[g * H + h] += b[og * H + h];
            w.bias_hh[g * H + h] += b[og * H + h];
          }
        }
      }
    }
    if (s.peephole) {
      require_weight("weight_ci (gradient)", d, w.weight_ci);
      require_weight("weight_cf (gradient)", d, w.weight_cf);
      require_weight("weight_co (gradient)", d, w.weight_co);
      const float *p = peephole + d * 3 * H;
      for (int64_t h = 0; h < H; ++h) {
        w.weight_ci[h] += p[h];
        w.weight_cf[h] += p[H + h];
        w.weight_co[h] += p[2 * H + h];
      }
    }
    if (s.projection()) {
      require_weight("weight_hr (gradient)", d, w.weight_hr);
      for (int64_t p = 0; p < s.proj; ++p)
        for (int64_t h = 0; h < H; ++h)
          w.weight_hr[p * H + h] += projection[(d * H + h) * s.proj + p];
    }
  }
}

enum class Kind { kInference, kTraining, kBackward };

struct Primitive {
  dnnl::primitive_desc pd;
  dnnl::primitive primitive;
};

// A group of samples of equal length.
struct Group {
  int64_t length;
  std::vector<int64_t> samples;
};

class Layer {
 public:
  explicit Layer(const Sizes &sizes) : s_(sizes) {}

  const Sizes &sizes() const { return s_; }

  // version >= 0: reuse the cached conversion while the version matches; kFresh: convert now;
  // kLatest: reuse whatever was converted last (the backward of a training forward).
  static constexpr int64_t kFresh = -1, kLatest = -2;
  std::shared_ptr<PackedWeights> weights(const seq4j_rnn_weights *weights, int64_t version) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (version == kLatest && packed_) return packed_;
    if (version < 0 || !packed_ || version != packed_version_) {
      packed_ = pack(s_, weights);
      packed_version_ = version;
    }
    return packed_;
  }

  // The forward (or backward) primitive for T steps and N samples, created once.
  std::shared_ptr<Primitive> primitive(Kind kind, int64_t t, int64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    return primitive_locked(kind, t, n);
  }

 private:
  std::shared_ptr<Primitive> primitive_locked(Kind kind, int64_t t, int64_t n) {
    auto key = std::make_tuple(static_cast<int>(kind), t, n);
    auto found = primitives_.find(key);
    if (found != primitives_.end()) return found->second;
    auto created = std::make_shared<Primitive>();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const int64_t D = s_.directions, H = s_.hidden, O = s_.output;
    const auto direction = D == 2 ? dnnl::rnn_direction::bidirectional_concat
                                  : dnnl::rnn_direction::unidirectional_left2right;
    memory::desc src_layer({t, n, s_.input}, dt::f32, tag::tnc);
    memory::desc src_iter({1, D, n, O}, dt::f32, tag::ldnc);
    memory::desc src_iter_c({1, D, n, H}, dt::f32, tag::ldnc);
    memory::desc weights_layer({1, D, s_.input, s_.gates, H}, dt::f32, tag::any);
    memory::desc weights_iter({1, D, O, s_.gates, H}, dt::f32, tag::any);
    memory::desc weights_peephole =
        s_.peephole ? memory::desc({1, D, 3, H}, dt::f32, tag::ldgo) : memory::desc();
    memory::desc weights_projection =
        s_.projection() ? memory::desc({1, D, H, s_.proj}, dt::f32, tag::any) : memory::desc();
    memory::desc bias({1, D, s_.bias_gates, H}, dt::f32, tag::ldgo);
    memory::desc dst_layer({t, n, D * O}, dt::f32, tag::tnc);
    memory::desc dst_iter({1, D, n, O}, dt::f32, tag::ldnc);
    memory::desc dst_iter_c({1, D, n, H}, dt::f32, tag::ldnc);
    auto &engine = cpu_engine();
    const auto activation = s_.cell == SEQ4J_CELL_RNN_RELU ? dnnl::algorithm::eltwise_relu
                                                           : dnnl::algorithm::eltwise_tanh;
    if (kind != Kind::kBackward) {
      const auto prop = kind == Kind::kTraining ? dnnl::prop_kind::forward_training
                                                : dnnl::prop_kind::forward_inference;
      if (s_.lstm()) {
        dnnl::lstm_forward::primitive_desc pd(
            engine, prop, direction, src_layer, src_iter, src_iter_c, weights_layer, weights_iter,
            weights_peephole, weights_projection, bias, dst_layer, dst_iter, dst_iter_c, attr);
        created->pd = pd;
        created->primitive = dnnl::lstm_forward(pd);
      } else if (s_.gru()) {
        dnnl::lbr_gru_forward::primitive_desc pd(engine, prop, direction, src_layer,
                                                            src_iter, weights_layer, weights_iter,
                                                            bias, dst_layer, dst_iter, attr);
        created->pd = pd;
        created->primitive = dnnl::lbr_gru_forward(pd);
      } else {
        dnnl::vanilla_rnn_forward::primitive_desc pd(
            engine, prop, activation, direction, src_layer, src_iter, weights_layer, weights_iter,
            bias, dst_layer, dst_iter, attr);
        created->pd = pd;
        created->primitive = dnnl::vanilla_rnn_forward(pd);
      }
    } else {
      auto hint = primitive_locked(Kind::kTraining, t, n);
      const auto prop = dnnl::prop_kind::backward;
      memory::desc diff_weights_layer({1, D, s_.input, s_.gates, H}, dt::f32, tag::any);
      memory::desc diff_weights_iter({1, D, O, s_.gates, H}, dt::f32, tag::any);
      memory::desc diff_weights_projection =
          s_.projection() ? memory::desc({1, D, H, s_.proj}, dt::f32, tag::any) : memory::desc();
      if (s_.lstm()) {
        dnnl::lstm_backward::primitive_desc pd(
            engine, prop, direction, src_layer, src_iter, src_iter_c, weights_layer, weights_iter,
            weights_peephole, weights_projection, bias, dst_layer, dst_iter, dst_iter_c, src_layer,
            src_iter, src_iter_c, diff_weights_layer, diff_weights_iter, weights_peephole,
            diff_weights_projection, bias, dst_layer, dst_iter, dst_iter_c,
            dnnl::lstm_forward::primitive_desc(hint->pd.get()), attr);
        created->pd = pd;
        created->primitive = dnnl::lstm_backward(pd);
      } else if (s_.gru()) {
        dnnl::lbr_gru_backward::primitive_desc pd(
            engine, prop, direction, src_layer, src_iter, weights_layer, weights_iter, bias,
            dst_layer, dst_iter, src_layer, src_iter, diff_weights_layer, diff_weights_iter, bias,
            dst_layer, dst_iter, dnnl::lbr_gru_forward::primitive_desc(hint->pd.get()), attr);
        created->pd = pd;
        created->primitive = dnnl::lbr_gru_backward(pd);
      } else {
        dnnl::vanilla_rnn_backward::primitive_desc pd(
            engine, prop, activation, direction, src_layer, src_iter, weights_layer, weights_iter,
            bias, dst_layer, dst_iter, src_layer, src_iter, diff_weights_layer, diff_weights_iter,
            bias, dst_layer, dst_iter, dnnl::vanilla_rnn_forward::primitive_desc(hint->pd.get()),
            attr);
        created->pd = pd;
        created->primitive = dnnl::vanilla_rnn_backward(pd);
      }
    }
    // a program that calls with ever new lengths or batches must not grow the cache without
    // bound: past kMaxPrimitives it starts again (calls in flight keep theirs; oneDNN's own
    // primitive cache makes the re-creation of a recent one cheap)
    if (primitives_.size() >= kMaxPrimitives) primitives_.clear();
    primitives_.emplace(key, created);
    return created;
  }

  static constexpr size_t kMaxPrimitives = 128;

  Sizes s_;
  std::mutex mutex_;
  std::shared_ptr<PackedWeights> packed_;
  int64_t packed_version_ = -1;
  std::map<std::tuple<int, int64_t, int64_t>, std::shared_ptr<Primitive>> primitives_;
};

std::vector<Group> groups_of(const int64_t *lengths, int64_t t, int64_t n) {
  if (lengths == nullptr) return {Group{t, {}}};
  check_lengths(lengths, t, n);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<Group> groups;
  for (int64_t sample : order) {
    if (groups.empty() || groups.back().length != lengths[sample])
      groups.push_back(Group{lengths[sample], {}});
    groups.back().samples.push_back(sample);
  }
  // One group covering every sample at full length: no gathering needed.
  if (groups.size() == 1 && groups[0].length == t) groups[0].samples.clear();
  return groups;
}

bool direct(const Group &group) { return group.samples.empty(); }
int64_t group_size(const Group &group, int64_t n) { return direct(group) ? n : int64_t(group.samples.size()); }

// Copies rows [t < steps] of (T, N, C) for the group's samples into a dense (steps, n_g, C).
void gather_sequence(float *dst, const float *src, const Group &g, int64_t steps, int64_t n,
                     int64_t c) {
  const int64_t ng = g.samples.size();
#pragma omp parallel for collapse(2) if (steps * ng * c > (1 << 15))
  for (int64_t t = 0; t < steps; ++t)
    for (int64_t j = 0; j < ng; ++j)
      std::memcpy(dst + (t * ng + j) * c, src + (t * n + g.samples[j]) * c, c * sizeof(float));
}

// The reverse of gather_sequence, zero-filling the steps past the group's length.
void scatter_sequence(float *dst, const float *src, const Group &g, int64_t steps, int64_t t_total,
                      int64_t n, int64_t c) {
  const int64_t ng = g.samples.size();
#pragma omp parallel for collapse(2) if (t_total * ng * c > (1 << 15))
  for (int64_t t = 0; t < t_total; ++t)
    for (int64_t j = 0; j < ng; ++j) {
      float *row = dst + (t * n + g.samples[j]) * c;
      if (t < steps)
        std::memcpy(row, src + (t * ng + j) * c, c * sizeof(float));
      else
        std::memset(row, 0, c * sizeof(float));
    }
}

// States (D, N, C) <-> (D, n_g, C).
void gather_state(float *dst, const float *src, const Group &g, int64_t d, int64_t n, int64_t c) {
  const int64_t ng = g.samples.size();
  for (int64_t k = 0; k < d; ++k)
    for (int64_t j = 0; j < ng; ++j)
      std::memcpy(dst + (k * ng + j) * c, src + (k * n + g.samples[j]) * c, c * sizeof(float));
}

void scatter_state(float *dst, const float *src, const Group &g, int64_t d, int64_t n, int64_t c) {
  const int64_t ng = g.samples.size();
  for (int64_t k = 0; k < d; ++k)
    for (int64_t j = 0; j < ng; ++j)
      std::memcpy(dst + (k * n + g.samples[j]) * c, src + (k * ng + j) * c, c * sizeof(float));
}

float *zeros(Scratch &scratch, int64_t count) {
  float *z = scratch.slots[Scratch::kZeros].floats(count);
  std::memset(z, 0, count * sizeof(float));
  return z;
}

memory wrap(const memory::desc &desc, const void *data) {
  return memory(desc, cpu_engine(), const_cast<void *>(data));
}

memory query(const dnnl::primitive_desc &pd, int arg, const void *data) {
  return wrap(pd.query_md(dnnl::query::exec_arg_md, arg), data);
}

// The plain weights in the format the primitive chose, reordered into scratch when they differ.
memory weights_for(const dnnl::primitive_desc &pd, int arg, const memory::desc &plain,
                   const float *data, AlignedBuffer &buffer, dnnl::stream &stream) {
  memory::desc wanted = pd.query_md(dnnl::query::exec_arg_md, arg);
  if (wanted == plain) return wrap(plain, data);
  memory in = wrap(plain, data);
  memory out(wanted, cpu_engine(), buffer.bytes(wanted.get_size()));
  dnnl::reorder(in, out).execute(stream, in, out);
  stream.wait();
  return out;
}

// Inference reuses the reordered weights for as long as the packed weights live.
memory cached_weights_for(PackedWeights &packed, const dnnl::primitive_desc &pd, int arg,
                          const memory::desc &plain, const float *data, dnnl::stream &stream) {
  memory::desc wanted = pd.query_md(dnnl::query::exec_arg_md, arg);
  if (wanted == plain) return wrap(plain, data);
  std::lock_guard<std::mutex> lock(packed.reordered_mutex);
  for (auto &entry : packed.reordered)
    if (entry.arg == arg && entry.desc == wanted) return wrap(wanted, entry.storage.data());
  packed.reordered.push_back({arg, wanted, std::vector<float>(wanted.get_size() / sizeof(float) + 1)});
  memory in = wrap(plain, data);
  memory out(wanted, cpu_engine(), packed.reordered.back().storage.data());
  dnnl::reorder(in, out).execute(stream, in, out);
  stream.wait();
  return out;
}

struct PlainDescs {
  memory::desc layer, iter, bias, peephole, projection;
  explicit PlainDescs(const Sizes &s) {
    const int64_t D = s.directions;
    layer = memory::desc({1, D, s.input, s.gates, s.hidden}, dt::f32, tag::ldigo);
    iter = memory::desc({1, D, s.output, s.gates, s.hidden}, dt::f32, tag::ldigo);
    bias = memory::desc({1, D, s.bias_gates, s.hidden}, dt::f32, tag::ldgo);
    if (s.peephole) peephole = memory::desc({1, D, 3, s.hidden}, dt::f32, tag::ldgo);
    if (s.projection()) projection = memory::desc({1, D, s.hidden, s.proj}, dt::f32, tag::ldio);
  }
};

// A core's L2 cache in bytes (1 MiB where the system does not say).
int64_t l2_cache_bytes() {
  static const int64_t bytes = [] {
    long size = -1;
#ifdef _SC_LEVEL2_CACHE_SIZE
    size = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return size > 0 ? int64_t{size} : int64_t{1} << 20;
  }();
  return bytes;
}

// Into how many parts of consecutive samples a group of n samples is split for `threads` threads,
// one per thread, each gathered into its thread's scratch and run alone on a primitive of its
// own; 1: not split (the primitive's threads share every step, meeting at a barrier per step).
// Split only while the layer's weights fit in three quarters of a core's L2 cache, so that each
// thread's copy of them stays there, and every thread gets at least kMinSplitSamples samples.
// Measured on 2 cores (AVX-512, 2 MiB L2; T = 35, input = hidden, medians of 200-1000 calls),
// split against shared steps: inference H = 200, N = 20 0.85× (0.83× on views in place, before
// the parts were gathered; N = 16 0.83×, N = 64 0.89×, H = 128 with N = 128 0.83× then); training
// H = 200, N = 20 0.95×, N = 16 0.93×, N = 64 0.94×, H = 128 with N = 32 0.87×. One thread on
// half the batch against two on all of it, the split's cost without its pool: H = 200, N = 8
// 1.06× (hence 8 samples); H = 256 (2 MiB of weights), N = 20 0.98×; H = 384 1.15×; H = 512
// 1.21×; DESIGN.md's M training (T = 50, N = 64, H = 512) 1.02×. The parts are gathered: on views
// of the caller's buffers (strided memory descriptors) oneDNN's training primitives ran 1.4×
// slower than on dense ones (its inference ran as fast).
constexpr int64_t kMinSplitSamples = 8;

int64_t batch_parts(const Sizes &s, int64_t n, int64_t threads) {
  if (threads < 2 || n < threads * kMinSplitSamples) return 1;
  const int64_t weights = s.directions * s.gates * s.hidden * (s.input + s.output) +
                          (s.projection() ? s.directions * s.hidden * s.proj : 0);
  if (weights * int64_t{sizeof(float)} > l2_cache_bytes() / 4 * 3) return 1;
  return threads;
}

// Part p of `parts` of group g (of n samples in all): its samples, always gathered.
Group part_of(const Group &g, int64_t n, int64_t p, int64_t parts) {
  const int64_t size = group_size(g, n);
  const int64_t first = size * p / parts, last = size * (p + 1) / parts;
  Group part{g.length, {}};
  for (int64_t i = first; i < last; ++i) part.samples.push_back(direct(g) ? i : g.samples[i]);
  return part;
}

// The runs of one call, in order: each group whole, or its parts; part = its index in its group.
struct Run {
  Group group;
  int64_t part, parts;
};

std::vector<Run> runs_of(const Sizes &s, const std::vector<Group> &groups, int64_t n,
                         int64_t threads) {
  std::vector<Run> runs;
  for (const Group &g : groups) {
    const int64_t parts = batch_parts(s, group_size(g, n), threads);
    if (parts == 1) {
      runs.push_back({g, 0, 1});
    } else {
      for (int64_t p = 0; p < parts; ++p) runs.push_back({part_of(g, n, p, parts), p, parts});
    }
  }
  return runs;
}

// f(run, scratch) for every run, in order: a whole group on the calling thread (its primitive's
// threads share it), the parts of a split group side by side, one per thread of a parallel region
// of at most seq4j's thread count (a thread takes several when there are fewer, as when a
// backward was planned for more threads than there are now). The first exception of any part is
// rethrown once all have finished.
template <class F>
void for_each_run(const std::vector<Run> &runs, F &&f) {
  for (size_t r = 0; r < runs.size();) {
    const int64_t parts = runs[r].parts;
    if (parts == 1) {
      f(r, scratch());
      ++r;
      continue;
    }
    std::vector<std::exception_ptr> errors(parts);
    const int team = static_cast<int>(std::min<int64_t>(parts, std::max(1, seq4j::threads())));
#pragma omp parallel num_threads(team)
    for (int64_t p = omp_get_thread_num(); p < parts; p += omp_get_num_threads()) {
      try {
        f(r + p, scratch());
      } catch (...) {
        errors[p] = std::current_exception();
      }
    }
    for (auto &error : errors)
      if (error) std::rethrow_exception(error);
    r += parts;
  }
}

// Where each run's training primitive finds its workspace (after the header), and the bytes in
// all.
struct WorkspacePlan {
  std::vector<int64_t> offsets;
  int64_t bytes = kWorkspaceHeader;
};

WorkspacePlan workspace_plan(Layer &layer, const std::vector<Run> &runs, int64_t n) {
  WorkspacePlan plan;
  for (const Run &run : runs) {
    auto prim = layer.primitive(Kind::kTraining, run.group.length, group_size(run.group, n));
    plan.offsets.push_back(plan.bytes);
    plan.bytes +=
        round_up_64(prim->pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE).get_size());
  }
  return plan;
}

int64_t workspace_bytes_for(Layer &layer, const std::vector<Group> &groups, int64_t n,
                            int64_t threads) {
  return workspace_plan(layer, runs_of(layer.sizes(), groups, n, threads), n).bytes;
}

// threads: what batch_parts plans for (seq4j::threads(), or the workspace's when a backward
// recomputes its forward).
void run_forward(Layer &layer, const seq4j_rnn_weights *weights, int64_t version, float *output,
                 float *h_n, float *c_n, void *workspace, int64_t workspace_bytes,
                 const float *input, const float *h0, const float *c0, const int64_t *lengths,
                 int64_t t, int64_t n, int64_t threads) {
  const Sizes &s = layer.sizes();
  const bool training = workspace != nullptr;
  const std::vector<Run> runs = runs_of(s, groups_of(lengths, t, n), n, threads);
  WorkspacePlan plan;
  if (training) {
    plan = workspace_plan(layer, runs, n);
    if (workspace_bytes < plan.bytes)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", plan.bytes, ", got ",
           workspace_bytes);
  }
  auto packed = layer.weights(weights, version);
  const PlainDescs plain(s);
  const int64_t D = s.directions, H = s.hidden, O = s.output;
  for_each_run(runs, [&](size_t r, Scratch &sc) {
    const Group &g = runs[r].group;
    const int64_t ng = group_size(g, n), tg = g.length;
    auto prim = layer.primitive(training ? Kind::kTraining : Kind::kInference, tg, ng);
    const auto &pd = prim->pd;
    const float *src_layer = input;
    const float *src_iter = h0;
    const float *src_iter_c = c0;
    float *dst_layer = output;
    float *dst_iter = h_n;
    float *dst_iter_c = c_n;
    if (!direct(g)) {
      float *buffer = sc.slots[Scratch::kSrcLayer].floats(tg * ng * s.input);
      gather_sequence(buffer, input, g, tg, n, s.input);
      src_layer = buffer;
      if (h0 != nullptr) {
        float *state = sc.slots[Scratch::kSrcIter].floats(D * ng * O);
        gather_state(state, h0, g, D, n, O);
        src_iter = state;
      }
      if (c0 != nullptr && s.lstm()) {
        float *state = sc.slots[Scratch::kSrcIterC].floats(D * ng * H);
        gather_state(state, c0, g, D, n, H);
        src_iter_c = state;
      }
      dst_layer = sc.slots[Scratch::kDstLayer].floats(tg * ng * D * O);
      dst_iter = sc.slots[Scratch::kDstIter].floats(D * ng * O);
      dst_iter_c = sc.slots[Scratch::kDstIterC].floats(D * ng * H);
    }
    // Missing initial states are zeros; unwanted final states go to scratch.
    const int64_t state_floats = D * ng * std::max(O, H);
    float *zero_state = (src_iter == nullptr || (s.lstm() && src_iter_c == nullptr))
                            ? zeros(sc, state_floats)
                            : nullptr;
    if (src_iter == nullptr) src_iter = zero_state;
    if (s.lstm() && src_iter_c == nullptr) src_iter_c = zero_state;
    if (dst_iter == nullptr) dst_iter = sc.slots[Scratch::kDstIter].floats(D * ng * O);
    if (s.lstm() && dst_iter_c == nullptr) dst_iter_c = sc.slots[Scratch::kDstIterC].floats(D * ng * H);

    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC_LAYER, query(pd, DNNL_ARG_SRC_LAYER, src_layer));
    args.emplace(DNNL_ARG_SRC_ITER, query(pd, DNNL_ARG_SRC_ITER, src_iter));
    args.emplace(DNNL_ARG_DST_LAYER, query(pd, DNNL_ARG_DST_LAYER, dst_layer));
    args.emplace(DNNL_ARG_DST_ITER, query(pd, DNNL_ARG_DST_ITER, dst_iter));
    if (s.lstm()) {
      args.emplace(DNNL_ARG_SRC_ITER_C, query(pd, DNNL_ARG_SRC_ITER_C, src_iter_c));
      args.emplace(DNNL_ARG_DST_ITER_C, query(pd, DNNL_ARG_DST_ITER_C, dst_iter_c));
    }
    if (training) {
      args.emplace(DNNL_ARG_WEIGHTS_LAYER,
                   weights_for(pd, DNNL_ARG_WEIGHTS_LAYER, plain.layer, packed->layer.data(),
                               sc.slots[Scratch::kReorderedLayer], sc.stream));
      args.emplace(DNNL_ARG_WEIGHTS_ITER,
                   weights_for(pd, DNNL_ARG_WEIGHTS_ITER, plain.iter, packed->iter.data(),
                               sc.slots[Scratch::kReorderedIter], sc.stream));
      auto ws_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE);
      args.emplace(DNNL_ARG_WORKSPACE, wrap(ws_desc, static_cast<char *>(workspace) + plan.offsets[r]));
    } else {
      args.emplace(DNNL_ARG_WEIGHTS_LAYER,
                   cached_weights_for(*packed, pd, DNNL_ARG_WEIGHTS_LAYER, plain.layer,
                                      packed->layer.data(), sc.stream));
      args.emplace(DNNL_ARG_WEIGHTS_ITER,
                   cached_weights_for(*packed, pd, DNNL_ARG_WEIGHTS_ITER, plain.iter,
                                      packed->iter.data(), sc.stream));
    }
    if (s.projection())
      args.emplace(DNNL_ARG_WEIGHTS_PROJECTION,
                   weights_for(pd, DNNL_ARG_WEIGHTS_PROJECTION, plain.projection,
                               packed->projection.data(), sc.slots[Scratch::kReorderedProjection],
                               sc.stream));
    args.emplace(DNNL_ARG_BIAS, wrap(plain.bias, packed->bias.data()));
    if (s.peephole) args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, wrap(plain.peephole, packed->peephole.data()));
    auto pad = pd.scratchpad_desc();
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 wrap(pad, sc.slots[Scratch::kOnednnScratchpad].bytes(std::max<int64_t>(pad.get_size(), 1))));
    prim->primitive.execute(sc.stream, args);
    sc.stream.wait();
    if (!direct(g)) {
      scatter_sequence(output, dst_layer, g, tg, t, n, D * O);
      if (h_n != nullptr) scatter_state(h_n, dst_iter, g, D, n, O);
      if (c_n != nullptr && s.lstm()) scatter_state(c_n, dst_iter_c, g, D, n, H);
    }
  });
  if (training) {
    set_workspace_threads(workspace, threads);
    set_workspace_state(workspace, kWorkspaceFilled);
  }
}

// Where a backward run accumulates the weight gradients, in oneDNN's formats.
struct DiffWeights {
  float *layer, *iter, *projection, *bias, *peephole;
};

void run_backward(Layer &layer, const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                  float *grad_input, float *grad_h0, float *grad_c0, const float *grad_output,
                  const float *grad_h_n, const float *grad_c_n, const void *workspace,
                  int64_t workspace_bytes, const float *input, const float *h0, const float *c0,
                  const float *output, const float *h_n, const float *c_n, const int64_t *lengths,
                  int64_t t, int64_t n) {
  const Sizes &s = layer.sizes();
  if (workspace == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace is NULL");
  if (grads == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "grads is NULL");
  if (workspace_bytes < kWorkspaceHeader)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", kWorkspaceHeader, ", got ",
         workspace_bytes);
  const uint64_t state = workspace_state(workspace);
  const int64_t threads = workspace_threads(workspace);
  if ((state != kWorkspaceFilled && state != kWorkspaceConsumed) || threads < 1 ||
      threads > (int64_t{1} << 20))
    fail(SEQ4J_ERR_INVALID_ARGUMENT,
         "workspace: not filled by a training forward of this layer (its header is unset)");
  const std::vector<Run> runs = runs_of(s, groups_of(lengths, t, n), n, threads);
  const WorkspacePlan plan = workspace_plan(layer, runs, n);
  if (workspace_bytes < plan.bytes)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", plan.bytes, ", got ",
         workspace_bytes);
  if (state == kWorkspaceConsumed) {
    // A second backward of this forward: fill the workspace again, with the weights the forward
    // converted (the ones this backward uses) and its runs, writing the outputs it recomputes to
    // scratch.
    Scratch &sc = scratch();
    const int64_t D = s.directions, H = s.hidden, O = s.output;
    float *recomputed_output = sc.slots[Scratch::kRecomputedOutput].floats(t * n * D * O);
    float *recomputed_h_n = sc.slots[Scratch::kRecomputedHN].floats(D * n * O);
    float *recomputed_c_n = s.lstm() ? sc.slots[Scratch::kRecomputedCN].floats(D * n * H) : nullptr;
    run_forward(layer, weights, Layer::kLatest, recomputed_output, recomputed_h_n, recomputed_c_n,
                const_cast<void *>(workspace), workspace_bytes, input, h0, c0, lengths, t, n,
                threads);
  }
  // From here on oneDNN overwrites part of the workspace.
  set_workspace_state(workspace, kWorkspaceConsumed);
  auto packed = layer.weights(weights, Layer::kLatest);
  const PlainDescs plain(s);
  Scratch &caller = scratch();
  const int64_t D = s.directions, H = s.hidden, O = s.output;
  // Weight gradients accumulate over the runs in oneDNN's formats, starting from zero: parts 1,
  // 2, ... of split groups into gradients of their own, added to part 0's after the last run, in
  // part order (so a call gives the same bits every time).
  int64_t parts_max = 1;
  for (const Run &run : runs) parts_max = std::max(parts_max, run.parts);
  const auto &first_pd =
      layer.primitive(Kind::kBackward, runs[0].group.length, group_size(runs[0].group, n))->pd;
  const memory::desc diff_layer_desc =
      first_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER);
  const memory::desc diff_iter_desc =
      first_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER);
  const memory::desc diff_proj_desc =
      s.projection() ? first_pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_PROJECTION)
                     : memory::desc();
  const int64_t bias_floats = D * s.bias_gates * H, peephole_floats = D * 3 * H;
  const int64_t layer_floats = diff_layer_desc.get_size() / 4,
                iter_floats = diff_iter_desc.get_size() / 4,
                projection_floats = s.projection() ? diff_proj_desc.get_size() / 4 : 0;
  auto sized = [](AlignedBuffer &buffer, int64_t floats) {
    return buffer.floats(std::max<int64_t>(floats, 1));
  };
  auto diff_weights = [&](AlignedBuffer &layer_buffer, AlignedBuffer &iter_buffer,
                          AlignedBuffer &projection_buffer, AlignedBuffer &bias_buffer,
                          AlignedBuffer &peephole_buffer) {
    return DiffWeights{sized(layer_buffer, layer_floats), sized(iter_buffer, iter_floats),
                       s.projection() ? sized(projection_buffer, projection_floats) : nullptr,
                       sized(bias_buffer, bias_floats), sized(peephole_buffer, peephole_floats)};
  };
  // each part's gradients are zeroed by the thread of its first run, beside the other parts'
  std::vector<char> zeroed(parts_max, 0);
  auto zero = [&](const DiffWeights &dw) {
    std::memset(dw.layer, 0, layer_floats * sizeof(float));
    std::memset(dw.iter, 0, iter_floats * sizeof(float));
    if (s.projection()) std::memset(dw.projection, 0, projection_floats * sizeof(float));
    std::memset(dw.bias, 0, bias_floats * sizeof(float));
    std::memset(dw.peephole, 0, peephole_floats * sizeof(float));
  };
  std::vector<DiffWeights> diffs;
  diffs.push_back(diff_weights(caller.slots[Scratch::kDiffWeightsLayer],
                               caller.slots[Scratch::kDiffWeightsIter],
                               caller.slots[Scratch::kDiffWeightsProjection],
                               caller.slots[Scratch::kDiffBias], caller.slots[Scratch::kDiffPeephole]));
  while (static_cast<int64_t>(caller.part_gradients.size()) < parts_max - 1)
    caller.part_gradients.push_back(std::make_unique<Scratch::PartGradients>());
  for (int64_t p = 1; p < parts_max; ++p) {
    auto &part = *caller.part_gradients[p - 1];
    diffs.push_back(diff_weights(part.layer, part.iter, part.projection, part.bias, part.peephole));
  }
  char *workspace_bytes_of_forward = static_cast<char *>(const_cast<void *>(workspace));
  for_each_run(runs, [&](size_t r, Scratch &sc) {
    const Group &g = runs[r].group;
    const DiffWeights &dw = diffs[runs[r].part];
    if (!zeroed[runs[r].part]) {  // the parts of one group run on threads of their own
      zero(dw);
      zeroed[runs[r].part] = 1;
    }
    const int64_t ng = group_size(g, n), tg = g.length;
    auto prim = layer.primitive(Kind::kBackward, tg, ng);
    const auto &pd = prim->pd;
    if (pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER) != diff_layer_desc ||
        pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER) != diff_iter_desc)
      fail(SEQ4J_ERR_INTERNAL, "oneDNN chose different weight-gradient formats for two groups");
    const float *src_layer = input, *src_iter = h0, *src_iter_c = c0;
    const float *dst_layer = output, *dst_iter = h_n, *dst_iter_c = c_n;
    const float *diff_dst_layer = grad_output, *diff_dst_iter = grad_h_n, *diff_dst_iter_c = grad_c_n;
    float *diff_src_layer = grad_input, *diff_src_iter = grad_h0, *diff_src_iter_c = grad_c0;
    if (!direct(g)) {
      float *b;
      b = sc.slots[Scratch::kSrcLayer].floats(tg * ng * s.input);
      gather_sequence(b, input, g, tg, n, s.input);
      src_layer = b;
      b = sc.slots[Scratch::kDstLayer].floats(tg * ng * D * O);
      gather_sequence(b, output, g, tg, n, D * O);
      dst_layer = b;
      b = sc.slots[Scratch::kDiffDstLayer].floats(tg * ng * D * O);
      gather_sequence(b, grad_output, g, tg, n, D * O);
      diff_dst_layer = b;
      auto gather_optional = [&](const float *src, Scratch::Slot slot, int64_t c) -> const float * {
        if (src == nullptr) return nullptr;
        float *state = sc.slots[slot].floats(D * ng * c);
        gather_state(state, src, g, D, n, c);
        return state;
      };
      src_iter = gather_optional(h0, Scratch::kSrcIter, O);
      dst_iter = gather_optional(h_n, Scratch::kDstIter, O);
      diff_dst_iter = gather_optional(grad_h_n, Scratch::kDiffDstIter, O);
      if (s.lstm()) {
        src_iter_c = gather_optional(c0, Scratch::kSrcIterC, H);
        dst_iter_c = gather_optional(c_n, Scratch::kDstIterC, H);
        diff_dst_iter_c = gather_optional(grad_c_n, Scratch::kDiffDstIterC, H);
      }
      diff_src_layer = sc.slots[Scratch::kDiffSrcLayer].floats(tg * ng * s.input);
      diff_src_iter = sc.slots[Scratch::kDiffSrcIter].floats(D * ng * O);
      diff_src_iter_c = sc.slots[Scratch::kDiffSrcIterC].floats(D * ng * H);
    }
    const int64_t state_floats = D * ng * std::max(O, H);
    const bool needs_zeros = src_iter == nullptr || diff_dst_iter == nullptr ||
                             (s.lstm() && (src_iter_c == nullptr || diff_dst_iter_c == nullptr));
    const float *zero_state = needs_zeros ? zeros(sc, state_floats) : nullptr;
    if (src_iter == nullptr) src_iter = zero_state;
    if (diff_dst_iter == nullptr) diff_dst_iter = zero_state;
    if (s.lstm() && src_iter_c == nullptr) src_iter_c = zero_state;
    if (s.lstm() && diff_dst_iter_c == nullptr) diff_dst_iter_c = zero_state;
    if (dst_iter == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "h_n is NULL: the backward needs the forward's final state");
    if (s.lstm() && dst_iter_c == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "c_n is NULL: the backward needs the forward's final cell");
    if (diff_src_layer == nullptr) diff_src_layer = sc.slots[Scratch::kDiffSrcLayer].floats(tg * ng * s.input);
    if (diff_src_iter == nullptr) diff_src_iter = sc.slots[Scratch::kDiffSrcIter].floats(D * ng * O);
    if (s.lstm() && diff_src_iter_c == nullptr)
      diff_src_iter_c = sc.slots[Scratch::kDiffSrcIterC].floats(D * ng * H);

    std::unordered_map<int, memory> args;
    args.emplace(DNNL_ARG_SRC_LAYER, query(pd, DNNL_ARG_SRC_LAYER, src_layer));
    args.emplace(DNNL_ARG_SRC_ITER, query(pd, DNNL_ARG_SRC_ITER, src_iter));
    args.emplace(DNNL_ARG_DST_LAYER, query(pd, DNNL_ARG_DST_LAYER, dst_layer));
    args.emplace(DNNL_ARG_DST_ITER, query(pd, DNNL_ARG_DST_ITER, dst_iter));
    args.emplace(DNNL_ARG_DIFF_DST_LAYER, query(pd, DNNL_ARG_DIFF_DST_LAYER, diff_dst_layer));
    args.emplace(DNNL_ARG_DIFF_DST_ITER, query(pd, DNNL_ARG_DIFF_DST_ITER, diff_dst_iter));
    args.emplace(DNNL_ARG_DIFF_SRC_LAYER, query(pd, DNNL_ARG_DIFF_SRC_LAYER, diff_src_layer));
    args.emplace(DNNL_ARG_DIFF_SRC_ITER, query(pd, DNNL_ARG_DIFF_SRC_ITER, diff_src_iter));
    if (s.lstm()) {
      args.emplace(DNNL_ARG_SRC_ITER_C, query(pd, DNNL_ARG_SRC_ITER_C, src_iter_c));
      args.emplace(DNNL_ARG_DST_ITER_C, query(pd, DNNL_ARG_DST_ITER_C, dst_iter_c));
      args.emplace(DNNL_ARG_DIFF_DST_ITER_C, query(pd, DNNL_ARG_DIFF_DST_ITER_C, diff_dst_iter_c));
      args.emplace(DNNL_ARG_DIFF_SRC_ITER_C, query(pd, DNNL_ARG_DIFF_SRC_ITER_C, diff_src_iter_c));
    }
    args.emplace(DNNL_ARG_WEIGHTS_LAYER,
                 weights_for(pd, DNNL_ARG_WEIGHTS_LAYER, plain.layer, packed->layer.data(),
                             sc.slots[Scratch::kReorderedLayer], sc.stream));
    args.emplace(DNNL_ARG_WEIGHTS_ITER,
                 weights_for(pd, DNNL_ARG_WEIGHTS_ITER, plain.iter, packed->iter.data(),
                             sc.slots[Scratch::kReorderedIter], sc.stream));
    args.emplace(DNNL_ARG_BIAS, wrap(plain.bias, packed->bias.data()));
    args.emplace(DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(diff_layer_desc, dw.layer));
    args.emplace(DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(diff_iter_desc, dw.iter));
    args.emplace(DNNL_ARG_DIFF_BIAS, wrap(plain.bias, dw.bias));
    if (s.peephole) {
      args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, wrap(plain.peephole, packed->peephole.data()));
      args.emplace(DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE, wrap(plain.peephole, dw.peephole));
    }
    if (s.projection()) {
      args.emplace(DNNL_ARG_WEIGHTS_PROJECTION,
                   weights_for(pd, DNNL_ARG_WEIGHTS_PROJECTION, plain.projection,
                               packed->projection.data(), sc.slots[Scratch::kReorderedProjection],
                               sc.stream));
      args.emplace(DNNL_ARG_DIFF_WEIGHTS_PROJECTION, wrap(diff_proj_desc, dw.projection));
    }
    auto ws_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE);
    args.emplace(DNNL_ARG_WORKSPACE, wrap(ws_desc, workspace_bytes_of_forward + plan.offsets[r]));
    auto pad = pd.scratchpad_desc();
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 wrap(pad, sc.slots[Scratch::kOnednnScratchpad].bytes(std::max<int64_t>(pad.get_size(), 1))));
    prim->primitive.execute(sc.stream, args);
    sc.stream.wait();
    if (!direct(g)) {
      if (grad_input != nullptr) scatter_sequence(grad_input, diff_src_layer, g, tg, t, n, s.input);
      if (grad_h0 != nullptr) scatter_state(grad_h0, diff_src_iter, g, D, n, O);
      if (grad_c0 != nullptr && s.lstm()) scatter_state(grad_c0, diff_src_iter_c, g, D, n, H);
    }
  });
  // The parts' gradients into part 0's, in part order.
  const DiffWeights &sum = diffs[0];
  std::vector<const DiffWeights *> used;  // the parts that ran (all of them, with batch_parts')
  for (int64_t p = 1; p < parts_max; ++p)
    if (zeroed[p]) used.push_back(&diffs[p]);
  auto add = [&](float *DiffWeights::*field, int64_t count) {
    float *into = sum.*field;
#pragma omp parallel for schedule(static) if (count >= (1 << 15))
    for (int64_t i = 0; i < count; ++i)
      for (const DiffWeights *part : used) into[i] += (part->*field)[i];
  };
  if (!used.empty()) {
    add(&DiffWeights::layer, layer_floats);
    add(&DiffWeights::iter, iter_floats);
    if (s.projection()) add(&DiffWeights::projection, projection_floats);
    add(&DiffWeights::bias, bias_floats);
    add(&DiffWeights::peephole, peephole_floats);
  }
  // Back to plain layouts, then into the caller's PyTorch-layout gradients.
  auto to_plain = [&](const memory::desc &from, float *data, const memory::desc &to,
                      Scratch::Slot slot) -> const float * {
    if (from == to) return data;
    float *out = caller.slots[slot].floats(to.get_size() / 4 + 1);
    memory in = wrap(from, data), plain_out = wrap(to, out);
    dnnl::reorder(in, plain_out).execute(caller.stream, in, plain_out);
    caller.stream.wait();
    return out;
  };
  const float *plain_layer = to_plain(diff_layer_desc, sum.layer, plain.layer, Scratch::kDiffPlainLayer);
  const float *plain_iter = to_plain(diff_iter_desc, sum.iter, plain.iter, Scratch::kDiffPlainIter);
  const float *plain_proj = s.projection()
      ? to_plain(diff_proj_desc, sum.projection, plain.projection, Scratch::kDiffPlainProjection)
      : nullptr;
  unpack_add_gradients(s, grads, plain_layer, plain_iter, sum.bias, sum.peephole, plain_proj);
}

// The oneDNN backend behind the interface both backends share.
class OnednnRecurrent final : public RecurrentBackend {
 public:
  explicit OnednnRecurrent(const Sizes &sizes) : layer_(sizes) {}
  int64_t workspace_bytes(const int64_t *lengths, int64_t t, int64_t n) override {
    return workspace_bytes_for(layer_, groups_of(lengths, t, n), n, seq4j::threads());
  }
  void forward(const seq4j_rnn_weights *weights, int64_t version, float *output, float *h_n,
               float *c_n, void *workspace, int64_t workspace_bytes, const float *input,
               const float *h0, const float *c0, const int64_t *lengths, int64_t t,
               int64_t n) override {
    // a training forward converts the weights afresh, for its backward (Layer::kLatest)
    run_forward(layer_, weights, workspace != nullptr ? Layer::kFresh : version, output, h_n, c_n,
                workspace, workspace_bytes, input, h0, c0, lengths, t, n, seq4j::threads());
  }
  void backward(const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                float *grad_input, float *grad_h0, float *grad_c0, const float *grad_output,
                const float *grad_h_n, const float *grad_c_n, const void *workspace,
                int64_t workspace_bytes, const float *input, const float *h0, const float *c0,
                const float *output, const float *h_n, const float *c_n, const int64_t *lengths,
                int64_t t, int64_t n) override {
    run_backward(layer_, weights, grads, grad_input, grad_h0, grad_c0, grad_output, grad_h_n,
                 grad_c_n, workspace, workspace_bytes, input, h0, c0, output, h_n, c_n, lengths,
                 t, n);
  }

 private:
  Layer layer_;
};

}  // namespace

std::unique_ptr<RecurrentBackend> make_onednn_recurrent(const RecurrentSizes &sizes) {
  return std::make_unique<OnednnRecurrent>(sizes);
}

}  // namespace seq4j
