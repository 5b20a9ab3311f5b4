// The one generator of every dropout mask seq4j draws: seq4j_dropout (ops/dropout.cpp) and the
// attention weights' dropout (attention/attention.cpp). seq4j.h specifies it (the float64
// references in Java reproduce it bit for bit); change neither without the other.
#pragma once

#include <cstdint>

namespace seq4j {

// SplitMix64's output function of z (Steele, Lea and Flood), wrapping arithmetic on 64 bits.
inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The key of a seed: every element's draw depends only on (key, index).
inline uint64_t dropout_key(int64_t seed) { return splitmix64(static_cast<uint64_t>(seed)); }

// Elements whose 24-bit draw is below this are dropped: floor(p * 2^24), p widened to double.
inline uint64_t dropout_threshold(float p) {
  return static_cast<uint64_t>(static_cast<double>(p) * 16777216.0);
}

// Whether element `index` is kept: the top 24 bits of splitmix64(key XOR index) >= threshold.
inline bool dropout_keep(uint64_t key, uint64_t index, uint64_t threshold) {
  return (splitmix64(key ^ index) >> 40) >= threshold;
}

// out[c] = x[c] * scale where element first_index + c is kept (dropout_keep), else 0, for c <
// count; out may equal x. In vectors, compiled once per ISA (ops/dropout.cpp).
void dropout_run(float *out, const float *x, int64_t count, uint64_t key, uint64_t first_index,
                 uint64_t threshold, float scale);

}  // namespace seq4j
