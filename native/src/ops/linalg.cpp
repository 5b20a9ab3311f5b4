// Matrix product, the linear layer's product with its bias, and the elementwise vector ops (add,
// scale, axpy, fill).
//
// matmul has two backends: oneDNN's sgemm, and OpenBLAS's sgemm split by seq4j across the OpenMP
// pool (OpenBLAS itself stays single-threaded, see runtime.h). Both compute the same
// row-major c(m, n) = alpha * op(a)(m, k) * op(b)(k, n) + beta * c.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/runtime.h"
#include "dnnl.h"
#include "dnnl.hpp"
#include "ops/gemm.h"
#include "ops/openblas.h"

namespace seq4j {
namespace {

// Below this many multiply-adds a GEMM is not worth splitting across threads.
constexpr int64_t kParallelGemmMinWork = int64_t{1} << 18;
// Column and row blocks handed to threads are multiples of this (a 64-byte cache line).
constexpr int64_t kBlockAlign = 16;

// Elementwise loops run in parallel only when there is enough work to pay for the fork.
constexpr int64_t kParallelElementwiseMin = int64_t{1} << 16;

// Below this many multiply-adds the mirrored weight-gradient product (matmul_onednn) is not
// worth its scratch.
constexpr int64_t kSwappedGemmMinWork = int64_t{1} << 24;

// seq4j_add_column_sums adds this many rows into one partial sum per column.
constexpr int64_t kColumnSumRows = 64;

// The most axes seq4j_permute takes.
constexpr int32_t kMaxPermuteRank = 8;

// Deterministic mode's blocks: the larger output dimension in pieces of this many columns or rows,
// whatever the thread count (a multiple of kBlockAlign).
constexpr int64_t kDeterministicBlock = 256;

// Deterministic mode (seq4j_set_deterministic): c in blocks fixed by the shape alone, each block
// one single-threaded product, so that every element's bits are the same for any thread count.
// gemm(c, a, b, m, n, k, lda, ldb, ldc) computes one block on the calling thread.
template <class Gemm>
void matmul_fixed_blocks(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                         bool trans_a, bool trans_b, Gemm gemm) {
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
  const bool split_columns = n >= m;
  const int64_t extent = split_columns ? n : m;
  const int64_t blocks = (extent + kDeterministicBlock - 1) / kDeterministicBlock;
  const int threads = seq4j::threads();
  // Run from inside a parallel region (the BLAS recurrent backend's callers never are), or with
  // one thread, the blocks run one after the other: the same blocks, the same bits.
  const bool parallel = threads > 1 && blocks > 1 && !omp_in_parallel() &&
                        m * n * k >= kParallelGemmMinWork;
#pragma omp parallel for num_threads(threads) schedule(static, 1) if (parallel)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t begin = block * kDeterministicBlock;
    const int64_t size = std::min(kDeterministicBlock, extent - begin);
    if (split_columns) {
      gemm(c + begin, a, trans_b ? b + begin * k : b + begin, m, size, k, lda, ldb, ldc);
    } else {
      gemm(c + begin * n, trans_a ? a + begin : a + begin * k, b, size, n, k, lda, ldb, ldc);
    }
  }
}

// c (m, n) = alpha · tᵀ + beta · c for t (n, m), in square tiles so that both sides stream
// through the cache; beta = 0 overwrites c without reading it (BLAS's rule: a NaN in c does
// not survive).
void add_transposed(float *c, const float *t, int64_t m, int64_t n, float alpha, float beta) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (m + kTile - 1) / kTile, col_tiles = (n + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) if (m * n >= kParallelElementwiseMin)
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t i_end = std::min(m, (rt + 1) * kTile), j_end = std::min(n, (ct + 1) * kTile);
      for (int64_t i = rt * kTile; i < i_end; ++i) {
        float *row = c + i * n;
        for (int64_t j = ct * kTile; j < j_end; ++j) {
          const float product = alpha * t[j * m + i];
          row[j] = beta == 0.0f ? product : product + beta * row[j];
        }
      }
    }
  }
}

