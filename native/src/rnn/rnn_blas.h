// What the BLAS backend's forward and backward through time (rnn_blas.cpp) and its streaming step
// (rnn_step.cpp) share: the split of the hidden units across threads, weights packed in panels for
// the register-tiled products, and the step on weights packed for matrix-vector work, which the
// forward runs step by step for small-batch inference.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "rnn/cell_kernels.h"
#include "rnn/recurrent.h"

namespace seq4j {

// The hidden units [begin, end) of thread `part` of `parts`, in whole panels (kPanel units) where
// the size allows, so each thread's slice of a row starts on a cache line and a panel's products
// stay with one thread.
inline void split(int64_t size, int part, int parts, int64_t *begin, int64_t *end) {
  const int64_t blocks = (size + kPanel - 1) / kPanel;
  const int64_t per = blocks / parts, extra = blocks % parts;
  const int64_t first = part * per + std::min<int64_t>(part, extra);
  const int64_t count = per + (part < extra ? 1 : 0);
  *begin = std::min(size, first * kPanel);
  *end = std::min(size, (first + count) * kPanel);
}

// A weight matrix packed once for the many products of a recurrence: out (n, cols) = x (n, k) * B,
// where B is W^T (transposed: W is (cols, k) row-major, as PyTorch stores weight_hh) or W itself
// ((k, cols)). Columns come in blocks of kPanel, each stored k-major (panel[kk * kPanel + lane]),
// the layout of the register-tiled panel_product; sgemm would re-pack W at every step.
struct PanelMatrix {
  int64_t k = 0, cols = 0;
  std::vector<float> panels;

  void pack(const float *w, int64_t k_size, int64_t col_count, bool transposed) {
    k = k_size;
    cols = col_count;
    const int64_t blocks = (cols + kPanel - 1) / kPanel;
    panels.resize(blocks * k * kPanel);
    float *data = panels.data();
#pragma omp parallel for schedule(static) if (blocks * k * kPanel > (1 << 16))
    for (int64_t b = 0; b < blocks; ++b) {
      float *panel = data + b * k * kPanel;
      for (int64_t kk = 0; kk < k; ++kk)
        for (int lane = 0; lane < kPanel; ++lane) {
          const int64_t c = b * kPanel + lane;
          panel[kk * kPanel + lane] =
              c >= cols ? 0.0f : transposed ? w[c * k + kk] : w[kk * cols + c];
        }
    }
  }

  // out[i * ldo + c] (+)= (x B)[i][c] for the columns [c0, c1). scratch holds n * kPanel floats.
  void product(const CellKernels &kernels, float *out, int64_t ldo, const float *x, int64_t ldx,
               int64_t n, int64_t c0, int64_t c1, bool accumulate, float *scratch) const {
    for (int64_t b = c0 / kPanel; c0 < c1 && b * kPanel < c1; ++b) {
      kernels.panel_product(scratch, panels.data() + b * k * kPanel, x, ldx, k, n);
      const int64_t first = std::max(c0, b * kPanel), last = std::min(c1, b * kPanel + kPanel);
      for (int64_t i = 0; i < n; ++i) {
        float *row = out + i * ldo;
        const float *value = scratch + i * kPanel - b * kPanel;
        if (accumulate)
          for (int64_t c = first; c < last; ++c) row[c] += value[c];
        else
          for (int64_t c = first; c < last; ++c) row[c] = value[c];
      }
    }
  }
};

// Batches above this take the GEMM route of the full forward instead of the panels.
constexpr int64_t kStepPanelMaxBatch = 8;

// The weights of one direction packed for matrix-vector work (rnn_step.cpp).
struct StepWeights;

// The packed weights of each direction, re-packed when the caller's weights_version changes.
class PackedStepWeights {
 public:
  std::shared_ptr<StepWeights> get(const RecurrentSizes &s, const seq4j_rnn_weights &w,
                                   int64_t direction, int64_t version);
  // SEQ4J_STEP_WEIGHTS_*: the next get re-packs in this storage when it differs.
  void set_storage(int32_t storage);

 private:
  struct Entry {
    std::shared_ptr<StepWeights> packed;
    int64_t version = -1;
  };
  std::mutex mutex_;
  Entry entries_[2];
  bool bf16_ = false;
};

// One step of one direction on packed weights, for n <= kStepPanelMaxBatch samples: h (n, Hout)
// and c (n, H) are read and overwritten in place. One parallel region; each thread owns blocks of
// 16 hidden units and runs the products and the cell on them back to back.
void step_packed(const RecurrentSizes &s, const StepWeights &pw, float *h, float *c,
                 const float *input, int64_t n);

}  // namespace seq4j
