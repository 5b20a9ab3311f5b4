// Layer normalisation over the last dimension, forward and backward side by side; the forward
// saves exactly what the backward needs: each row's mean and reciprocal standard deviation.
#include <cmath>

#include "core/error.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

extern "C" {

int seq4j_layer_norm_forward(float *out, float *mean, float *rstd, const float *x,
                             const float *gamma, const float *beta, int64_t rows, int64_t cols,
                             float eps) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("rows", rows);
    if (cols < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "cols must be >= 1, got ", cols);
    seq4j::require_pointer("out", out, rows * cols);
    seq4j::require_pointer("x", x, rows * cols);
    seq4j::require_pointer("mean", mean, rows);
    seq4j::require_pointer("rstd", rstd, rows);
    if (!(eps > 0.0f)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "eps must be > 0, got ", eps);
    seq4j::use_configured_threads();
#pragma omp parallel for if (rows * cols >= (1 << 15))
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = x + r * cols;
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += row[c];
      const double m = sum / static_cast<double>(cols);
      double variance = 0;  // two passes: no cancellation for rows far from zero
      for (int64_t c = 0; c < cols; ++c) variance += (row[c] - m) * (row[c] - m);
      variance /= static_cast<double>(cols);
      const float s = static_cast<float>(1.0 / std::sqrt(variance + eps));
      mean[r] = static_cast<float>(m);
      rstd[r] = s;
      float *o = out + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const float normalised = (row[c] - mean[r]) * s;
        o[c] = normalised * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
      }
    }
    return SEQ4J_OK;
  });
}

int seq4j_layer_norm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                              const float *x, const float *mean, const float *rstd,
                              const float *gamma, int64_t rows, int64_t cols) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("rows", rows);
    if (cols < 1) fail(SEQ4J_ERR_INVALID_ARGUMENT, "cols must be >= 1, got ", cols);
    seq4j::require_pointer("dx", dx, rows * cols);
    seq4j::require_pointer("dout", dout, rows * cols);
    seq4j::require_pointer("x", x, rows * cols);
    seq4j::require_pointer("mean", mean, rows);
    seq4j::require_pointer("rstd", rstd, rows);
    seq4j::use_configured_threads();
    // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)) with g = dout · gamma, x̂ the normalised input
#pragma omp parallel for if (rows * cols >= (1 << 15))
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = x + r * cols;
      const float *d = dout + r * cols;
      double mean_g = 0, mean_gx = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double g = d[c] * (gamma ? gamma[c] : 1.0f);
        const double xhat = (row[c] - mean[r]) * rstd[r];
        mean_g += g;
        mean_gx += g * xhat;
      }
      mean_g /= static_cast<double>(cols);
      mean_gx /= static_cast<double>(cols);
      float *out = dx + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const double g = d[c] * (gamma ? gamma[c] : 1.0f);
        const double xhat = (row[c] - mean[r]) * rstd[r];
        out[c] = static_cast<float>(rstd[r] * (g - mean_g - xhat * mean_gx));
      }
    }
    // parameter gradients: sums over rows, one column per iteration so threads never collide
    if (dgamma != nullptr || dbeta != nullptr) {
#pragma omp parallel for if (rows * cols >= (1 << 15))
      for (int64_t c = 0; c < cols; ++c) {
        double sum_g = 0, sum_b = 0;
        for (int64_t r = 0; r < rows; ++r) {
          const float d = dout[r * cols + c];
          sum_g += d * (x[r * cols + c] - mean[r]) * rstd[r];
          sum_b += d;
        }
        if (dgamma != nullptr) dgamma[c] += static_cast<float>(sum_g);
        if (dbeta != nullptr) dbeta[c] += static_cast<float>(sum_b);
      }
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
