// OpenBLAS's sgemm as seq4j uses it: single-threaded per call, split by seq4j across its OpenMP
// pool (see core/runtime.h for why OpenBLAS keeps no threads of its own). Row-major throughout.
#pragma once

#include <cstdint>

namespace seq4j {

// c(m, n) = alpha * op(a) * op(b) + beta * c on the calling thread, with explicit leading
// dimensions; m or n of 0 does nothing.
void sgemm_block(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                 int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, float alpha,
                 float beta);

// The same product on contiguous operands, split across the pool when it is big enough (and run
// on the calling thread when called from inside a parallel region).
void matmul_blas(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                 bool trans_a, bool trans_b, float alpha, float beta);

// out (rows, out_features) = x (rows, in) · weightᵀ + bias (bias may be null), weight stored
// (out_features, in) as PyTorch's Linear; backend as seq4j_matmul's.
void linear(float *out, const float *x, const float *weight, const float *bias, int64_t rows,
            int64_t in, int64_t out_features, int32_t backend);

}  // namespace seq4j
