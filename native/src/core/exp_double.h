// e^x in double in a form compilers vectorise (no libm call), for the elementwise kernels that
// need exp at double precision (the GELUs, the softmax of cross-entropy).
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
  int64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  int64_t kround_bits;
  std::memcpy(&kround_bits, &kRound, sizeof kround_bits);
  const int64_t scale_bits = (bits - kround_bits + 1023) << 52;
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}


}  // namespace seq4j
