// The BLAS backend's fused cell kernels and panel product as a table of functions, one table per
// copy of cell_kernels.inc (cell_kernels.cpp compiles it once per instruction set); kernels()
// returns the table of the copy that the ISA switch (core/cpu.h) selects.
#pragma once

#include <cstdint>

#include "core/cpu.h"

namespace seq4j {

// Weight rows per panel of the packed recurrent weights.
constexpr int kPanel = kPanelWidth;

struct CellKernels {
  void (*lstm_forward)(float *gates, float *cell, float *hidden, const float *bias,
                       const float *peephole, const float *c_prev, int64_t h_size, int64_t j0,
                       int64_t j1);
  void (*lstm_backward)(float *d_gates, float *d_cell, const float *d_hidden, const float *gates,
                        const float *cell, const float *c_prev, const float *peephole,
                        int64_t h_size, int64_t j0, int64_t j1);
  void (*gru_forward)(float *gates, float *recurrent_n, float *hidden, const float *recurrent,
                      const float *bias_ih, const float *bias_hh, const float *h_prev,
                      int64_t h_size, int64_t j0, int64_t j1);
  void (*gru_backward)(float *d_gates_input, float *d_gates_recurrent, float *d_h_direct,
                       const float *d_hidden, const float *gates, const float *recurrent_n,
                       const float *h_prev, int64_t h_size, int64_t j0, int64_t j1);
  void (*rnn_forward)(float *gates, float *hidden, const float *bias, bool relu, int64_t j0,
                      int64_t j1);
  void (*rnn_backward)(float *d_gates, const float *d_hidden, const float *gates, bool relu,
                       int64_t j0, int64_t j1);
  void (*panel_product)(float *out, const float *panel, const float *x, int64_t ldx, int64_t k,
                        int64_t rows);
  // The same product on a bfloat16 panel and bfloat16 inputs (pairs of kk per 32-bit lane, the
  // even kk in the low half, for both; x_pairs has row stride ld_pairs; cell_kernels.inc).
  void (*panel_product_bf16)(float *out, const uint16_t *panel, const uint32_t *x_pairs,
                             int64_t ld_pairs, int64_t k, int64_t rows);
};

// The copy selected now (seq4j_select_kernels); read it once per call, not per element.
const CellKernels &kernels();

}  // namespace seq4j
