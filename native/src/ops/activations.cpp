// Elementwise activations (ReLU, GELU exact and tanh-approximated), forward and backward.
#include <cmath>

#include "core/error.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
// Elementwise loops run in parallel only when there is enough work to pay for the fork.
constexpr int64_t kParallelMin = int64_t{1} << 15;

void check(int64_t n, const void *a, const char *a_name, const void *b, const char *b_name, int32_t kind) {
  seq4j::require_non_negative("n", n);
  seq4j::require_pointer(a_name, a, n);
  seq4j::require_pointer(b_name, b, n);
  if (kind < SEQ4J_ACTIVATION_RELU || kind > SEQ4J_ACTIVATION_GELU_TANH)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "kind must be 0, 1 or 2, got ", kind);
}
// ReLU's loops live outside the guarded lambdas: pointers captured by reference are loads the
// vectoriser cannot hoist, and these loops are worth vectors (one select per element).
void relu_forward(float *__restrict out, const float *__restrict x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    out[i] = v < 0.0f ? 0.0f : v;  // relu(NaN) = NaN, as in PyTorch
  }
}

// dout · 0 where x <= 0 (or NaN), not a plain 0: a NaN or inf gradient still shows.
void relu_backward(float *__restrict dx, const float *__restrict dout,
                   const float *__restrict x, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dx[i] = dout[i] * static_cast<float>(x[i] > 0.0f);
}
}  // namespace

extern "C" {

int seq4j_activation_forward(float *out, const float *x, int64_t n, int32_t kind) {
  return guarded(__func__, [&] {
    check(n, out, "out", x, "x", kind);
    seq4j::use_configured_threads();
    // One loop per kind: ReLU's is a plain vector select, the GELUs' call erf/tanh per element.
    if (kind == SEQ4J_ACTIVATION_RELU) {
      relu_forward(out, x, n);
    } else if (kind == SEQ4J_ACTIVATION_GELU) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        out[i] = static_cast<float>(0.5 * v * (1 + std::erf(v * kInvSqrt2)));
      }
    } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        out[i] = static_cast<float>(0.5 * v * (1 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v))));
      }
    }
    return SEQ4J_OK;
  });
}

int seq4j_activation_backward(float *dx, const float *dout, const float *x, int64_t n, int32_t kind) {
  return guarded(__func__, [&] {
    check(n, dx, "dx", dout, "dout", kind);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
    if (kind == SEQ4J_ACTIVATION_RELU) {
      relu_backward(dx, dout, x, n);
    } else if (kind == SEQ4J_ACTIVATION_GELU) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        const double derivative =
            0.5 * (1 + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
        dx[i] = static_cast<float>(dout[i] * derivative);
      }
    } else {
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        const double inner = kSqrt2OverPi * (v + 0.044715 * v * v * v);
        const double t = std::tanh(inner);
        const double derivative =
            0.5 * (1 + t) + 0.5 * v * (1 - t * t) * kSqrt2OverPi * (1 + 3 * 0.044715 * v * v);
        dx[i] = static_cast<float>(dout[i] * derivative);
      }
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
