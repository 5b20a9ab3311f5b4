// The one fast e^x of seq4j's kernels: Cephes' expf. x = n ln 2 + r with n the integer nearest
// x log2(e) and |r| <= ln(2) / 2 (ln 2 split in a high and a low part, so r is exact to a float);
// e^r = 1 + r + r^2 p(r) with p of degree 5; times 2^n built in the exponent bits. About 1 ulp
// for x in [kMin, kMax]; inputs outside are clamped (the vector forms give 0 below kMin;
// exp16_avx512 overflows above kMax instead). NaN in gives NaN out in every form (the clamps keep
// a NaN: a comparison with NaN is false, and exp8_avx2 puts x second in max/min, whose second
// operand is what they return when either is NaN), so softmax and the recurrent cells propagate a
// NaN as std::exp does instead of clamping it to e^kMin.
//
// Three forms of the same algorithm and constants:
//  - exp_approx, scalar, which each copy of the cell kernels (rnn/cell_kernels.inc) inlines into
//    its `#pragma omp simd` loops, so the compiler vectorizes it at that copy's width; it rounds
//    n half up, floor(x log2(e) + 0.5);
//  - exp8_avx2, eight lanes with FMA, and exp16_avx512, the same steps on sixteen, for
//    attention's softmax (attention/attention.cpp); they round n half to even by adding
//    1.5 * 2^23 (no round or convert instruction), and give the same bits lane for lane in
//    [kMin, kMax]. They agree with exp_approx except where x log2(e) is exactly halfway between
//    integers.
#pragma once

#include <cstdint>

#include "core/cpu.h"

#if SEQ4J_X86_64
#include <immintrin.h>
#endif

namespace seq4j {
namespace fast_exp {

constexpr float kMin = -87.3f;  // e^kMin is near the smallest normal float
constexpr float kMax = 88.3f;   // e^kMax is near the largest float
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2High = 0.693359375f;  // ln 2 = kLn2High + kLn2Low
constexpr float kLn2Low = -2.12194440e-4f;
// p(r) = ((((kP0 r + kP1) r + kP2) r + kP3) r + kP4) r + kP5
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f,
                kP3 = 4.1665795894e-2f, kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

}  // namespace fast_exp

// e^x, scalar and branch-free. always_inline: the vectorized loops of every copy of the cell
// kernels must see its body (it takes on the copy's instruction set there).
__attribute__((always_inline)) inline float exp_approx(float x) {
  using namespace fast_exp;
  x = x < kMin ? kMin : x;
  x = x > kMax ? kMax : x;
  const float n = __builtin_floorf(x * kLog2e + 0.5f);
  const float r = x - n * kLn2High + n * -kLn2Low;
  const float z = r * r;
  const float y = (((((kP0 * r + kP1) * r + kP2) * r + kP3) * r + kP4) * r + kP5) * z + r + 1.0f;
  // unsigned: no signed-shift overflow when n is NaN (its conversion gives INT32_MIN on x86)
  const uint32_t bits = (static_cast<uint32_t>(static_cast<int32_t>(n)) + 127u) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, sizeof scale);
  return y * scale;
}

#if SEQ4J_X86_64
// e^x on eight lanes, 0 where x < kMin, NaN where x is NaN.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp8_avx2(__m256 x) {
  using namespace fast_exp;
  const __m256 low = _mm256_set1_ps(kMin), high = _mm256_set1_ps(kMax);
  // x·log2(e) + 1.5·2²³ rounds to an integer n in the low mantissa bits; with 127 added there too
  // they are n's exponent field already
  const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
  const __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
  // x second: max/min return their second operand when either is NaN, so a NaN stays NaN
  const __m256 clamped = _mm256_min_ps(high, _mm256_max_ps(low, x));
  const __m256 biased = _mm256_fmadd_ps(clamped, _mm256_set1_ps(kLog2e), magic);
  const __m256 n = _mm256_sub_ps(biased, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2High), clamped);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Low), r);
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_castps_si256(biased), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(exponent)));
}

// exp8_avx2's steps on sixteen lanes, with AVX-512's vscalefps for the product by 2^n: no clamps
// or exponent shift (3 of the 17 steps; a sixth of the softmax's time). It gives exp8_avx2's
// bits for x in [kMin, kMax] (checked for 2·10^6 points of it), 0 below kMin and for -inf (the
// mask: a comparison that is true for NaN, which stays NaN through the steps), and overflows to
// +inf above kMax as e^x does instead of clamping; attention's inputs, scores less their row's
// max or log-sum-exp, are <= 0 there.
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"), always_inline)) inline __m512
exp16_avx512(__m512 x) {
  using namespace fast_exp;
  // x·log2(e) + 1.5·2²³ rounds to the integer n in the low mantissa bits
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kMin), _CMP_NLT_UQ);
  const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), magic), magic);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Low), r);
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(keep, p, n);
}
#endif

}  // namespace seq4j
