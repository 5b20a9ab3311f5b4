// Inverted dropout of a tensor (the recurrent layers' dropout between layers, the Transformer's):
// out[i] = x[i] * keep_i / (1 - p), keep_i from the generator of ops/dropout.h, specified in seq4j.h.
#include "core/error.h"
#include "core/runtime.h"
#include "ops/dropout.h"
#include "seq4j.h"

using seq4j::fail;
using seq4j::guarded;

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
#pragma omp parallel for simd if (n >= (1 << 16))
    for (int64_t i = 0; i < n; ++i)
      out[i] = seq4j::dropout_keep(key, static_cast<uint64_t>(i), threshold) ? x[i] * scale : 0.0f;
    return SEQ4J_OK;
  });
}

}  // extern "C"