// oneDNN's sgemm splits its work by thread count (and may split k across threads, adding their
// partial sums): deterministic mode runs it on fixed blocks instead, each on one thread (oneDNN
// runs single-threaded inside a parallel region or with a pool of one).
void matmul_onednn(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                   bool trans_a, bool trans_b, float alpha, float beta) {
  auto gemm = [&](float *cc, const float *aa, const float *bb, int64_t mm, int64_t nn, int64_t kk,
                  int64_t lda, int64_t ldb, int64_t ldc) {
    dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', mm, nn, kk, alpha,
                                      aa, lda, bb, ldb, beta, cc, ldc);
    if (status != dnnl_success) fail(SEQ4J_ERR_BACKEND, "oneDNN sgemm failed with status ", status);
  };
  if (deterministic()) {
    std::atomic<int> failed{0};
    matmul_fixed_blocks(c, a, b, m, n, k, trans_a, trans_b,
                        [&](float *cc, const float *aa, const float *bb, int64_t mm, int64_t nn,
                            int64_t kk, int64_t lda, int64_t ldb, int64_t ldc) {
                          // no exception may leave an OpenMP region: remember the status instead
                          dnnl_status_t status =
                              dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', mm, nn, kk,
                                         alpha, aa, lda, bb, ldb, beta, cc, ldc);
                          if (status != dnnl_success) failed.store(static_cast<int>(status));
                        });
    if (failed.load() != 0)
      fail(SEQ4J_ERR_BACKEND, "oneDNN sgemm failed with status ", failed.load());
    return;
  }
  if (trans_a && !trans_b && m > n && m * n * k >= kSwappedGemmMinWork) {
    // c = aᵀ b with c taller than wide (a weight gradient such as (2048, 512) = dyᵀ x): oneDNN's
    // sgemm runs this layout at about 255 GFLOP/s where the mirrored product cᵀ = bᵀ a runs at
    // about 350 on an AVX-512 Xeon (4096 rows; WeightGradientBenchmark), so compute cᵀ
    // into a scratch and add its transpose (m·n more memory traffic against m·n·k work).
    std::unique_ptr<float[]> mirrored(new float[static_cast<size_t>(m * n)]);  // beta 0: no fill
    dnnl_status_t status =
        dnnl_sgemm('T', 'N', n, m, k, 1.0f, b, n, a, m, 0.0f, mirrored.get(), m);
    if (status != dnnl_success) fail(SEQ4J_ERR_BACKEND, "oneDNN sgemm failed with status ", status);
    add_transposed(c, mirrored.get(), m, n, alpha, beta);
    return;
  }
  gemm(c, a, b, m, n, k, trans_a ? m : k, trans_b ? k : n, n);
}

}  // namespace

