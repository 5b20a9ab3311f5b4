// The copies of the cell kernels (cell_kernels.inc), one per instruction set, and the table the
// ISA switch selects. On x86-64: AVX-512, AVX2 + FMA and the baseline; elsewhere only the
// baseline, the portable C++ that the compiler vectorizes for that architecture.
#include "rnn/cell_kernels.h"

#include <cstring>

#if SEQ4J_X86_64
#include <immintrin.h>
#endif

#include "core/fast_exp.h"

namespace seq4j {

// One copy of the kernels per instruction set; the pragmas apply to everything in the include.
#if SEQ4J_X86_64
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
namespace cell_avx512 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace cell_avx2 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx2
#pragma GCC pop_options
#endif  // SEQ4J_X86_64

namespace cell_baseline {
#include "rnn/cell_kernels.inc"
}  // namespace cell_baseline

#if SEQ4J_X86_64
// The bf16 step product on AVX512_BF16: one vdpbf16ps multiplies a row of 16 panel lanes by a
// broadcast pair of inputs and adds both products, where the copy in cell_kernels.inc needs a
// shift, a mask and two FMAs (the step was bound by those instructions, not by its memory:
// README, "Design notes"). vdpbf16ps flushes denormal inputs and results to zero and adds the
// odd product before the even one, so its sums may differ from the other copies' in the last
// bits. Rows samples one after the other (a panel of depth 512 is 16 KiB and stays in L1);
// eight accumulators cover the instruction's latency.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16"))) void panel_product_bf16_dot(
    float *out, const uint16_t *panel, const uint32_t *x, int64_t ldx, int64_t k, int64_t rows) {
  constexpr int kChains = 8;
  const int64_t pairs = k / 2;  // whole pairs; an odd k's last one after
  for (int64_t r = 0; r < rows; ++r) {
    const uint32_t *xr = x + r * ldx;
    __m512 sum[kChains];
    for (int c = 0; c < kChains; ++c) sum[c] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + kChains <= pairs; p += kChains)
      for (int c = 0; c < kChains; ++c)
        sum[c] = _mm512_dpbf16_ps(sum[c],
                                  (__m512bh)_mm512_loadu_si512(panel + (p + c) * kPanel * 2),
                                  (__m512bh)_mm512_set1_epi32(static_cast<int>(xr[p + c])));
    for (; p < pairs; ++p)
      sum[0] = _mm512_dpbf16_ps(sum[0], (__m512bh)_mm512_loadu_si512(panel + p * kPanel * 2),
                                (__m512bh)_mm512_set1_epi32(static_cast<int>(xr[p])));
    if (k % 2 != 0)  // its weight pad is 0 and its odd input may be anything, NaN included
      sum[1] = _mm512_dpbf16_ps(sum[1], (__m512bh)_mm512_loadu_si512(panel + pairs * kPanel * 2),
                                (__m512bh)_mm512_set1_epi32(static_cast<int>(xr[pairs] & 0xffffu)));
    __m512 total = sum[0];
    for (int c = 1; c < kChains; ++c) total = _mm512_add_ps(total, sum[c]);
    _mm512_storeu_ps(out + r * kPanel, total);
  }
}

const CellKernels cell_avx512_bf16_kernels = [] {
  CellKernels k = cell_avx512::kernels;
  k.panel_product_bf16 = panel_product_bf16_dot;
  return k;
}();
#endif  // SEQ4J_X86_64

const CellKernels &kernels() {
  switch (active_isa()) {
#if SEQ4J_X86_64
    case Isa::kAvx512:
      return cpu_has_avx512_bf16() ? cell_avx512_bf16_kernels : cell_avx512::kernels;
    case Isa::kAvx2: return cell_avx2::kernels;
#endif
    default: return cell_baseline::kernels;
  }
}

}  // namespace seq4j
