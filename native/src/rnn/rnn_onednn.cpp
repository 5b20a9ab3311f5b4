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
//  5. An inference group of a small layer is split by samples (batch_parts): each thread runs its
//     samples' whole recurrence on a primitive of its own, with strided views of the group's
//     buffers, instead of every thread taking a slice of each step and meeting the others at a
//     barrier per step.
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

  // The forward (or backward) primitive for T steps and N samples, created once. With a batch
  // stride above n, the sequences and states are views of n samples in buffers of `stride`
  // samples (batch_parts' parts).
  std::shared_ptr<Primitive> primitive(Kind kind, int64_t t, int64_t n, int64_t stride = 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    return primitive_locked(kind, t, n, stride > n ? stride : n);
  }

 private:
  std::shared_ptr<Primitive> primitive_locked(Kind kind, int64_t t, int64_t n, int64_t stride) {
    auto key = std::make_tuple(static_cast<int>(kind), t, n, stride);
    auto found = primitives_.find(key);
    if (found != primitives_.end()) return found->second;
    auto created = std::make_shared<Primitive>();
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const int64_t D = s_.directions, H = s_.hidden, O = s_.output;
    const auto direction = D == 2 ? dnnl::rnn_direction::bidirectional_concat
                                  : dnnl::rnn_direction::unidirectional_left2right;
    // (T, n, C) and (1, D, n, C) in buffers of `stride` samples
    auto sequence = [&](int64_t c) {
      return stride == n ? memory::desc({t, n, c}, dt::f32, tag::tnc)
                         : memory::desc({t, n, c}, dt::f32, memory::dims{stride * c, c, 1});
    };
    auto state = [&](int64_t c) {
      return stride == n ? memory::desc({1, D, n, c}, dt::f32, tag::ldnc)
                         : memory::desc({1, D, n, c}, dt::f32,
                                        memory::dims{D * stride * c, stride * c, c, 1});
    };
    memory::desc src_layer = sequence(s_.input);
    memory::desc src_iter = state(O);
    memory::desc src_iter_c = state(H);
    memory::desc weights_layer({1, D, s_.input, s_.gates, H}, dt::f32, tag::any);
    memory::desc weights_iter({1, D, O, s_.gates, H}, dt::f32, tag::any);
    memory::desc weights_peephole =
        s_.peephole ? memory::desc({1, D, 3, H}, dt::f32, tag::ldgo) : memory::desc();
    memory::desc weights_projection =
        s_.projection() ? memory::desc({1, D, H, s_.proj}, dt::f32, tag::any) : memory::desc();
    memory::desc bias({1, D, s_.bias_gates, H}, dt::f32, tag::ldgo);
    memory::desc dst_layer = sequence(D * O);
    memory::desc dst_iter = state(O);
    memory::desc dst_iter_c = state(H);
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
      auto hint = primitive_locked(Kind::kTraining, t, n, stride);
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
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::shared_ptr<Primitive>> primitives_;
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

int64_t workspace_bytes_for(Layer &layer, const std::vector<Group> &groups, int64_t n) {
  int64_t total = kWorkspaceHeader;
  for (const Group &g : groups) {
    auto prim = layer.primitive(Kind::kTraining, g.length, group_size(g, n));
    total += round_up_64(prim->pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE).get_size());
  }
  return total;
}

// The sequences and states of one run of a forward primitive: a group's (gathered, or the
// caller's), of `stride` samples each step.
struct ForwardBuffers {
  const float *src_layer, *src_iter, *src_iter_c;
  float *dst_layer, *dst_iter, *dst_iter_c;

  // The views of samples from `first` on.
  ForwardBuffers from(const Sizes &s, int64_t first) const {
    const int64_t H = s.hidden, O = s.output, DO = s.directions * O;
    return {src_layer + first * s.input, src_iter + first * O,
            src_iter_c == nullptr ? nullptr : src_iter_c + first * H, dst_layer + first * DO,
            dst_iter + first * O, dst_iter_c == nullptr ? nullptr : dst_iter_c + first * H};
  }
};