void sgemm_block(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                 int64_t lda, int64_t ldb, int64_t ldc, bool trans_a, bool trans_b, float alpha,
                 float beta) {
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void matmul_blas(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                 bool trans_a, bool trans_b, float alpha, float beta) {
  constexpr int64_t blas_max = 0x7fffffff;
  if (m > blas_max || n > blas_max || k > blas_max)
    fail(SEQ4J_ERR_UNSUPPORTED, "the BLAS backend takes sizes below 2^31, got m=", m, " n=", n,
         " k=", k);
  if (deterministic()) {
    matmul_fixed_blocks(c, a, b, m, n, k, trans_a, trans_b,
                        [&](float *cc, const float *aa, const float *bb, int64_t mm, int64_t nn,
                            int64_t kk, int64_t lda, int64_t ldb, int64_t ldc) {
                          sgemm_block(cc, aa, bb, mm, nn, kk, lda, ldb, ldc, trans_a, trans_b,
                                      alpha, beta);
                        });
    return;
  }
  const int64_t lda = trans_a ? m : k, ldb = trans_b ? k : n, ldc = n;
  const int threads = seq4j::threads();
  if (threads <= 1 || m * n * k < kParallelGemmMinWork || omp_in_parallel()) {
    sgemm_block(c, a, b, m, n, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    return;
  }
  // Split the larger of the two output dimensions into one block per thread; each thread runs a
  // single-threaded sgemm on its block, so the work shares OpenMP's pool instead of competing
  // with it.
  const bool split_columns = n >= m;
  const int64_t extent = split_columns ? n : m;
  const int64_t per_thread =
      std::max(kBlockAlign, (extent + threads - 1) / threads + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
  const int64_t blocks = (extent + per_thread - 1) / per_thread;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t begin = block * per_thread, size = std::min(per_thread, extent - begin);
    if (split_columns) {
      const float *b_block = trans_b ? b + begin * k : b + begin;
      sgemm_block(c + begin, a, b_block, m, size, k, lda, ldb, ldc, trans_a, trans_b, alpha, beta);
    } else {
      const float *a_block = trans_a ? a + begin : a + begin * k;
      sgemm_block(c + begin * n, a_block, b, size, n, k, lda, ldb, ldc, trans_a, trans_b, alpha,
                  beta);
    }
  }
}

// Copies in (dims, row-major) to out with out's axis i = in's axis perm[i]. Axes of size 1 are
// dropped and out's axes that stay adjacent in in are merged first, so that the common cases
// (heads split from or merged into rows) become copies of contiguous runs.
void permute(float *out, const float *in, int32_t rank, const int64_t *dims, const int32_t *perm,
             int64_t total) {
  int64_t in_strides[kMaxPermuteRank];
  int64_t stride = 1;
  for (int32_t i = rank - 1; i >= 0; --i) {
    in_strides[i] = stride;
    stride *= dims[i];
  }
  int64_t size[kMaxPermuteRank], from[kMaxPermuteRank];  // out's axes: size, stride in in
  int axes = 0;
  for (int32_t i = 0; i < rank; ++i) {
    const int64_t n = dims[perm[i]], s = in_strides[perm[i]];
    if (n == 1) continue;
    if (axes > 0 && from[axes - 1] == s * n) {  // adjacent in in as well: one axis
      size[axes - 1] *= n;
      from[axes - 1] = s;
    } else {
      size[axes] = n;
      from[axes] = s;
      ++axes;
    }
  }
  if (axes == 0 || (axes == 1 && from[0] == 1)) {
    std::memcpy(out, in, static_cast<size_t>(total) * sizeof(float));
    return;
  }
  // the last axis is the inner loop: a contiguous run when its stride in in is 1
  const int64_t inner = size[axes - 1], inner_from = from[axes - 1];
  const int outer_axes = axes - 1;
  const int64_t outer = total / inner;
  const bool parallel = total >= kParallelElementwiseMin && !omp_in_parallel();
#pragma omp parallel if (parallel)
  {
    const int64_t threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t begin = outer * me / threads, end = outer * (me + 1) / threads;
    if (begin < end) {
      int64_t index[kMaxPermuteRank] = {};
      int64_t offset = 0, rest = begin;
      for (int a = outer_axes - 1; a >= 0; --a) {  // begin as a multi-index over the outer axes
        index[a] = rest % size[a];
        rest /= size[a];
        offset += index[a] * from[a];
      }
      for (int64_t o = begin; o < end; ++o) {
        float *target = out + o * inner;
        const float *source = in + offset;
        if (inner_from == 1) {
          std::memcpy(target, source, static_cast<size_t>(inner) * sizeof(float));
        } else {
          for (int64_t e = 0; e < inner; ++e) target[e] = source[e * inner_from];
        }
        for (int a = outer_axes - 1; a >= 0; --a) {  // the next outer index, odometer style
          offset += from[a];
          if (++index[a] < size[a]) break;
          offset -= index[a] * from[a];
          index[a] = 0;
        }
      }
    }
  }
}

// into[c] += sum over r of x[r, c]. Rows are summed in blocks of kColumnSumRows, each block into
// its own row of double partials in one pass down the memory, and the partials are then added
// in block order: the blocks depend on the shape alone, so the bits do not depend on the
// threads (and no column is walked a row apart, as a column-at-a-time loop would).
namespace {
// One block's rows added into its partials, compiled once per ISA: the widening adds in double
// run at twice SSE2's width with AVX2 and four times with AVX-512 (the portable copy was bound by
// them, at about half the memory's speed).
__attribute__((always_inline)) inline void column_sums_body(double *__restrict sum,
                                                            const float *__restrict x,
                                                            int64_t first, int64_t last,
                                                            int64_t cols) {
  for (int64_t r = first; r < last; ++r) {
    const float *__restrict row = x + r * cols;
    for (int64_t c = 0; c < cols; ++c) sum[c] += row[c];
  }
}
void column_sums_portable(double *sum, const float *x, int64_t first, int64_t last,
                          int64_t cols) {
  column_sums_body(sum, x, first, last, cols);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) void column_sums_avx2(double *sum, const float *x,
                                                          int64_t first, int64_t last,
                                                          int64_t cols) {
  column_sums_body(sum, x, first, last, cols);
}
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) void column_sums_avx512(
    double *sum, const float *x, int64_t first, int64_t last, int64_t cols) {
  column_sums_body(sum, x, first, last, cols);
}
#endif
void column_sums(double *sum, const float *x, int64_t first, int64_t last, int64_t cols) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return column_sums_avx512(sum, x, first, last, cols);
  if (use_avx2()) return column_sums_avx2(sum, x, first, last, cols);
#endif
  column_sums_portable(sum, x, first, last, cols);
}
}  // namespace

