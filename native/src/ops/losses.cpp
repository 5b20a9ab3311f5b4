// Losses, each computing the mean loss and (optionally) its gradient in one pass, as llm.c fuses
// softmax and cross-entropy: the forward already holds everything the backward needs.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/math_double.h"
#include "core/fixed_order_sum.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;

void check_loss_arguments(const float *loss, int64_t n) {
  if (loss == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "loss is NULL");
  seq4j::require_non_negative("n", n);
}

// One row of the softmax cross-entropy: its loss -Σ q_j log p_j (q = (1 - e) one-hot + e / v,
// log p_j = x_j - max - log Σ exp(x_k - max)) and, with grad_row, (p - q) / counted. The row's
// passes (max, Σ exp and Σ x, the gradient) run in vectors, compiled once per ISA, with
// core/math_double.h's exp (the scalar std::exp per logit made a 256 x 32768 row block 36 ms); the
// sums keep 8 partials in a fixed order, i % 8, so the bits are the same on every copy.
__attribute__((always_inline)) inline double cross_entropy_row_body(
    float *grad_row, const float *row, int64_t v, int64_t label, double smooth, double off,
    double per_row) {
  constexpr int kLanes = 8;
  float lane_max[kLanes];
  for (int l = 0; l < kLanes; ++l) lane_max[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= v; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lane_max[l] = row[j + l] > lane_max[l] ? row[j + l] : lane_max[l];
  float max = -std::numeric_limits<float>::infinity();
  for (; j < v; ++j) max = row[j] > max ? row[j] : max;  // NaN is passed over, as fmax does
  for (int l = 0; l < kLanes; ++l) max = lane_max[l] > max ? lane_max[l] : max;
  double sums[kLanes] = {}, logit_sums[kLanes] = {};
  j = 0;
  for (; j + kLanes <= v; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      sums[l] += seq4j::exp_d(static_cast<double>(row[j + l]) - max);
      logit_sums[l] += row[j + l];
    }
  for (int l = 0; j < v; ++j, ++l) {
    sums[l] += seq4j::exp_d(static_cast<double>(row[j]) - max);
    logit_sums[l] += row[j];
  }
  const double sum = ((sums[0] + sums[1]) + (sums[2] + sums[3])) +
                     ((sums[4] + sums[5]) + (sums[6] + sums[7]));
  const double sum_logits = ((logit_sums[0] + logit_sums[1]) + (logit_sums[2] + logit_sums[3])) +
                            ((logit_sums[4] + logit_sums[5]) + (logit_sums[6] + logit_sums[7]));
  const double log_sum = std::log(sum) + max;
  const double label_term = log_sum - row[label];
  const double uniform_term = log_sum - sum_logits / static_cast<double>(v);
  if (grad_row != nullptr) {
    // the label's q has its 1 - e as well (its p taken first: grad_row may be the row itself)
    const double p_label = seq4j::exp_d(static_cast<double>(row[label]) - log_sum);
#pragma omp simd
    for (int64_t k = 0; k < v; ++k)
      grad_row[k] = static_cast<float>((seq4j::exp_d(static_cast<double>(row[k]) - log_sum) - off) *
                                       per_row);
    grad_row[label] = static_cast<float>((p_label - (1.0 - smooth) - off) * per_row);
  }
  return (1.0 - smooth) * label_term + smooth * uniform_term;
}

using CrossEntropyRow = double (*)(float *, const float *, int64_t, int64_t, double, double, double);
double cross_entropy_row_portable(float *g, const float *r, int64_t v, int64_t label, double smooth,
                                  double off, double per_row) {
  return cross_entropy_row_body(g, r, v, label, smooth, off, per_row);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) double cross_entropy_row_avx2(
    float *g, const float *r, int64_t v, int64_t label, double smooth, double off, double per_row) {
  return cross_entropy_row_body(g, r, v, label, smooth, off, per_row);
}
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) double
cross_entropy_row_avx512(float *g, const float *r, int64_t v, int64_t label, double smooth,
                         double off, double per_row) {
  return cross_entropy_row_body(g, r, v, label, smooth, off, per_row);
}
#endif
CrossEntropyRow cross_entropy_row_copy() {
#if SEQ4J_X86_64
  if (seq4j::active_isa() == seq4j::Isa::kAvx512) return cross_entropy_row_avx512;
  if (seq4j::use_avx2()) return cross_entropy_row_avx2;
#endif
  return cross_entropy_row_portable;
}

// One chunk of BCE with logits: Σ max(x, 0) - x t + log(1 + e^-|x|) (never overflows) and, with
// grad, (σ(x) - t) / n, in fixed_order_chunk_sum's order (8 partials, i % 8), in vectors per ISA
// with core/math_double.h's exp and log1p (the scalar libm calls made 8M logits 70 ms).
template <bool kGrad>
__attribute__((always_inline)) inline double bce_term(float *grad, const float *logits,
                                                     const float *target, int64_t i,
                                                     double scale) {
  const double x = logits[i], t = target[i];
  const double e = seq4j::exp_d(-(x < 0 ? -x : x));  // e^-|x|, in (0, 1]
  if constexpr (kGrad) {
    const double sigmoid = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    grad[i] = static_cast<float>((sigmoid - t) * scale);
  }
  return (x > 0 ? x : 0.0) - x * t + seq4j::log1p_d(e);
}

