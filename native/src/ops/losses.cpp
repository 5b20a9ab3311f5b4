// Losses, each computing the mean loss and (optionally) its gradient in one pass, as llm.c fuses
// softmax and cross-entropy: the forward already holds everything the backward needs.
#include <algorithm>
#include <cmath>

#include "core/error.h"
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
    const double total = seq4j::fixed_order_sum(m, rows_per_chunk, m * v >= kParallelMin, [&](int64_t i) {
      const float *row = logits + i * v;
      float *grad_row = grad != nullptr ? grad + i * v : nullptr;
      if (labels[i] == ignore_index) {
        if (grad_row != nullptr)
          for (int64_t j = 0; j < v; ++j) grad_row[j] = 0.0f;
        return 0.0;
      }
      // log-softmax with the maximum subtracted: log p_j = x_j - max - log Σ exp(x_k - max)
      float max = row[0];
      for (int64_t j = 1; j < v; ++j) max = std::fmax(max, row[j]);
      double sum = 0, sum_logits = 0;
      for (int64_t j = 0; j < v; ++j) {
        sum += std::exp(static_cast<double>(row[j]) - max);
        sum_logits += row[j];
      }
      const double log_sum = std::log(sum) + max;
      // -Σ q_j log p_j with q = (1 - e) one-hot + e / v
      const double label_term = log_sum - row[labels[i]];
      const double uniform_term = log_sum - sum_logits / static_cast<double>(v);
      if (grad_row != nullptr) {
        for (int64_t j = 0; j < v; ++j) {
          const double p = std::exp(static_cast<double>(row[j]) - log_sum);
          const double q = (j == labels[i] ? 1.0 - smooth : 0.0) + off;
          grad_row[j] = static_cast<float>((p - q) * per_row);
        }
      }
      return (1.0 - smooth) * label_term + smooth * uniform_term;
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
    const double sum = seq4j::fixed_order_sum(n, seq4j::kSumChunk, n >= kParallelMin, [&](int64_t i) {
      const double x = logits[i], t = target[i];
      if (grad != nullptr) {
        const double sigmoid = x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
        grad[i] = static_cast<float>((sigmoid - t) * scale);
      }
      // max(x, 0) - x t + log(1 + exp(-|x|)): never overflows
      return std::fmax(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x)));
    });
    *loss = static_cast<float>(sum * scale);
    return SEQ4J_OK;
  });
}

}  // extern "C"