void add_column_sums(float *into, const float *x, int64_t rows, int64_t cols) {
  const int64_t blocks = (rows + kColumnSumRows - 1) / kColumnSumRows;
  std::vector<double> partial(static_cast<size_t>(blocks * cols), 0.0);
  double *const partials = partial.data();
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelElementwiseMin)
  for (int64_t block = 0; block < blocks; ++block)
    column_sums(partials + block * cols, x, block * kColumnSumRows,
                std::min(rows, (block + 1) * kColumnSumRows), cols);
#pragma omp parallel for schedule(static) if (blocks * cols >= kParallelElementwiseMin)
  for (int64_t c = 0; c < cols; ++c) {
    double total = 0;
    for (int64_t block = 0; block < blocks; ++block) total += partials[block * cols + c];
    // one rounding: the gradient already in `into` is added in double too
    into[c] = static_cast<float>(static_cast<double>(into[c]) + total);
  }
}

namespace {

// A thread's cached linear products: oneDNN's matmul primitive for x (M, in) · weightᵀ + bias
// with M a run-time size, so that one primitive per (in, out, bias) serves every batch and
// sequence length (a primitive per row count would cost a creation, about 0.5 ms, for each new
// length: a decoder's growing prefix). Per thread, because a primitive that uses oneDNN's
// library-managed scratchpad must run on the thread that created it.
struct LinearPrimitives {
  using Key = std::tuple<int64_t, int64_t, bool>;  // in, out, bias
  std::map<Key, dnnl::matmul> primitives;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

// More distinct (in, out, bias) than this on one thread: the cache starts again (a model has a
// handful of shapes; a program that makes up new ones each call must not grow without bound).
constexpr size_t kLinearCacheMax = 64;

LinearPrimitives &linear_primitives() {
  thread_local LinearPrimitives cache;
  return cache;
}

// The cached primitive, or nullptr where oneDNN has no optimised implementation (its reference
// matmul, e.g. on a platform without JIT kernels, would be slower than sgemm plus a bias pass).
const dnnl::matmul *linear_primitive(LinearPrimitives &cache, int64_t in, int64_t out, bool bias) {
  const LinearPrimitives::Key key{in, out, bias};
  auto found = cache.primitives.find(key);
  if (found != cache.primitives.end()) return &found->second;
  using dnnl::memory;
  const memory::dim rows = DNNL_RUNTIME_DIM_VAL;
  const memory::desc x_md({rows, in}, memory::data_type::f32, memory::dims{in, 1});
  const memory::desc weight_md({in, out}, memory::data_type::f32, memory::dims{1, in});  // Wᵀ
  const memory::desc bias_md({1, out}, memory::data_type::f32, memory::dims{out, 1});
  const memory::desc out_md({rows, out}, memory::data_type::f32, memory::dims{out, 1});
  dnnl::matmul::primitive_desc pd;
  try {
    pd = bias ? dnnl::matmul::primitive_desc(cache.engine, x_md, weight_md, bias_md, out_md)
              : dnnl::matmul::primitive_desc(cache.engine, x_md, weight_md, out_md);
  } catch (const dnnl::error &) {
    return nullptr;
  }
  const char *impl = pd.impl_info_str();
  if (impl == nullptr || std::strncmp(impl, "ref", 3) == 0) return nullptr;
  if (cache.primitives.size() >= kLinearCacheMax) cache.primitives.clear();
  return &cache.primitives.emplace(key, dnnl::matmul(pd)).first->second;
}

// The unfused product: the bias laid down in out, the GEMM accumulating onto it.
void linear_unfused(float *out, const float *x, const float *weight, const float *bias,
                    int64_t rows, int64_t in, int64_t out_features, int32_t backend) {
  float beta = 0.0f;
  if (bias != nullptr) {
#pragma omp parallel for schedule(static) if (rows * out_features >= kParallelElementwiseMin)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(out + r * out_features, bias, static_cast<size_t>(out_features) * sizeof(float));
    beta = 1.0f;
  } else if (in == 0) {
    std::memset(out, 0, static_cast<size_t>(rows * out_features) * sizeof(float));
    return;
  }
  if (in == 0) return;  // the bias alone
  if (backend == SEQ4J_BACKEND_BLAS) {
    matmul_blas(out, x, weight, rows, out_features, in, false, true, 1.0f, beta);
  } else {
    matmul_onednn(out, x, weight, rows, out_features, in, false, true, 1.0f, beta);
  }
}

}  // namespace

void linear(float *out, const float *x, const float *weight, const float *bias, int64_t rows,
            int64_t in, int64_t out_features, int32_t backend) {
  // oneDNN's matmul adds the bias in its epilogue, on each block while it is in cache: no pass
  // over out of its own, and the product writes out without reading it. Deterministic mode keeps
  // the fixed blocks of matmul_onednn; in == 0 has nothing to multiply.
  if (backend != SEQ4J_BACKEND_BLAS && !deterministic() && in > 0) {
    LinearPrimitives &cache = linear_primitives();
    if (const dnnl::matmul *primitive = linear_primitive(cache, in, out_features, bias != nullptr)) {
      using dnnl::memory;
      auto *mutable_x = const_cast<float *>(x);  // oneDNN's memory objects take void *; not written
      memory x_memory({{rows, in}, memory::data_type::f32, memory::dims{in, 1}}, cache.engine,
                      mutable_x);
      memory weight_memory({{in, out_features}, memory::data_type::f32, memory::dims{1, in}},
                           cache.engine, const_cast<float *>(weight));
      memory out_memory({{rows, out_features}, memory::data_type::f32, memory::dims{out_features, 1}},
                        cache.engine, out);
      std::unordered_map<int, memory> args{
          {DNNL_ARG_SRC, x_memory}, {DNNL_ARG_WEIGHTS, weight_memory}, {DNNL_ARG_DST, out_memory}};
      if (bias != nullptr)
        args.emplace(DNNL_ARG_BIAS,
                     memory({{1, out_features}, memory::data_type::f32, memory::dims{out_features, 1}},
                            cache.engine, const_cast<float *>(bias)));
      primitive->execute(cache.stream, args);
      cache.stream.wait();
      return;
    }
  }
  linear_unfused(out, x, weight, bias, rows, in, out_features, backend);
}

}  // namespace seq4j

