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

void check(int64_t n, const void *a, const char *a_name, const void *b, const char *b_name, int32_t kind) {
  seq4j::require_non_negative("n", n);
  seq4j::require_pointer(a_name, a, n);
  seq4j::require_pointer(b_name, b, n);
  if (kind < SEQ4J_ACTIVATION_RELU || kind > SEQ4J_ACTIVATION_GELU_TANH)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "kind must be 0, 1 or 2, got ", kind);
}
}  // namespace

extern "C" {

int seq4j_activation_forward(float *out, const float *x, int64_t n, int32_t kind) {
  return guarded(__func__, [&] {
    check(n, out, "out", x, "x", kind);
    seq4j::use_configured_threads();
#pragma omp parallel for if (n >= (1 << 15))
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i];
      double y;
      if (kind == SEQ4J_ACTIVATION_RELU)
        y = v < 0 ? 0 : v;  // relu(NaN) = NaN, as in PyTorch
      else if (kind == SEQ4J_ACTIVATION_GELU)
        y = 0.5 * v * (1 + std::erf(v * kInvSqrt2));
      else
        y = 0.5 * v * (1 + std::tanh(kSqrt2OverPi * (v + 0.044715 * v * v * v)));
      out[i] = static_cast<float>(y);
    }
    return SEQ4J_OK;
  });
}

int seq4j_activation_backward(float *dx, const float *dout, const float *x, int64_t n, int32_t kind) {
  return guarded(__func__, [&] {
    check(n, dx, "dx", dout, "dout", kind);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
#pragma omp parallel for if (n >= (1 << 15))
    for (int64_t i = 0; i < n; ++i) {
      const double v = x[i];
      double derivative;
      if (kind == SEQ4J_ACTIVATION_RELU) {
        derivative = v > 0 ? 1 : 0;
      } else if (kind == SEQ4J_ACTIVATION_GELU) {
        derivative = 0.5 * (1 + std::erf(v * kInvSqrt2)) + v * kInvSqrt2Pi * std::exp(-0.5 * v * v);
      } else {
        const double inner = kSqrt2OverPi * (v + 0.044715 * v * v * v);
        const double t = std::tanh(inner);
        derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * kSqrt2OverPi * (1 + 3 * 0.044715 * v * v);
      }
      dx[i] = static_cast<float>(dout[i] * derivative);
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