void execute_forward(const Primitive &prim, const ForwardBuffers &b, PackedWeights &packed,
                     const PlainDescs &plain, const Sizes &s, char *workspace, Scratch &sc) {
  const auto &pd = prim.pd;
  const bool training = workspace != nullptr;
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_SRC_LAYER, query(pd, DNNL_ARG_SRC_LAYER, b.src_layer));
  args.emplace(DNNL_ARG_SRC_ITER, query(pd, DNNL_ARG_SRC_ITER, b.src_iter));
  args.emplace(DNNL_ARG_DST_LAYER, query(pd, DNNL_ARG_DST_LAYER, b.dst_layer));
  args.emplace(DNNL_ARG_DST_ITER, query(pd, DNNL_ARG_DST_ITER, b.dst_iter));
  if (s.lstm()) {
    args.emplace(DNNL_ARG_SRC_ITER_C, query(pd, DNNL_ARG_SRC_ITER_C, b.src_iter_c));
    args.emplace(DNNL_ARG_DST_ITER_C, query(pd, DNNL_ARG_DST_ITER_C, b.dst_iter_c));
  }
  if (training) {
    args.emplace(DNNL_ARG_WEIGHTS_LAYER,
                 weights_for(pd, DNNL_ARG_WEIGHTS_LAYER, plain.layer, packed.layer.data(),
                             sc.slots[Scratch::kReorderedLayer], sc.stream));
    args.emplace(DNNL_ARG_WEIGHTS_ITER,
                 weights_for(pd, DNNL_ARG_WEIGHTS_ITER, plain.iter, packed.iter.data(),
                             sc.slots[Scratch::kReorderedIter], sc.stream));
    if (s.projection())
      args.emplace(DNNL_ARG_WEIGHTS_PROJECTION,
                   weights_for(pd, DNNL_ARG_WEIGHTS_PROJECTION, plain.projection,
                               packed.projection.data(), sc.slots[Scratch::kReorderedProjection],
                               sc.stream));
    args.emplace(DNNL_ARG_WORKSPACE,
                 wrap(pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE), workspace));
  } else {
    args.emplace(DNNL_ARG_WEIGHTS_LAYER,
                 cached_weights_for(packed, pd, DNNL_ARG_WEIGHTS_LAYER, plain.layer,
                                    packed.layer.data(), sc.stream));
    args.emplace(DNNL_ARG_WEIGHTS_ITER,
                 cached_weights_for(packed, pd, DNNL_ARG_WEIGHTS_ITER, plain.iter,
                                    packed.iter.data(), sc.stream));
    if (s.projection())
      args.emplace(DNNL_ARG_WEIGHTS_PROJECTION,
                   weights_for(pd, DNNL_ARG_WEIGHTS_PROJECTION, plain.projection,
                               packed.projection.data(), sc.slots[Scratch::kReorderedProjection],
                               sc.stream));
  }
  args.emplace(DNNL_ARG_BIAS, wrap(plain.bias, packed.bias.data()));
  if (s.peephole) args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, wrap(plain.peephole, packed.peephole.data()));
  auto pad = pd.scratchpad_desc();
  args.emplace(DNNL_ARG_SCRATCHPAD,
               wrap(pad, sc.slots[Scratch::kOnednnScratchpad].bytes(std::max<int64_t>(pad.get_size(), 1))));
  prim.primitive.execute(sc.stream, args);
  sc.stream.wait();
}

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

// Into how many parts of consecutive samples an inference group of n samples is split, one per
// thread, each running its samples' whole recurrence alone on a primitive of its own; 1: not split
// (the primitive's threads share every step, meeting at a barrier per step). Split only while
// the layer's weights fit in three quarters of a core's L2 cache, so that each thread's copy of
// them stays there, and every thread gets at least kMinSplitSamples samples. Measured on 2 cores
// (AVX-512, 2 MiB L2; T = 35, input = hidden, medians of 267-1000 calls), split against shared
// steps: H = 200, N = 20 0.78×, N = 16 0.83×, N = 64 0.89×; H = 128, N = 128 0.83×. One thread on
// half the batch against two on all of it, the split's cost without its pool: H = 200, N = 8
// 1.06× (hence 8 samples); H = 256 (2 MiB of weights), N = 20 0.98×; H = 384 1.15×; H = 512 1.21×.
constexpr int64_t kMinSplitSamples = 8;