using seq4j::fail;
using seq4j::guarded;
using seq4j::kParallelElementwiseMin;

extern "C" {

int seq4j_matmul(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                 int32_t trans_a, int32_t trans_b, float alpha, float beta, int32_t backend) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("m", m);
    seq4j::require_non_negative("n", n);
    seq4j::require_non_negative("k", k);
    seq4j::require_pointer("a", a, m * k);
    seq4j::require_pointer("b", b, k * n);
    seq4j::require_pointer("c", c, m * n);
    if (seq4j::overlaps(c, m * n, a, m * k)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "c overlaps a");
    if (seq4j::overlaps(c, m * n, b, k * n)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "c overlaps b");
    if (m == 0 || n == 0) return SEQ4J_OK;
    if (backend != SEQ4J_BACKEND_AUTO && backend != SEQ4J_BACKEND_ONEDNN &&
        backend != SEQ4J_BACKEND_BLAS)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "backend must be 0 (AUTO), 1 (ONEDNN) or 2 (BLAS), got ",
           backend);
    seq4j::use_configured_threads();
    if (k == 0) {
      // An empty product: c = beta * c, and beta = 0 overwrites c without reading it (BLAS's
      // rule, so a NaN in c does not survive). Done here for every backend: oneDNN's sgemm
      // rejects the leading dimension 0 that k = 0 gives a or b, and OpenBLAS's xerbla would
      // print to stderr and leave c untouched.
      const int64_t size = m * n;
      if (beta == 0.0f) {
#pragma omp parallel for simd if (size >= kParallelElementwiseMin)
        for (int64_t i = 0; i < size; ++i) c[i] = 0.0f;
      } else if (beta != 1.0f) {
#pragma omp parallel for simd if (size >= kParallelElementwiseMin)
        for (int64_t i = 0; i < size; ++i) c[i] *= beta;
      }
      return SEQ4J_OK;
    }
    switch (backend) {
      case SEQ4J_BACKEND_AUTO:
      case SEQ4J_BACKEND_ONEDNN:
        seq4j::matmul_onednn(c, a, b, m, n, k, trans_a != 0, trans_b != 0, alpha, beta);
        break;
      case SEQ4J_BACKEND_BLAS:
        seq4j::matmul_blas(c, a, b, m, n, k, trans_a != 0, trans_b != 0, alpha, beta);
        break;
      default:
        fail(SEQ4J_ERR_INVALID_ARGUMENT, "backend must be 0 (AUTO), 1 (ONEDNN) or 2 (BLAS), got ",
             backend);
    }
    return SEQ4J_OK;
  });
}