// The chunk's terms in a simd loop into a buffer (the loop the vectoriser takes), then summed in
// the fixed order.
template <bool kGrad>
__attribute__((always_inline)) inline double bce_chunk_lanes(float *grad, const float *logits,
                                                            const float *target, int64_t begin,
                                                            int64_t end, double scale) {
  double terms[seq4j::kSumChunk];
  const int64_t count = end - begin;
#pragma omp simd
  for (int64_t k = 0; k < count; ++k)
    terms[k] = bce_term<kGrad>(grad, logits, target, begin + k, scale);
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 8 <= count; k += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += terms[k + l];
  for (int l = 0; k < count; ++k, ++l) lanes[l] += terms[k];
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

__attribute__((always_inline)) inline double bce_chunk_body(float *grad, const float *logits,
                                                           const float *target, int64_t begin,
                                                           int64_t end, double scale) {
  return grad != nullptr ? bce_chunk_lanes<true>(grad, logits, target, begin, end, scale)
                         : bce_chunk_lanes<false>(grad, logits, target, begin, end, scale);
}

using BceChunk = double (*)(float *, const float *, const float *, int64_t, int64_t, double);
double bce_chunk_portable(float *g, const float *x, const float *t, int64_t b, int64_t e,
                          double s) {
  return bce_chunk_body(g, x, t, b, e, s);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) double bce_chunk_avx2(float *g, const float *x,
                                                          const float *t, int64_t b, int64_t e,
                                                          double s) {
  return bce_chunk_body(g, x, t, b, e, s);
}
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) double bce_chunk_avx512(
    float *g, const float *x, const float *t, int64_t b, int64_t e, double s) {
  return bce_chunk_body(g, x, t, b, e, s);
}
#endif
BceChunk bce_chunk_copy() {
#if SEQ4J_X86_64
  if (seq4j::active_isa() == seq4j::Isa::kAvx512) return bce_chunk_avx512;
  if (seq4j::use_avx2()) return bce_chunk_avx2;
#endif
  return bce_chunk_portable;
}
}  // namespace

extern "C" {

int seq4j_mse_loss(float *loss, float *grad, const float *prediction, const float *target,
                   int64_t n) {
  return guarded(__func__, [&] {
    check_loss_arguments(loss, n);
    if (n == 0) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n must be >= 1 for a mean, got 0");
    seq4j::require_pointer("prediction", prediction, n);
    seq4j::require_pointer("target", target, n);
    seq4j::use_configured_threads();
    const float scale = 2.0f / static_cast<float>(n);
    const double sum = seq4j::fixed_order_sum(n, seq4j::kSumChunk, n >= kParallelMin, [&](int64_t i) {
      const float difference = prediction[i] - target[i];
      if (grad != nullptr) grad[i] = scale * difference;
      return static_cast<double>(difference) * difference;
    });
    *loss = static_cast<float>(sum / static_cast<double>(n));
    return SEQ4J_OK;
  });
}

int seq4j_cross_entropy_loss(float *loss, float *grad, const float *logits, const int64_t *labels,
                             int64_t m, int64_t v, int64_t ignore_index, float label_smoothing) {
  return guarded(__func__, [&] {
    check_loss_arguments(loss, m);
    if (v < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "v must be >= 1, got ", v);
    seq4j::require_pointer("logits", logits, m * v);
    seq4j::require_pointer("labels", labels, m);
    if (!(label_smoothing >= 0.0f && label_smoothing < 1.0f))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "label_smoothing must be in [0, 1), got ", label_smoothing);
    int64_t counted = 0;
    for (int64_t i = 0; i < m; ++i) {
      if (labels[i] == ignore_index) continue;
      if (labels[i] < 0 || labels[i] >= v)
        fail(SEQ4J_ERR_INVALID_ARGUMENT, "labels[", i, "] must be in [0, ", v, ") or ",
             ignore_index, " (ignore_index), got ", labels[i]);
      ++counted;
    }
    seq4j::use_configured_threads();
    const double smooth = label_smoothing, off = smooth / static_cast<double>(v);
    const double per_row = counted > 0 ? 1.0 / static_cast<double>(counted) : 0.0;
    // rows in chunks of about kSumChunk logits (a function of v alone)
    const int64_t rows_per_chunk = std::max<int64_t>(1, seq4j::kSumChunk / v);
    const CrossEntropyRow cross_entropy_row = cross_entropy_row_copy();
    const double total = seq4j::fixed_order_sum(m, rows_per_chunk, m * v >= kParallelMin, [&](int64_t i) {
      const float *row = logits + i * v;
      float *grad_row = grad != nullptr ? grad + i * v : nullptr;
      if (labels[i] == ignore_index) {
        if (grad_row != nullptr)
          for (int64_t j = 0; j < v; ++j) grad_row[j] = 0.0f;
        return 0.0;
      }
      return cross_entropy_row(grad_row, row, v, labels[i], smooth, off, per_row);
    });
    *loss = static_cast<float>(total * per_row);
    return SEQ4J_OK;
  });
}

int seq4j_bce_with_logits_loss(float *loss, float *grad, const float *logits, const float *target,
                               int64_t n) {
  return guarded(__func__, [&] {
    check_loss_arguments(loss, n);
    if (n == 0) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n must be >= 1 for a mean, got 0");
    seq4j::require_pointer("logits", logits, n);
    seq4j::require_pointer("target", target, n);
    seq4j::use_configured_threads();
    const double scale = 1.0 / static_cast<double>(n);
    // fixed_order_sum's chunks and order, each chunk one call of the ISA's copy
    const BceChunk chunk_sum = bce_chunk_copy();
    const int64_t chunks = (n + seq4j::kSumChunk - 1) / seq4j::kSumChunk;
    std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = c * seq4j::kSumChunk;
      partial[static_cast<size_t>(c)] =
          chunk_sum(grad, logits, target, begin, std::min(n, begin + seq4j::kSumChunk), scale);
    }
    double sum = 0;
    for (double p : partial) sum += p;
    *loss = static_cast<float>(sum * scale);
    return SEQ4J_OK;
  });
}

}  // extern "C"
