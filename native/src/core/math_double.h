// exp and log1p in double in forms compilers vectorise (no libm calls), for the elementwise kernels
// that need them at double precision (the GELUs, cross-entropy's softmax, BCE with logits).
#pragma once

#include <cstdint>
#include <cstring>

namespace seq4j {

// e^x, relative error about 2e-16, for x clamped to [-708, 710] (below, results that are 0 in
// float anyway; above, +inf, as e^x is in double past 709.78; NaN passes through): x = n ln 2 + r
// with |r| <= ln 2 / 2, a degree-12 Taylor polynomial for e^r, and 2^n put into the exponent bits.
__attribute__((always_inline)) inline double exp_d(double x) {
  constexpr double kLog2e = 1.4426950408889634, kLn2Hi = 0.6931471803691238,
                   kLn2Lo = 1.9082149292705877e-10, kRound = 6755399441055744.0;  // 1.5 · 2^52
  x = x < -708.0 ? -708.0 : x;
  x = x > 710.0 ? 710.0 : x;
  const double shifted = x * kLog2e + kRound;  // n in the low mantissa bits
  const double n = shifted - kRound;
  const double r = (x - n * kLn2Hi) - n * kLn2Lo;
  double p = 1.0 / 479001600.0;  // 1/12!
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // unsigned: wraps where x is NaN (whose result is NaN from p anyway) instead of overflowing
  uint64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  uint64_t kround_bits;
  std::memcpy(&kround_bits, &kRound, sizeof kround_bits);
  const uint64_t scale_bits = (bits - kround_bits + 1023) << 52;
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}


// log(1 + y) for 0 <= y < 1e308 (NaN passes through, +inf gives +inf), relative error about 1e-16:
// u = 1 + y = 2^k · m with m in [√½, √2), log m = 2 atanh(f) = 2 (f + f³/3 + ...) with f = (m - 1)
// / (m + 1), |f| <= 0.172, to f^23; then Kahan's correction log(u) · y / (u - 1), exact where u
// rounds to 1 (y below 1e-16, where log1p(y) = y).
__attribute__((always_inline)) inline double log1p_d(double y) {
  const double u = 1.0 + y;
  uint64_t bits;
  std::memcpy(&bits, &u, sizeof bits);
  // k = the exponent of u / √½ rounded down (u >= 1: k >= 0), so that m = u / 2^k lands in [√½,
  // √2); unsigned shifts and k turned into a double through the bits of 2^52 + k, integer
  // operations that AVX2 has in vectors too
  constexpr uint64_t kSqrtHalfBits = 0x3fe6a09e667f3bcdULL;
  const uint64_t k = (bits - kSqrtHalfBits) >> 52;
  const uint64_t m_bits = bits - (k << 52);
  double m;
  std::memcpy(&m, &m_bits, sizeof m);
  constexpr double kTwo52 = 4503599627370496.0;
  uint64_t k_bits;
  std::memcpy(&k_bits, &kTwo52, sizeof k_bits);
  k_bits += k;
  double k_plus;
  std::memcpy(&k_plus, &k_bits, sizeof k_plus);
  const double k_double = k_plus - kTwo52;
  const double f = (m - 1.0) / (m + 1.0);
  const double f2 = f * f;
  double p = 1.0 / 23;
  p = p * f2 + 1.0 / 21;
  p = p * f2 + 1.0 / 19;
  p = p * f2 + 1.0 / 17;
  p = p * f2 + 1.0 / 15;
  p = p * f2 + 1.0 / 13;
  p = p * f2 + 1.0 / 11;
  p = p * f2 + 1.0 / 9;
  p = p * f2 + 1.0 / 7;
  p = p * f2 + 1.0 / 5;
  p = p * f2 + 1.0 / 3;
  p = p * f2 + 1.0;
  constexpr double kLn2 = 0.6931471805599453;
  const double log_u = k_double * kLn2 + 2.0 * f * p;
  const double corrected = u == 1.0 ? y : log_u * (y / (u - 1.0));
  return u == u && u < 1e308 ? corrected : u;  // NaN and +inf as they came
}

}  // namespace seq4j