int seq4j_linear(float *out, const float *x, const float *weight, const float *bias, int64_t rows,
                 int64_t in_features, int64_t out_features, int32_t backend) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("rows", rows);
    seq4j::require_non_negative("in_features", in_features);
    seq4j::require_non_negative("out_features", out_features);
    seq4j::require_pointer("out", out, rows * out_features);
    seq4j::require_pointer("x", x, rows * in_features);
    seq4j::require_pointer("weight", weight, out_features * in_features);
    if (backend != SEQ4J_BACKEND_AUTO && backend != SEQ4J_BACKEND_ONEDNN &&
        backend != SEQ4J_BACKEND_BLAS)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "backend must be 0 (AUTO), 1 (ONEDNN) or 2 (BLAS), got ",
           backend);
    if (seq4j::overlaps(out, rows * out_features, x, rows * in_features))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps x");
    if (seq4j::overlaps(out, rows * out_features, weight, out_features * in_features))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps weight");
    if (bias != nullptr && seq4j::overlaps(out, rows * out_features, bias, out_features))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps bias");
    if (rows == 0 || out_features == 0) return SEQ4J_OK;
    seq4j::use_configured_threads();
    seq4j::linear(out, x, weight, bias, rows, in_features, out_features, backend);
    return SEQ4J_OK;
  });
}

int seq4j_add(float *out, const float *a, const float *b, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("out", out, n);
    seq4j::require_pointer("a", a, n);
    seq4j::require_pointer("b", b, n);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelElementwiseMin)
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
    return SEQ4J_OK;
  });
}

int seq4j_scale(float *out, const float *x, float alpha, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("out", out, n);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelElementwiseMin)
    for (int64_t i = 0; i < n; ++i) out[i] = alpha * x[i];
    return SEQ4J_OK;
  });
}