int64_t batch_parts(const Sizes &s, int64_t n) {
  const int64_t threads = seq4j::threads();
  if (threads < 2 || n < threads * kMinSplitSamples) return 1;
  const int64_t weights = s.directions * s.gates * s.hidden * (s.input + s.output) +
                          (s.projection() ? s.directions * s.hidden * s.proj : 0);
  if (weights * int64_t{sizeof(float)} > l2_cache_bytes() / 4 * 3) return 1;
  return threads;
}

// f(first, count) for each of `parts` runs of consecutive samples of n, one per thread of a
// parallel region (a thread runs several when the region has fewer threads); the first exception
// of any is rethrown after all have finished.
template <class F>
void for_each_part(int64_t parts, int64_t n, F &&f) {
  std::vector<std::exception_ptr> errors(parts);
#pragma omp parallel num_threads(static_cast<int>(parts))
  {
    for (int64_t p = omp_get_thread_num(); p < parts; p += omp_get_num_threads()) {
      const int64_t first = n * p / parts, last = n * (p + 1) / parts;
      try {
        f(first, last - first);
      } catch (...) {
        errors[p] = std::current_exception();
      }
    }
  }
  for (auto &error : errors)
    if (error) std::rethrow_exception(error);
}

void run_forward(Layer &layer, const seq4j_rnn_weights *weights, int64_t version, float *output,
                 float *h_n, float *c_n, void *workspace, int64_t workspace_bytes,
                 const float *input, const float *h0, const float *c0, const int64_t *lengths,
                 int64_t t, int64_t n) {
  const Sizes &s = layer.sizes();
  const bool training = workspace != nullptr;
  auto groups = groups_of(lengths, t, n);
  if (training) {
    const int64_t needed = workspace_bytes_for(layer, groups, n);
    if (workspace_bytes < needed)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", needed, ", got ",
           workspace_bytes);
  }
  auto packed = layer.weights(weights, version);
  const PlainDescs plain(s);
  Scratch &sc = scratch();
  const int64_t D = s.directions, H = s.hidden, O = s.output;
  int64_t workspace_offset = kWorkspaceHeader;
  for (const Group &g : groups) {
    const int64_t ng = group_size(g, n), tg = g.length;
    ForwardBuffers b{input, h0, c0, output, h_n, c_n};
    if (!direct(g)) {
      float *buffer = sc.slots[Scratch::kSrcLayer].floats(tg * ng * s.input);
      gather_sequence(buffer, input, g, tg, n, s.input);
      b.src_layer = buffer;
      if (h0 != nullptr) {
        float *state = sc.slots[Scratch::kSrcIter].floats(D * ng * O);
        gather_state(state, h0, g, D, n, O);
        b.src_iter = state;
      }
      if (c0 != nullptr && s.lstm()) {
        float *state = sc.slots[Scratch::kSrcIterC].floats(D * ng * H);
        gather_state(state, c0, g, D, n, H);
        b.src_iter_c = state;
      }
      b.dst_layer = sc.slots[Scratch::kDstLayer].floats(tg * ng * D * O);
      b.dst_iter = sc.slots[Scratch::kDstIter].floats(D * ng * O);
      b.dst_iter_c = sc.slots[Scratch::kDstIterC].floats(D * ng * H);
    }
    // Missing initial states are zeros; unwanted final states go to scratch.
    const int64_t state_floats = D * ng * std::max(O, H);
    float *zero_state = (b.src_iter == nullptr || (s.lstm() && b.src_iter_c == nullptr))
                            ? zeros(sc, state_floats)
                            : nullptr;
    if (b.src_iter == nullptr) b.src_iter = zero_state;
    if (s.lstm() && b.src_iter_c == nullptr) b.src_iter_c = zero_state;
    if (b.dst_iter == nullptr) b.dst_iter = sc.slots[Scratch::kDstIter].floats(D * ng * O);
    if (s.lstm() && b.dst_iter_c == nullptr)
      b.dst_iter_c = sc.slots[Scratch::kDstIterC].floats(D * ng * H);
    if (!s.lstm()) b.src_iter_c = b.dst_iter_c = nullptr;

    const int64_t parts = training ? 1 : batch_parts(s, ng);
    if (parts == 1) {
      auto prim = layer.primitive(training ? Kind::kTraining : Kind::kInference, tg, ng);
      char *ws = nullptr;
      if (training) {
        ws = static_cast<char *>(workspace) + workspace_offset;
        workspace_offset += round_up_64(
            prim->pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE).get_size());
      }
      execute_forward(*prim, b, *packed, plain, s, ws, sc);
    } else {
      // each part on its thread's scratch and stream; a primitive made inside the region plans
      // for the one thread oneDNN runs it on there
      for_each_part(parts, ng, [&](int64_t first, int64_t count) {
        auto prim = layer.primitive(Kind::kInference, tg, count, ng);
        execute_forward(*prim, b.from(s, first), *packed, plain, s, nullptr, scratch());
      });
    }
    if (!direct(g)) {
      scatter_sequence(output, b.dst_layer, g, tg, t, n, D * O);
      if (h_n != nullptr) scatter_state(h_n, b.dst_iter, g, D, n, O);
      if (c_n != nullptr && s.lstm()) scatter_state(c_n, b.dst_iter_c, g, D, n, H);
    }
  }
  if (training) set_workspace_state(workspace, kWorkspaceFilled);
}

