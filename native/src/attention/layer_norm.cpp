// Layer normalisation over the last dimension, forward and backward side by side; the forward
// saves exactly what the backward needs: each row's mean and reciprocal standard deviation.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
// The backward's parameter sums run over blocks of this many rows (see there).
constexpr int64_t kRowsPerBlock = 64;
// Independent partial sums per row reduction.
constexpr int kLanes = 8;
}  // namespace

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
    const bool parameters = dgamma != nullptr || dbeta != nullptr;
    // The parameter gradients are sums over rows. Summing one column at a time would stride
    // through memory a row apart; instead each block of kRowsPerBlock rows sums its own rows
    // into a partial (in the same pass that writes dx), and the partials are added in block
    // order: the blocks depend on the shape alone, so the bits do not depend on the threads.
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    std::vector<double> partial(parameters ? static_cast<size_t>(blocks * 2 * cols) : 0);
    // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)) with g = dout · gamma, x̂ the normalised input
#pragma omp parallel for schedule(static) if (rows * cols >= (1 << 15))
    for (int64_t block = 0; block < blocks; ++block) {
      double *sum_gx = parameters ? partial.data() + block * 2 * cols : nullptr;
      double *sum_d = parameters ? sum_gx + cols : nullptr;
      if (parameters) std::fill(sum_gx, sum_gx + 2 * cols, 0.0);
      const int64_t last = std::min(rows, (block + 1) * kRowsPerBlock);
      for (int64_t r = block * kRowsPerBlock; r < last; ++r) {
        const float *row = x + r * cols;
        const float *d = dout + r * cols;
        const float m = mean[r], s = rstd[r];
        // kLanes independent partial sums (a fixed order, and a loop the compiler vectorises)
        double lanes_g[kLanes] = {}, lanes_gx[kLanes] = {};
        int64_t c = 0;
        for (; c + kLanes <= cols; c += kLanes) {
          for (int j = 0; j < kLanes; ++j) {
            const double g = static_cast<double>(d[c + j]) * (gamma ? gamma[c + j] : 1.0f);
            const double xhat = static_cast<double>((row[c + j] - m) * s);
            lanes_g[j] += g;
            lanes_gx[j] += g * xhat;
          }
        }
        double mean_g = 0, mean_gx = 0;
        for (int j = 0; j < kLanes; ++j) {
          mean_g += lanes_g[j];
          mean_gx += lanes_gx[j];
        }
        for (; c < cols; ++c) {
          const double g = static_cast<double>(d[c]) * (gamma ? gamma[c] : 1.0f);
          const double xhat = static_cast<double>((row[c] - m) * s);
          mean_g += g;
          mean_gx += g * xhat;
        }
        const float mg = static_cast<float>(mean_g / static_cast<double>(cols));
        const float mgx = static_cast<float>(mean_gx / static_cast<double>(cols));
        float *out = dx + r * cols;
        for (c = 0; c < cols; ++c) {
          const float g = d[c] * (gamma ? gamma[c] : 1.0f);
          const float xhat = (row[c] - m) * s;
          out[c] = s * (g - mg - xhat * mgx);
        }
        if (parameters) {
          for (c = 0; c < cols; ++c) {
            sum_gx[c] += static_cast<double>(d[c]) * static_cast<double>((row[c] - m) * s);
            sum_d[c] += d[c];
          }
        }
      }
    }
    if (parameters) {
#pragma omp parallel for schedule(static) if (blocks * cols >= (1 << 15))
      for (int64_t c = 0; c < cols; ++c) {
        double g = 0, b = 0;
        for (int64_t block = 0; block < blocks; ++block) {
          g += partial[block * 2 * cols + c];
          b += partial[block * 2 * cols + cols + c];
        }
        if (dgamma != nullptr) dgamma[c] += static_cast<float>(g);
        if (dbeta != nullptr) dbeta[c] += static_cast<float>(b);
      }
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