int seq4j_axpy(float *y, float alpha, const float *x, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("y", y, n);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelElementwiseMin)
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
    return SEQ4J_OK;
  });
}

int seq4j_fill(float *x, float value, int64_t n) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("n", n);
    seq4j::require_pointer("x", x, n);
    seq4j::use_configured_threads();
#pragma omp parallel for simd if (n >= kParallelElementwiseMin)
    for (int64_t i = 0; i < n; ++i) x[i] = value;
    return SEQ4J_OK;
  });
}

int seq4j_swap_leading_axes(float *out, const float *in, int64_t a, int64_t b, int64_t c) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("a", a);
    seq4j::require_non_negative("b", b);
    seq4j::require_non_negative("c", c);
    seq4j::require_pointer("out", out, a * b * c);
    seq4j::require_pointer("in", in, a * b * c);
    if (seq4j::overlaps(out, a * b * c, in, a * b * c))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps in");
    seq4j::use_configured_threads();
#pragma omp parallel for collapse(2) if (a * b * c >= kParallelElementwiseMin)
    for (int64_t j = 0; j < b; ++j)
      for (int64_t i = 0; i < a; ++i)
        std::memcpy(out + (j * a + i) * c, in + (i * b + j) * c, c * sizeof(float));
    return SEQ4J_OK;
  });
}

int seq4j_permute(float *out, const float *in, int32_t rank, const int64_t *dims,
                  const int32_t *perm) {
  return guarded(__func__, [&] {
    if (rank < 1 || rank > seq4j::kMaxPermuteRank)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "rank must be 1 to ", seq4j::kMaxPermuteRank, ", got ",
           rank);
    if (dims == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "dims is NULL");
    if (perm == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "perm is NULL");
    int64_t total = 1;
    bool seen[seq4j::kMaxPermuteRank] = {};
    for (int32_t i = 0; i < rank; ++i) {
      if (dims[i] < 0) fail(SEQ4J_ERR_INVALID_ARGUMENT, "dims[", i, "] must be >= 0, got ", dims[i]);
      if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]])
        fail(SEQ4J_ERR_INVALID_ARGUMENT, "perm must hold each of 0 to ", rank - 1,
             " once, got ", perm[i], " at ", i);
      seen[perm[i]] = true;
      if (dims[i] != 0 && total > INT64_MAX / dims[i])
        fail(SEQ4J_ERR_INVALID_ARGUMENT, "dims: the element count overflows int64");
      total *= dims[i];
    }
    seq4j::require_pointer("out", out, total);
    seq4j::require_pointer("in", in, total);
    if (total == 0) return SEQ4J_OK;
    if (seq4j::overlaps(out, total, in, total)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps in");
    seq4j::use_configured_threads();
    seq4j::permute(out, in, rank, dims, perm, total);
    return SEQ4J_OK;
  });
}

int seq4j_broadcast_rows(float *out, const float *row, int64_t rows, int64_t cols) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("rows", rows);
    seq4j::require_non_negative("cols", cols);
    seq4j::require_pointer("out", out, rows * cols);
    seq4j::require_pointer("row", row, cols);
    if (rows * cols == 0) return SEQ4J_OK;
    if (seq4j::overlaps(out, rows * cols, row, cols))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out overlaps row");
    seq4j::use_configured_threads();
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelElementwiseMin)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(out + r * cols, row, static_cast<size_t>(cols) * sizeof(float));
    return SEQ4J_OK;
  });
}

int seq4j_add_column_sums(float *into, const float *x, int64_t rows, int64_t cols) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("rows", rows);
    seq4j::require_non_negative("cols", cols);
    seq4j::require_pointer("into", into, cols);
    seq4j::require_pointer("x", x, rows * cols);
    if (rows * cols == 0) return SEQ4J_OK;
    if (seq4j::overlaps(into, cols, x, rows * cols))
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "into overlaps x");
    seq4j::use_configured_threads();
    seq4j::add_column_sums(into, x, rows, cols);
    return SEQ4J_OK;
  });
}

}  // extern "C"
