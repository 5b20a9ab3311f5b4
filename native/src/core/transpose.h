// Register transposes of 16 x 16 float blocks, for the layout conversions that sit next to
// compute kernels (attention's key panels, the recurrent layers' weights and their gradients).
#pragma once

#include <cstdint>

#include "core/cpu.h"
#if SEQ4J_X86_64
#include <immintrin.h>
#endif

namespace seq4j {

#if SEQ4J_X86_64
#define SEQ4J_TRANSPOSE_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), always_inline)) inline

// The 16 rows of src (row stride lds) transposed in registers: pairs, then quadruples of floats,
// then 128-bit lanes interleaved (the maskz forms under an all-ones mask: GCC 12's unmasked
// intrinsics pass an undefined vector that -Werror=maybe-uninitialized rejects).
SEQ4J_TRANSPOSE_AVX512 void transposed_16x16_avx512(__m512 r[16], const float *src, int64_t lds) {
  __m512 t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(0xffff, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(0xffff, r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_shuffle_ps(0xffff, t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_maskz_shuffle_ps(0xffff, t[i], t[i + 2], 0xee);
    r[i + 2] = _mm512_maskz_shuffle_ps(0xffff, t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_maskz_shuffle_ps(0xffff, t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_maskz_shuffle_f32x4(0xffff, r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_maskz_shuffle_f32x4(0xffff, r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_maskz_shuffle_f32x4(0xffff, r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_maskz_shuffle_f32x4(0xffff, r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_maskz_shuffle_f32x4(0xffff, t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_maskz_shuffle_f32x4(0xffff, t[i], t[i + 8], 0xdd);
  }
}

// dst (16 rows of row stride ldd) = the transpose of src (16 rows of 16 floats, row stride lds):
// dst[i * ldd + j] = src[j * lds + i]; with Add, dst[i * ldd + j] += that instead.
template <bool Add>
SEQ4J_TRANSPOSE_AVX512 void transpose_16x16_body(float *dst, int64_t ldd, const float *src,
                                                 int64_t lds) {
  __m512 r[16];
  transposed_16x16_avx512(r, src, lds);
  for (int i = 0; i < 16; ++i) {
    if constexpr (Add) r[i] = _mm512_add_ps(_mm512_loadu_ps(dst + i * ldd), r[i]);
    _mm512_storeu_ps(dst + i * ldd, r[i]);
  }
}
#undef SEQ4J_TRANSPOSE_AVX512

// The same, callable from code compiled for any x86-64 (the caller checks for AVX-512).
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) inline void
transpose_16x16_avx512(float *dst, int64_t ldd, const float *src, int64_t lds) {
  transpose_16x16_body<false>(dst, ldd, src, lds);
}

// dst[c * ldd + r] (+)= src[r * lds + c] for r < rows, c < cols: whole 16 x 16 blocks in
// registers, the ragged edges one float at a time.
template <bool Add>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) inline void
transpose_rect_avx512(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t rows,
                      int64_t cols) {
  const int64_t full_rows = rows / 16 * 16, full_cols = cols / 16 * 16;
  for (int64_t r = 0; r < full_rows; r += 16)
    for (int64_t c = 0; c < full_cols; c += 16)
      transpose_16x16_body<Add>(dst + c * ldd + r, ldd, src + r * lds + c, lds);
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = c < full_cols ? full_rows : 0; r < rows; ++r) {
      if constexpr (Add)
        dst[c * ldd + r] += src[r * lds + c];
      else
        dst[c * ldd + r] = src[r * lds + c];
    }
}
#endif  // SEQ4J_X86_64

}  // namespace seq4j
