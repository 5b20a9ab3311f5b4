// Embedding lookup: forward gathers rows of the table, backward scatter-adds into them.
#include <cstring>

#include "core/error.h"
#include "core/runtime.h"

using seq4j::fail;
using seq4j::guarded;

namespace {
void check_indices(const int64_t *indices, int64_t n, int64_t vocabulary) {
  for (int64_t i = 0; i < n; ++i)
    if (indices[i] < 0 || indices[i] >= vocabulary)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "indices[", i, "] must be in [0, ", vocabulary, "), got ",
           indices[i]);
}
}  // namespace

extern "C" {

int seq4j_embedding_forward(float *out, const float *weight, const int64_t *indices, int64_t n,
                            int64_t vocabulary, int64_t dim) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    if (vocabulary < 1 || dim < 1)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "vocabulary and dim must be >= 1, got ", vocabulary, " and ", dim);
    seq4j::require_pointer("out", out, n * dim);
    seq4j::require_pointer("weight", weight, vocabulary * dim);
    seq4j::require_pointer("indices", indices, n);
    check_indices(indices, n, vocabulary);
    seq4j::use_configured_threads();
#pragma omp parallel for if (n * dim >= (1 << 15))
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out + i * dim, weight + indices[i] * dim, dim * sizeof(float));
    return SEQ4J_OK;
  });
}

int seq4j_embedding_backward(float *dweight, const float *dout, const int64_t *indices, int64_t n,
                             int64_t vocabulary, int64_t dim) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    if (vocabulary < 1 || dim < 1)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "vocabulary and dim must be >= 1, got ", vocabulary, " and ", dim);
    seq4j::require_pointer("dweight", dweight, vocabulary * dim);
    seq4j::require_pointer("dout", dout, n * dim);
    seq4j::require_pointer("indices", indices, n);
    check_indices(indices, n, vocabulary);
    seq4j::use_configured_threads();
    // parallel over columns: repeated indices add into the same row without races
#pragma omp parallel for if (n * dim >= (1 << 15))
    for (int64_t c = 0; c < dim; ++c)
      for (int64_t i = 0; i < n; ++i) dweight[indices[i] * dim + c] += dout[i * dim + c];
    return SEQ4J_OK;
  });
}

}  // extern "C"
