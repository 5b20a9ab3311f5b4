// Parameter updates (SGD with momentum and Nesterov, Adam, AdamW) and the reductions behind
// gradient clipping. Each update is one pass over a parameter, its gradient and its state.
#include <cmath>

#include "core/error.h"
#include "core/fixed_order_sum.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
constexpr int64_t kParallelMin = int64_t{1} << 15;

void require_finite(const char *name, float value) {
  if (!std::isfinite(value)) fail(SEQ4J_ERR_INVALID_ARGUMENT, name, " must be finite, got ", value);
}
}  // namespace

extern "C" {

int seq4j_sgd_step(float *param, float *velocity, const float *grad, int64_t n, float lr,
                   float momentum, float dampening, float weight_decay, int32_t nesterov,
                   int32_t first_step) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("param", param, n);
    seq4j::require_pointer("grad", grad, n);
    require_finite("lr", lr);
    require_finite("momentum", momentum);
    require_finite("weight_decay", weight_decay);
    if (momentum != 0.0f) seq4j::require_pointer("velocity", velocity, n);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      float g = grad[i] + weight_decay * param[i];
      if (momentum != 0.0f) {
        const float v = first_step ? g : momentum * velocity[i] + (1.0f - dampening) * g;
        velocity[i] = v;
        g = nesterov ? g + momentum * v : v;
      }
      param[i] -= lr * g;
    }
    return SEQ4J_OK;
  });
}

int seq4j_adam_step(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                    float beta1, float beta2, float eps, float weight_decay, int32_t decoupled,
                    int64_t step) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("param", param, n);
    seq4j::require_pointer("m", m, n);
    seq4j::require_pointer("v", v, n);
    seq4j::require_pointer("grad", grad, n);
    if (step < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "step must be >= 1, got ", step);
    if (!(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "beta1 and beta2 must be in [0, 1), got ", beta1, " and ", beta2);
    require_finite("lr", lr);
    require_finite("eps", eps);
    require_finite("weight_decay", weight_decay);
    seq4j::use_configured_threads();
    const float correction1 = 1.0f - static_cast<float>(std::pow(static_cast<double>(beta1), static_cast<double>(step)));
    const float correction2 = 1.0f - static_cast<float>(std::pow(static_cast<double>(beta2), static_cast<double>(step)));
    const float step_size = lr / correction1;
    const float root_correction2 = std::sqrt(correction2);
    const float shrink = decoupled ? 1.0f - lr * weight_decay : 1.0f;
    const float coupled_decay = decoupled ? 0.0f : weight_decay;
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float g = grad[i] + coupled_decay * param[i];
      const float mi = beta1 * m[i] + (1.0f - beta1) * g;
      const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      param[i] = param[i] * shrink - step_size * mi / (std::sqrt(vi) / root_correction2 + eps);
    }
    return SEQ4J_OK;
  });
}

int seq4j_sum_squares(double *out, const float *x, int64_t n) {
  return guarded(__func__, [&] {
    if (out == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "out is NULL");
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
    // in fixed chunks, not reduction(+): the same bits for any thread count (fixed_order_sum.h)
    *out = seq4j::fixed_order_sum(n, seq4j::kSumChunk, n >= kParallelMin, [&](int64_t i) {
      return static_cast<double>(x[i]) * x[i];
    });
    return SEQ4J_OK;
  });
}

int seq4j_clamp(float *x, float clip, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("x", x, n);
    if (!(clip >= 0.0f) || !std::isfinite(clip))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "clip must be finite and >= 0, got ", clip);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) x[i] = std::fmin(std::fmax(x[i], -clip), clip);
    return SEQ4J_OK;
  });
}

}  // extern "C"
