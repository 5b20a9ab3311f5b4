// Inverted dropout of a tensor (the recurrent layers' dropout between layers, the Transformer's):
// out[i] = x[i] * keep_i / (1 - p), keep_i from the generator of ops/dropout.h, specified in seq4j.h.
#include <algorithm>

#include "core/cpu.h"
#include "core/error.h"
#include "core/runtime.h"
#include "ops/dropout.h"
#include "seq4j.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
// The mask's draws per element in vectors, compiled once per ISA: the portable copy has no
// 64-bit vector multiply (SSE2), so splitmix64 ran one element at a time (8 Mi elements 7.6 ms,
// three times a copy); AVX-512DQ multiplies eight at once.
__attribute__((always_inline)) inline void dropout_run_body(float *out, const float *x,
                                                           int64_t count, uint64_t key,
                                                           uint64_t first_index,
                                                           uint64_t threshold, float scale) {
#pragma omp simd
  for (int64_t c = 0; c < count; ++c)
    out[c] = seq4j::dropout_keep(key, first_index + static_cast<uint64_t>(c), threshold)
                 ? x[c] * scale
                 : 0.0f;
}
void dropout_run_portable(float *o, const float *x, int64_t n, uint64_t k, uint64_t first,
                          uint64_t t, float s) {
  dropout_run_body(o, x, n, k, first, t, s);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) void dropout_run_avx2(float *o, const float *x, int64_t n,
                                                          uint64_t k, uint64_t first, uint64_t t,
                                                          float s) {
  dropout_run_body(o, x, n, k, first, t, s);
}
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) void dropout_run_avx512(
    float *o, const float *x, int64_t n, uint64_t k, uint64_t first, uint64_t t, float s) {
  dropout_run_body(o, x, n, k, first, t, s);
}
#endif
// seq4j_dropout's elements per parallel task
constexpr int64_t kDropoutChunk = 16384;
}  // namespace

namespace seq4j {
void dropout_run(float *out, const float *x, int64_t count, uint64_t key, uint64_t first_index,
                 uint64_t threshold, float scale) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512)
    return dropout_run_avx512(out, x, count, key, first_index, threshold, scale);
  if (use_avx2()) return dropout_run_avx2(out, x, count, key, first_index, threshold, scale);
#endif
  dropout_run_portable(out, x, count, key, first_index, threshold, scale);
}
}  // namespace seq4j

extern "C" {

int seq4j_dropout(float *out, const float *x, int64_t n, float p, int64_t seed) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("out", out, n);
    seq4j::require_pointer("x", x, n);
    if (!(p >= 0.0f && p < 1.0f)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "p must be in [0, 1), got ", p);
    seq4j::use_configured_threads();
    const float scale = 1.0f / (1.0f - p);
    const uint64_t threshold = seq4j::dropout_threshold(p);
    const uint64_t key = seq4j::dropout_key(seed);
    const int64_t chunks = (n + kDropoutChunk - 1) / kDropoutChunk;
#pragma omp parallel for schedule(static) if (n >= (1 << 16))
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t begin = c * kDropoutChunk;
      seq4j::dropout_run(out + begin, x + begin, std::min(kDropoutChunk, n - begin), key,
                         static_cast<uint64_t>(begin), threshold, scale);
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