void run_backward(Layer &layer, const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                  float *grad_input, float *grad_h0, float *grad_c0, const float *grad_output,
                  const float *grad_h_n, const float *grad_c_n, const void *workspace,
                  int64_t workspace_bytes, const float *input, const float *h0, const float *c0,
                  const float *output, const float *h_n, const float *c_n, const int64_t *lengths,
                  int64_t t, int64_t n) {
  const Sizes &s = layer.sizes();
  if (workspace == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace is NULL");
  if (grads == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "grads is NULL");
  auto groups = groups_of(lengths, t, n);
  const int64_t needed = workspace_bytes_for(layer, groups, n);
  if (workspace_bytes < needed)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "workspace_bytes must be >= ", needed, ", got ",
         workspace_bytes);
  if (workspace_state(workspace) == kWorkspaceConsumed) {
    // A second backward of this forward: fill the workspace again, with the weights the forward
    // converted (the ones this backward uses), writing the outputs it recomputes to scratch.
    Scratch &sc = scratch();
    const int64_t D = s.directions, H = s.hidden, O = s.output;
    float *recomputed_output = sc.slots[Scratch::kRecomputedOutput].floats(t * n * D * O);
    float *recomputed_h_n = sc.slots[Scratch::kRecomputedHN].floats(D * n * O);
    float *recomputed_c_n = s.lstm() ? sc.slots[Scratch::kRecomputedCN].floats(D * n * H) : nullptr;
    run_forward(layer, weights, Layer::kLatest, recomputed_output, recomputed_h_n, recomputed_c_n,
                const_cast<void *>(workspace), workspace_bytes, input, h0, c0, lengths, t, n);
  }
  // From here on oneDNN overwrites part of the workspace.
  set_workspace_state(workspace, kWorkspaceConsumed);
  auto packed = layer.weights(weights, Layer::kLatest);
  const PlainDescs plain(s);
  Scratch &sc = scratch();
  const int64_t D = s.directions, H = s.hidden, O = s.output;
  // Weight gradients accumulate over groups in oneDNN's formats, starting from zero.
  float *diff_bias = sc.slots[Scratch::kDiffBias].floats(D * s.bias_gates * H);
  std::memset(diff_bias, 0, D * s.bias_gates * H * sizeof(float));
  float *diff_peephole = sc.slots[Scratch::kDiffPeephole].floats(std::max<int64_t>(D * 3 * H, 1));
  std::memset(diff_peephole, 0, D * 3 * H * sizeof(float));
  memory::desc diff_layer_desc, diff_iter_desc, diff_proj_desc;
  float *diff_layer = nullptr, *diff_iter = nullptr, *diff_proj = nullptr;
  int64_t workspace_offset = kWorkspaceHeader;
  char *workspace_bytes_of_forward = static_cast<char *>(const_cast<void *>(workspace));
  for (const Group &g : groups) {
    const int64_t ng = group_size(g, n), tg = g.length;
    auto prim = layer.primitive(Kind::kBackward, tg, ng);
    const auto &pd = prim->pd;
    if (diff_layer == nullptr) {
      diff_layer_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER);
      diff_iter_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER);
      diff_layer = sc.slots[Scratch::kDiffWeightsLayer].floats(diff_layer_desc.get_size() / 4 + 1);
      diff_iter = sc.slots[Scratch::kDiffWeightsIter].floats(diff_iter_desc.get_size() / 4 + 1);
      std::memset(diff_layer, 0, diff_layer_desc.get_size());
      std::memset(diff_iter, 0, diff_iter_desc.get_size());
      if (s.projection()) {
        diff_proj_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_PROJECTION);
        diff_proj = sc.slots[Scratch::kDiffWeightsProjection].floats(diff_proj_desc.get_size() / 4 + 1);
        std::memset(diff_proj, 0, diff_proj_desc.get_size());
      }
    } else if (pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER) != diff_layer_desc ||
               pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER) != diff_iter_desc) {
      fail(SEQ4J_ERR_INTERNAL, "oneDNN chose different weight-gradient formats for two groups");
    }
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
    args.emplace(DNNL_ARG_DIFF_WEIGHTS_LAYER, wrap(diff_layer_desc, diff_layer));
    args.emplace(DNNL_ARG_DIFF_WEIGHTS_ITER, wrap(diff_iter_desc, diff_iter));
    args.emplace(DNNL_ARG_DIFF_BIAS, wrap(plain.bias, diff_bias));
    if (s.peephole) {
      args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, wrap(plain.peephole, packed->peephole.data()));
      args.emplace(DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE, wrap(plain.peephole, diff_peephole));
    }
    if (s.projection()) {
      args.emplace(DNNL_ARG_WEIGHTS_PROJECTION,
                   weights_for(pd, DNNL_ARG_WEIGHTS_PROJECTION, plain.projection,
                               packed->projection.data(), sc.slots[Scratch::kReorderedProjection],
                               sc.stream));
      args.emplace(DNNL_ARG_DIFF_WEIGHTS_PROJECTION, wrap(diff_proj_desc, diff_proj));
    }
    auto ws_desc = pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE);
    args.emplace(DNNL_ARG_WORKSPACE, wrap(ws_desc, workspace_bytes_of_forward + workspace_offset));
    workspace_offset += round_up_64(ws_desc.get_size());
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
  }
  // Back to plain layouts, then into the caller's PyTorch-layout gradients.
  auto to_plain = [&](const memory::desc &from, float *data, const memory::desc &to,
                      Scratch::Slot slot) -> const float * {
    if (from == to) return data;
    float *out = sc.slots[slot].floats(to.get_size() / 4 + 1);
    memory in = wrap(from, data), plain_out = wrap(to, out);
    dnnl::reorder(in, plain_out).execute(sc.stream, in, plain_out);
    sc.stream.wait();
    return out;
  };
  const float *plain_layer = to_plain(diff_layer_desc, diff_layer, plain.layer, Scratch::kDiffPlainLayer);
  const float *plain_iter = to_plain(diff_iter_desc, diff_iter, plain.iter, Scratch::kDiffPlainIter);
  const float *plain_proj = s.projection()
      ? to_plain(diff_proj_desc, diff_proj, plain.projection, Scratch::kDiffPlainProjection)
      : nullptr;
  unpack_add_gradients(s, grads, plain_layer, plain_iter, diff_bias, diff_peephole, plain_proj);
}

// The oneDNN backend behind the interface both backends share.
class OnednnRecurrent final : public RecurrentBackend {
 public:
  explicit OnednnRecurrent(const Sizes &sizes) : layer_(sizes) {}
  int64_t workspace_bytes(const int64_t *lengths, int64_t t, int64_t n) override {
    return workspace_bytes_for(layer_, groups_of(lengths, t, n), n);
  }
  void forward(const seq4j_rnn_weights *weights, int64_t version, float *output, float *h_n,
               float *c_n, void *workspace, int64_t workspace_bytes, const float *input,
               const float *h0, const float *c0, const int64_t *lengths, int64_t t,
               int64_t n) override {
    // a training forward converts the weights afresh, for its backward (Layer::kLatest)
    run_forward(layer_, weights, workspace != nullptr ? Layer::kFresh : version, output, h_n, c_n,
                workspace, workspace_bytes, input, h0, c0, lengths, t, n);
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
