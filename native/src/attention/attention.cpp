// Scaled dot-product attention, forward and backward, memory-efficient (FlashAttention's scheme
// on the CPU): the scores of one block of queries against one block of keys at a time, an online
// softmax across key blocks, and each row's log-sum-exp kept for the backward, which recomputes
// the score blocks instead of storing them. The blocks are spread over the OpenMP pool. The
// forward's block products are AVX2 micro-kernels on keys and values packed once per call, the
// backward's the same kernels on keys and values packed once per task (with single-threaded
// OpenBLAS sgemms as the fallback for both).
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
#include <immintrin.h>
#endif
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "cblas.h"
#include "core/error.h"
#include "core/runtime.h"

namespace seq4j {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 128;
// The forward's AVX2 path: its own micro-kernels on keys and values packed once per call
// (OpenBLAS re-packed both operands of every small tile product, a third of the forward's time),
// in blocks of at most kForwardQueryBlock queries by kKeyBlock keys (96 × 256, 48 × 128 and
// 192 × 64 were no better within noise).
constexpr int64_t kPanel = 16;
constexpr int64_t kKernelRows = 6;
constexpr int64_t kForwardQueryBlock = 96;
constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();

// Dropout's keep decision for score (n, h, i, j), counter-based so the backward recomputes it.
inline bool keep(uint64_t key, uint64_t index, uint64_t threshold) {
  uint64_t z = key ^ index;
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (z >> 40) >= threshold;
}

inline uint64_t mix_seed(int64_t seed) {
  uint64_t z = static_cast<uint64_t>(seed) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// row[c] = exp(row[c] - shift), returning the sum. The scalar std::exp of this loop was most of
// the attention's time; the AVX2 version evaluates Cephes' expf polynomial (about 1 ulp) on 8
// floats at a time, chosen at run time. Masked scores (-inf) give exactly 0 in both.
float exp_shifted_scalar(float *row, int64_t n, float shift) {
  float sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    row[c] = std::exp(row[c] - shift);
    sum += row[c];
  }
  return sum;
}

#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float *row, int64_t n, float shift) {
  const __m256 shift8 = _mm256_set1_ps(shift);
  const __m256 low = _mm256_set1_ps(-87.3f), high = _mm256_set1_ps(88.0f);
  // x·log2(e) + 1.5·2²³ rounds to an integer k in the low mantissa bits; with 127 added there too
  // they are k's exponent field already: no round and convert instructions
  const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
  __m256 sum8 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(row + c), shift8);
    const __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, low), high);
    const __m256 biased = _mm256_fmadd_ps(clamped, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 k = _mm256_sub_ps(biased, magic);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i exponent = _mm256_slli_epi32(_mm256_castps_si256(biased), 23);
    const __m256 e = _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(exponent)));
    _mm256_storeu_ps(row + c, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum8);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
              ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  return sum + exp_shifted_scalar(row + c, n - c, shift);
}
#else
[[noreturn]] inline void no_avx2() { std::abort(); }  // has_avx2() is false off x86-64
float exp_shifted_avx2(float *, int64_t, float) { no_avx2(); }
#endif

bool has_avx2() {
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2;
#else
  return false;
#endif
}

float exp_shifted(float *row, int64_t n, float shift) {
  return has_avx2() ? exp_shifted_avx2(row, n, shift) : exp_shifted_scalar(row, n, shift);
}

// GCC keeps a float max reduction scalar (it may not reorder it), one score per cycle or worse.
float row_max_scalar(const float *row, int64_t n) {
  float max = kMinusInfinity;
  for (int64_t c = 0; c < n; ++c) max = std::max(max, row[c]);
  return max;
}

#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
__attribute__((target("avx2,fma"))) float row_max_avx2(const float *row, int64_t n) {
  __m256 max8 = _mm256_set1_ps(kMinusInfinity);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) max8 = _mm256_max_ps(max8, _mm256_loadu_ps(row + c));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, max8);
  float max = row_max_scalar(row + c, n - c);
  for (float lane : lanes) max = std::max(max, lane);
  return max;
}
#else
float row_max_avx2(const float *, int64_t) { no_avx2(); }
#endif

float row_max(const float *row, int64_t n) {
  return has_avx2() ? row_max_avx2(row, n) : row_max_scalar(row, n);
}

// The forward's keys and values, packed once per call. Keys, for score_tile_avx2: per (sample,
// key/value head) and run of kPanel keys, head_dim rows of kPanel floats, zero past kv_length, so
// the kernel reads one dimension of kPanel keys with two loads instead of a strided gather.
// Values, for value_tile_avx2: per (sample, key/value head) and run of kPanel value columns, the
// keys' kPanel floats back to back. Read in place, one such run of a key block is a cache line
// every value_dim floats, all in 16 of L1's 64 sets at value_dim = 64, and the block's lines
// evicted one another before the next row group came. Columns past the last full run
// (value_dim % kPanel) stay in v.
// One allocation, not zeroed (pack writes every float): a serial zero fill cost as much again as
// packing; and glibc's malloc handed two buffers of half the size back to the system after each
// call, to be faulted in again on the next (a sixth of a 128-query forward against 4096 keys),
// while one it keeps (its trim threshold follows the largest block freed).
struct PackedHeads {
  int64_t heads, length, head_dim, value_dim, panels, runs;
  std::unique_ptr<float[]> data;

  PackedHeads(int64_t heads_, const seq4j_attention_desc &d)
      : heads(heads_), length(d.kv_length), head_dim(d.head_dim), value_dim(d.value_dim),
        panels((d.kv_length + kPanel - 1) / kPanel), runs(d.value_dim / kPanel),
        data(new float[heads * (panels * head_dim + runs * length) * kPanel]) {}

  float *key_panel(int64_t head, int64_t j0) const {
    return data.get() + (head * panels + j0 / kPanel) * head_dim * kPanel;
  }
  float *value_run(int64_t head, int64_t e0, int64_t j0) const {
    return data.get() + heads * panels * head_dim * kPanel +
           ((head * runs + e0 / kPanel) * length + j0) * kPanel;
  }

  void pack(const float *k, const float *v, int64_t head) {
    for (int64_t j0 = 0; j0 < length; j0 += kPanel) {
      float *panel = key_panel(head, j0);
      for (int64_t c = 0; c < kPanel; ++c) {
        if (j0 + c < length) {
          const float *key = k + (head * length + j0 + c) * head_dim;
          for (int64_t e = 0; e < head_dim; ++e) panel[e * kPanel + c] = key[e];
        } else {
          for (int64_t e = 0; e < head_dim; ++e) panel[e * kPanel + c] = 0.0f;
        }
      }
    }
    for (int64_t e0 = 0; e0 < runs * kPanel; e0 += kPanel) {
      float *run = value_run(head, e0, 0);
      for (int64_t j = 0; j < length; ++j, run += kPanel)
        for (int64_t e = 0; e < kPanel; ++e) run[e] = v[(head * length + j) * value_dim + e0 + e];
    }
  }
};

#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
// GCC keeps an array of __m256 accumulators in memory (it scalarises aggregates before it unrolls
// the loops over them), storing each one on every step, so the kernels name their accumulators
// and let `if constexpr` drop the rows past R.
#define SEQ4J_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

// s (R × kPanel, row stride lds) = scale · q (R × depth, row stride ldq) · panelᵀ, R <= 6. R rows
// by two vectors keep 2R accumulators in registers (12 of the 16 at R = 6), each q value
// broadcast once per pair of FMAs.
template <int R>
__attribute__((target("avx2,fma"))) void score_tile_avx2(float *s, int64_t lds, const float *q,
                                                         int64_t ldq, const float *panel,
                                                         int64_t depth, float scale) {
  static_assert(R >= 1 && R <= 6, "score_tile_avx2 holds at most 6 rows");
#define SEQ4J_DECLARE(r) __m256 lo##r = _mm256_setzero_ps(), hi##r = _mm256_setzero_ps();
  SEQ4J_ROWS(SEQ4J_DECLARE)
#undef SEQ4J_DECLARE
  for (int64_t e = 0; e < depth; ++e) {
    const __m256 b0 = _mm256_loadu_ps(panel + e * kPanel);
    const __m256 b1 = _mm256_loadu_ps(panel + e * kPanel + 8);
#define SEQ4J_STEP(r)                                      \
  if constexpr (r < R) {                                   \
    const __m256 a = _mm256_broadcast_ss(q + r * ldq + e); \
    lo##r = _mm256_fmadd_ps(a, b0, lo##r);                 \
    hi##r = _mm256_fmadd_ps(a, b1, hi##r);                 \
  }
    SEQ4J_ROWS(SEQ4J_STEP)
#undef SEQ4J_STEP
  }
  const __m256 scale8 = _mm256_set1_ps(scale);
#define SEQ4J_STORE(r)                                                 \
  if constexpr (r < R) {                                               \
    _mm256_storeu_ps(s + r * lds, _mm256_mul_ps(lo##r, scale8));     \
    _mm256_storeu_ps(s + r * lds + 8, _mm256_mul_ps(hi##r, scale8)); \
  }
  SEQ4J_ROWS(SEQ4J_STORE)
#undef SEQ4J_STORE
}

// o (R × 8W, row stride ldo) += p (R × depth, row stride ldp) · v (depth × 8W, row stride ldv),
// W = 1 or 2: the same register blocking, v a packed run of values (ldv = kPanel) or, for the
// last 8 columns, v itself. Transposed: p's element (r, j) is p[j · ldp + r], so the backward
// multiplies by a probability tile's transpose (dV += Pᵀ dO, dK += dSᵀ Q) without writing it out.
template <int R, int W, bool Transposed = false>
__attribute__((target("avx2,fma"))) void value_tile_avx2(float *o, int64_t ldo, const float *p,
                                                         int64_t ldp, const float *v, int64_t ldv,
                                                         int64_t depth) {
  static_assert(R >= 1 && R <= 6 && (W == 1 || W == 2), "value_tile_avx2 holds at most 6 × 16");
#define SEQ4J_LOAD(r)                                                        \
  __m256 lo##r = _mm256_setzero_ps(), hi##r = _mm256_setzero_ps();         \
  if constexpr (r < R) {                                                     \
    lo##r = _mm256_loadu_ps(o + r * ldo);                                    \
    if constexpr (W == 2) hi##r = _mm256_loadu_ps(o + r * ldo + 8);          \
  }
  SEQ4J_ROWS(SEQ4J_LOAD)
#undef SEQ4J_LOAD
  for (int64_t j = 0; j < depth; ++j) {
    const __m256 b0 = _mm256_loadu_ps(v + j * ldv);
    const __m256 b1 = W == 2 ? _mm256_loadu_ps(v + j * ldv + 8) : b0;
#define SEQ4J_STEP(r)                                      \
  if constexpr (r < R) {                                   \
    const __m256 a = _mm256_broadcast_ss(Transposed ? p + j * ldp + r : p + r * ldp + j); \
    lo##r = _mm256_fmadd_ps(a, b0, lo##r);                 \
    if constexpr (W == 2) hi##r = _mm256_fmadd_ps(a, b1, hi##r); \
  }
    SEQ4J_ROWS(SEQ4J_STEP)
#undef SEQ4J_STEP
  }
#define SEQ4J_STORE(r)                                                  \
  if constexpr (r < R) {                                                \
    _mm256_storeu_ps(o + r * ldo, lo##r);                               \
    if constexpr (W == 2) _mm256_storeu_ps(o + r * ldo + 8, hi##r);     \
  }
  SEQ4J_ROWS(SEQ4J_STORE)
#undef SEQ4J_STORE
}
#undef SEQ4J_ROWS

// s (rows × lds, lds a multiple of kPanel) = scale · q kᵀ for keys j0 .. j0 + lds of one head.
template <int R>
__attribute__((target("avx2,fma"))) void score_rows_avx2(float *s, int64_t lds, const float *q,
                                                         int64_t ldq, const PackedHeads &packed,
                                                         int64_t head, int64_t j0, float scale) {
  for (int64_t c = 0; c < lds; c += kPanel)
    score_tile_avx2<R>(s + c, lds, q, ldq, packed.key_panel(head, j0 + c), packed.head_dim,
                       scale);
}

__attribute__((target("avx2,fma"))) void scores_avx2(float *s, int64_t lds, const float *q,
                                                     int64_t ldq, int64_t rows,
                                                     const PackedHeads &packed, int64_t head,
                                                     int64_t j0, float scale) {
  int64_t r = 0;
  for (; r + kKernelRows <= rows; r += kKernelRows)
    score_rows_avx2<kKernelRows>(s + r * lds, lds, q + r * ldq, ldq, packed, head, j0, scale);
  float *sr = s + r * lds;
  const float *qr = q + r * ldq;
  switch (rows - r) {
    case 5: score_rows_avx2<5>(sr, lds, qr, ldq, packed, head, j0, scale); break;
    case 4: score_rows_avx2<4>(sr, lds, qr, ldq, packed, head, j0, scale); break;
    case 3: score_rows_avx2<3>(sr, lds, qr, ldq, packed, head, j0, scale); break;
    case 2: score_rows_avx2<2>(sr, lds, qr, ldq, packed, head, j0, scale); break;
    case 1: score_rows_avx2<1>(sr, lds, qr, ldq, packed, head, j0, scale); break;
    default: break;
  }
}

// o (rows × 8W) += p (rows × depth) · v (depth × 8W): these columns of v (depth cache lines at
// W = 2) stay in L1 while every row group of p passes over them.
template <int W, bool Transposed = false>
__attribute__((target("avx2,fma"))) void value_columns_avx2(float *o, int64_t ldo, const float *p,
                                                            int64_t ldp, int64_t rows,
                                                            const float *v, int64_t ldv,
                                                            int64_t depth) {
  // the next row group of p: rows further down, or columns further right when transposed
  const int64_t step = Transposed ? 1 : ldp;
  int64_t r = 0;
  for (; r + kKernelRows <= rows; r += kKernelRows)
    value_tile_avx2<kKernelRows, W, Transposed>(o + r * ldo, ldo, p + r * step, ldp, v, ldv,
                                                depth);
  float *orow = o + r * ldo;
  const float *prow = p + r * step;
  switch (rows - r) {
    case 5: value_tile_avx2<5, W, Transposed>(orow, ldo, prow, ldp, v, ldv, depth); break;
    case 4: value_tile_avx2<4, W, Transposed>(orow, ldo, prow, ldp, v, ldv, depth); break;
    case 3: value_tile_avx2<3, W, Transposed>(orow, ldo, prow, ldp, v, ldv, depth); break;
    case 2: value_tile_avx2<2, W, Transposed>(orow, ldo, prow, ldp, v, ldv, depth); break;
    case 1: value_tile_avx2<1, W, Transposed>(orow, ldo, prow, ldp, v, ldv, depth); break;
    default: break;
  }
}
#else
void scores_avx2(float *, int64_t, const float *, int64_t, int64_t, const PackedHeads &, int64_t,
                 int64_t, float) {
  no_avx2();
}
#endif

// The backward's products, on operands packed once per task. Panels: keys (or values) in
// panels of kPanel as score_tile_avx2 reads them, depth rows each, zero past length. Runs: the
// first width / kPanel runs of kPanel columns, rows back to back, as value_tile_avx2 reads them.
void pack_panels(float *dst, const float *src, int64_t length, int64_t depth) {
  for (int64_t j0 = 0; j0 < length; j0 += kPanel, dst += depth * kPanel)
    for (int64_t c = 0; c < kPanel; ++c)
      for (int64_t e = 0; e < depth; ++e)
        dst[e * kPanel + c] = j0 + c < length ? src[(j0 + c) * depth + e] : 0.0f;
}

void pack_runs(float *dst, const float *src, int64_t length, int64_t width) {
  for (int64_t e0 = 0; e0 + kPanel <= width; e0 += kPanel)
    for (int64_t j = 0; j < length; ++j, dst += kPanel)
      std::memcpy(dst, src + j * width + e0, kPanel * sizeof(float));
}

#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
// s (rows × lds, lds a multiple of kPanel) = scale · a bᵀ, b's rows given as packed panels.
__attribute__((target("avx2,fma"))) void panel_products_avx2(float *s, int64_t lds, const float *a,
                                                             int64_t lda, int64_t rows,
                                                             const float *panels, int64_t depth,
                                                             float scale) {
  for (int64_t c = 0; c < lds; c += kPanel) {
    const float *panel = panels + c * depth;
    float *sc = s + c;
    int64_t r = 0;
    for (; r + kKernelRows <= rows; r += kKernelRows)
      score_tile_avx2<kKernelRows>(sc + r * lds, lds, a + r * lda, lda, panel, depth, scale);
    float *sr = sc + r * lds;
    const float *ar = a + r * lda;
    switch (rows - r) {
      case 5: score_tile_avx2<5>(sr, lds, ar, lda, panel, depth, scale); break;
      case 4: score_tile_avx2<4>(sr, lds, ar, lda, panel, depth, scale); break;
      case 3: score_tile_avx2<3>(sr, lds, ar, lda, panel, depth, scale); break;
      case 2: score_tile_avx2<2>(sr, lds, ar, lda, panel, depth, scale); break;
      case 1: score_tile_avx2<1>(sr, lds, ar, lda, panel, depth, scale); break;
      default: break;
    }
  }
}

// o (rows × width) += a (rows × depth, or its transpose when Transposed) · b (depth × width, row
// stride width): b's packed runs (runs, row stride kPanel, each run_length rows apart) where
// given, else b itself, then b's last columns in place.
template <bool Transposed>
__attribute__((target("avx2,fma"))) void accumulate_avx2(float *o, const float *a, int64_t lda,
                                                         int64_t rows, const float *b,
                                                         const float *runs, int64_t run_length,
                                                         int64_t depth, int64_t width) {
  int64_t e = 0;
  for (; e + kPanel <= width; e += kPanel) {
    if (runs != nullptr)
      value_columns_avx2<2, Transposed>(o + e, width, a, lda, rows,
                                        runs + e / kPanel * run_length * kPanel, kPanel, depth);
    else
      value_columns_avx2<2, Transposed>(o + e, width, a, lda, rows, b + e, width, depth);
  }
  if (e + 8 <= width) {
    value_columns_avx2<1, Transposed>(o + e, width, a, lda, rows, b + e, width, depth);
    e += 8;
  }
  for (; e < width; ++e)
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0;
      for (int64_t j = 0; j < depth; ++j)
        sum += (Transposed ? a[j * lda + r] : a[r * lda + j]) * b[j * width + e];
      o[r * width + e] += sum;
    }
}

// o (rows × width) += p (rows × depth) · v (depth × width) for keys j0 .. j0 + depth of one head:
// the packed runs of values, then any last columns of v (row stride width) in place.
__attribute__((target("avx2,fma"))) void values_avx2(float *o, const float *p, int64_t ldp,
                                                     int64_t rows, const PackedHeads &packed,
                                                     const float *v, int64_t head, int64_t j0,
                                                     int64_t depth, int64_t width) {
  const int64_t ldo = width;
  int64_t e = 0;
  for (; e + kPanel <= width; e += kPanel)
    value_columns_avx2<2>(o + e, ldo, p, ldp, rows, packed.value_run(head, e, j0), kPanel, depth);
  if (e + 8 <= width) {
    value_columns_avx2<1>(o + e, ldo, p, ldp, rows, v + e, width, depth);
    e += 8;
  }
  for (; e < width; ++e)  // value sizes that are not a multiple of 8: the last columns one by one
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0;
      for (int64_t j = 0; j < depth; ++j) sum += p[r * ldp + j] * v[j * width + e];
      o[r * ldo + e] += sum;
    }
}
#else
void panel_products_avx2(float *, int64_t, const float *, int64_t, int64_t, const float *, int64_t,
                         float) {
  no_avx2();
}
template <bool Transposed>
void accumulate_avx2(float *, const float *, int64_t, int64_t, const float *, const float *, int64_t,
                     int64_t, int64_t) {
  no_avx2();
}
void values_avx2(float *, const float *, int64_t, int64_t, const PackedHeads &, const float *, int64_t,
                 int64_t, int64_t, int64_t) {
  no_avx2();
}
#endif

// ds = scale · prob ⊙ (dp − row_dot), one row of a tile without dropout: the loop with dropout's
// per-score check is not vectorised, and at head size 64 it cost as much as a tile product.
void d_scores_scalar(float *ds, const float *prob, const float *dp, int64_t n, float row_dot,
                     float scale) {
  for (int64_t c = 0; c < n; ++c) ds[c] = prob[c] * (dp[c] - row_dot) * scale;
}

#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
__attribute__((target("avx2,fma"))) void d_scores_avx2(float *ds, const float *prob,
                                                       const float *dp, int64_t n, float row_dot,
                                                       float scale) {
  const __m256 dot8 = _mm256_set1_ps(row_dot), scale8 = _mm256_set1_ps(scale);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dp + c), dot8);
    _mm256_storeu_ps(ds + c, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(prob + c), g), scale8));
  }
  d_scores_scalar(ds + c, prob + c, dp + c, n - c, row_dot, scale);
}
#else
void d_scores_avx2(float *, const float *, const float *, int64_t, float, float) { no_avx2(); }
#endif

struct Problem {
  const seq4j_attention_desc &d;
  const float *mask;
  const float *key_padding;
  uint64_t dropout_key;
  uint64_t dropout_threshold;
  float dropout_scale;

  Problem(const seq4j_attention_desc &desc, const float *m, const float *kp)
      : d(desc), mask(m), key_padding(kp), dropout_key(mix_seed(desc.seed)),
        dropout_threshold(static_cast<uint64_t>(static_cast<double>(desc.dropout) * 16777216.0)),
        dropout_scale(desc.dropout > 0 ? 1.0f / (1.0f - desc.dropout) : 1.0f) {}

  int64_t kv_head(int64_t h) const { return h / (d.query_heads / d.kv_heads); }
  const float *q_rows(const float *q, int64_t n, int64_t h, int64_t i) const {
    return q + ((n * d.query_heads + h) * d.query_length + i) * d.head_dim;
  }
  const float *k_rows(const float *k, int64_t n, int64_t h, int64_t j) const {
    return k + ((n * d.kv_heads + kv_head(h)) * d.kv_length + j) * d.head_dim;
  }
  const float *v_rows(const float *v, int64_t n, int64_t h, int64_t j) const {
    return v + ((n * d.kv_heads + kv_head(h)) * d.kv_length + j) * d.value_dim;
  }
  uint64_t score_index(int64_t n, int64_t h, int64_t i, int64_t j) const {
    return static_cast<uint64_t>(((n * d.query_heads + h) * d.query_length + i) * d.kv_length + j);
  }

  // scores (rows × cols) = scale · q kᵀ + mask, with -inf where masked.
  void scores(float *s, const float *q, const float *k, int64_t n, int64_t h, int64_t i0,
              int64_t rows, int64_t j0, int64_t cols) const {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                static_cast<blasint>(cols), static_cast<blasint>(d.head_dim), d.scale,
                q_rows(q, n, h, i0), static_cast<blasint>(d.head_dim), k_rows(k, n, h, j0),
                static_cast<blasint>(d.head_dim), 0.0f, s, static_cast<blasint>(cols));
    apply_mask(s, cols, n, h, i0, rows, j0, cols);
  }

  // The scores of a tile (rows × cols, row stride lds) with the masks applied: -inf where masked.
  void apply_mask(float *s, int64_t lds, int64_t n, int64_t h, int64_t i0, int64_t rows, int64_t j0,
                  int64_t cols) const {
    // most tiles have nothing masked: skip the per-score checks for them
    const bool causal_cut = d.causal && j0 + cols - 1 > i0;
    if (mask == nullptr && key_padding == nullptr && !causal_cut) return;
    if (mask == nullptr && key_padding == nullptr) {
      // causal only: each row's masked keys are its tail; the per-score checks cost about as much
      // as a diagonal tile's scores
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t visible = std::clamp<int64_t>(i0 + r - j0 + 1, 0, cols);
        std::fill(s + r * lds + visible, s + r * lds + cols, kMinusInfinity);
      }
      return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      float *row = s + r * lds;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t j = j0 + c;
        bool masked = (d.causal && j > i) || (key_padding != nullptr && key_padding[n * d.kv_length + j] != 0.0f);
        if (!masked && mask != nullptr) {
          const float m = mask[n * d.mask_strides[0] + h * d.mask_strides[1] + i * d.mask_strides[2] +
                               j * d.mask_strides[3]];
          if (d.mask_kind == SEQ4J_MASK_BOOLEAN)
            masked = m == 0.0f;
          else
            row[c] += m;
        }
        if (masked) row[c] = kMinusInfinity;
      }
    }
  }
};

struct Buffers {
  std::vector<float> scores, accumulator, row_max, row_sum, d_scores, d_probs, row_dot, packed;
};

Buffers &buffers() {
  thread_local Buffers b;
  return b;
}

// One block of queries against every key it sees: online softmax over blocks of kKeyBlock keys.
// With packed keys and values the products are the AVX2 kernels, without them OpenBLAS's sgemm.
void forward_block(float *out, float *lse, const float *q, const float *k, const float *v,
                   const Problem &p, const PackedHeads *packed,
                   int64_t n, int64_t h, int64_t i0, int64_t rows, int64_t query_block) {
  const auto &d = p.d;
  Buffers &b = buffers();
  b.scores.resize(query_block * kKeyBlock);
  b.accumulator.assign(rows * d.value_dim, 0.0f);
  b.row_max.assign(rows, kMinusInfinity);
  b.row_sum.assign(rows, 0.0f);
  // causal: keys after the block's last query are masked for every row, so skip them
  const int64_t key_end = d.causal ? std::min(d.kv_length, i0 + rows) : d.kv_length;
  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, key_end - j0);
    float *s = b.scores.data();
    int64_t lds = cols;
    if (packed != nullptr) {
      lds = (cols + kPanel - 1) / kPanel * kPanel;  // the padded keys' scores are not used
      scores_avx2(s, lds, p.q_rows(q, n, h, i0), d.head_dim, rows, *packed,
                  n * d.kv_heads + p.kv_head(h), j0, d.scale);
      p.apply_mask(s, lds, n, h, i0, rows, j0, cols);
    } else {
      p.scores(s, q, k, n, h, i0, rows, j0, cols);
    }
    for (int64_t r = 0; r < rows; ++r) {
      float *row = s + r * lds;
      const float block_max = row_max(row, cols);
      if (block_max == kMinusInfinity) {  // every key of this block is masked for this row
        std::fill(row, row + cols, 0.0f);
        continue;
      }
      const float old_max = b.row_max[r];
      const float new_max = std::max(old_max, block_max);
      const float sum = exp_shifted(row, cols, new_max);  // exp(-inf) = 0 for masked keys
      if (new_max != old_max) {  // after the first blocks the running max rarely moves
        const float rescale = old_max == kMinusInfinity ? 0.0f : std::exp(old_max - new_max);
        b.row_sum[r] *= rescale;
        float *acc = b.accumulator.data() + r * d.value_dim;
        for (int64_t e = 0; e < d.value_dim; ++e) acc[e] *= rescale;
        b.row_max[r] = new_max;
      }
      b.row_sum[r] += sum;
      if (d.dropout > 0) {
        for (int64_t c = 0; c < cols; ++c)
          row[c] = keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                       ? row[c] * p.dropout_scale
                       : 0.0f;
      }
    }
    if (packed != nullptr) {
      values_avx2(b.accumulator.data(), s, lds, rows, *packed, p.v_rows(v, n, h, j0),
                  n * d.kv_heads + p.kv_head(h), j0, cols, d.value_dim);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                  static_cast<blasint>(d.value_dim), static_cast<blasint>(cols), 1.0f, s,
                  static_cast<blasint>(lds), p.v_rows(v, n, h, j0),
                  static_cast<blasint>(d.value_dim), 1.0f, b.accumulator.data(),
                  static_cast<blasint>(d.value_dim));
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    float *o = out + ((n * d.query_heads + h) * d.query_length + i) * d.value_dim;
    const float l = b.row_sum[r];
    const float inverse = l > 0 ? 1.0f / l : 0.0f;
    for (int64_t e = 0; e < d.value_dim; ++e) o[e] = b.accumulator[r * d.value_dim + e] * inverse;
    if (lse != nullptr)
      lse[(n * d.query_heads + h) * d.query_length + i] =
          l > 0 ? b.row_max[r] + std::log(l) : std::numeric_limits<float>::infinity();
  }
}

void forward(float *out, float *lse, const float *q, const float *k, const float *v,
             const Problem &p) {
  const auto &d = p.d;
  if (!has_avx2()) {
    const int64_t q_blocks = (d.query_length + kQueryBlock - 1) / kQueryBlock;
    const int64_t tasks = d.batch * d.query_heads * q_blocks;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qb = task % q_blocks, nh = task / q_blocks, i0 = qb * kQueryBlock;
      forward_block(out, lse, q, k, v, p, nullptr, nh / d.query_heads, nh % d.query_heads, i0,
                    std::min(kQueryBlock, d.query_length - i0), kQueryBlock);
    }
    return;
  }
  // blocks of at most kForwardQueryBlock queries, of even sizes (128 queries as 66 + 62, not
  // 96 + 32) in multiples of the kernels' rows
  int64_t q_blocks = (d.query_length + kForwardQueryBlock - 1) / kForwardQueryBlock;
  const int64_t query_block =
      ((d.query_length + q_blocks - 1) / q_blocks + kKernelRows - 1) / kKernelRows * kKernelRows;
  q_blocks = (d.query_length + query_block - 1) / query_block;
  const int64_t kv = d.batch * d.kv_heads, group = d.query_heads / d.kv_heads;
  const int64_t blocks = group * q_blocks;  // per key/value head
  PackedHeads heads(kv, d);
  // First one task per key/value head packing it, then the query blocks. A block whose head is
  // not packed yet packs it itself, or waits for the thread packing it (which never waits), so
  // no barrier is needed: the pool's wake-up after one cost more than a small forward on a loaded
  // machine.
  std::unique_ptr<std::atomic<int>[]> state(new std::atomic<int>[kv]);  // 0 new, 1 packing, 2 packed
  for (int64_t g = 0; g < kv; ++g) state[g].store(0, std::memory_order_relaxed);
  auto ensure_packed = [&](int64_t g) {
    int expected = 0;
    if (state[g].compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
      heads.pack(k, v, g);
      state[g].store(2, std::memory_order_release);
    } else {
      while (state[g].load(std::memory_order_acquire) != 2) {
#if defined(__x86_64__) || defined(_M_X64)  // x86-only (cross-platform guard)
        _mm_pause();
#endif
      }
    }
  };
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < kv * (1 + blocks); ++task) {
    if (task < kv) {
      ensure_packed(task);
      continue;
    }
    const int64_t ng = (task - kv) / blocks, index = (task - kv) % blocks;
    ensure_packed(ng);
    // causal: the last query blocks see the most keys; starting with them leaves short ones last
    const int64_t qb = d.causal ? q_blocks - 1 - index % q_blocks : index % q_blocks;
    const int64_t n = ng / d.kv_heads, h = ng % d.kv_heads * group + index / q_blocks;
    const int64_t i0 = qb * query_block;
    forward_block(out, lse, q, k, v, p, &heads, n, h, i0,
                  std::min(query_block, d.query_length - i0), query_block);
  }
}

void backward(float *dq, float *dk, float *dv, const float *d_out, const float *q, const float *k,
              const float *v, const float *out, const float *lse, const Problem &p) {
  const auto &d = p.d;
  const int64_t group = d.query_heads / d.kv_heads;
  const int64_t tasks = d.batch * d.kv_heads;
  // With AVX2 the tile products are the forward's micro-kernels (OpenBLAS's sgemm re-packed both
  // operands of each small tile product), on the task's keys and values packed once: keys and
  // values as panels for S = Q Kᵀ and dP = dO Vᵀ, keys as runs of columns for dQ += dS K. dV and
  // dK read the probability tiles transposed in place, and dO and Q as they are.
  const bool avx2 = has_avx2();
  const int64_t padded = (d.kv_length + kPanel - 1) / kPanel * kPanel;
  const int64_t key_runs = d.head_dim / kPanel;
  // 96 queries a tile, as in the forward: the dK and dV products run over the tile's queries,
  // so longer tiles load and store their accumulators less often (forward+backward
  // at T = 4096 1087 -> 858 ms, one paired run)
  const int64_t query_block = avx2 ? kForwardQueryBlock : kQueryBlock;
  // One task per (sample, key/value head): it owns dk, dv of that head and dq of its query heads.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t n = task / d.kv_heads, g = task % d.kv_heads;
    Buffers &b = buffers();
    std::memset(dk + ((n * d.kv_heads + g) * d.kv_length) * d.head_dim, 0,
                d.kv_length * d.head_dim * sizeof(float));
    std::memset(dv + ((n * d.kv_heads + g) * d.kv_length) * d.value_dim, 0,
                d.kv_length * d.value_dim * sizeof(float));
    b.row_dot.resize(group * d.query_length);
    for (int64_t hh = 0; hh < group; ++hh) {
      const int64_t h = g * group + hh;
      std::memset(dq + ((n * d.query_heads + h) * d.query_length) * d.head_dim, 0,
                  d.query_length * d.head_dim * sizeof(float));
      for (int64_t i = 0; i < d.query_length; ++i) {  // D_i = Σ dO_i · O_i
        const float *o = out + ((n * d.query_heads + h) * d.query_length + i) * d.value_dim;
        const float *go = d_out + ((n * d.query_heads + h) * d.query_length + i) * d.value_dim;
        float dot = 0;
        for (int64_t e = 0; e < d.value_dim; ++e) dot += o[e] * go[e];
        b.row_dot[hh * d.query_length + i] = dot;
      }
    }
    const float *head_k = k + (n * d.kv_heads + g) * d.kv_length * d.head_dim;
    const float *head_v = v + (n * d.kv_heads + g) * d.kv_length * d.value_dim;
    float *key_panels = nullptr, *value_panels = nullptr, *key_columns = nullptr;
    if (avx2) {
      b.packed.resize(padded * (d.head_dim + d.value_dim) + key_runs * kPanel * d.kv_length);
      key_panels = b.packed.data();
      value_panels = key_panels + padded * d.head_dim;
      key_columns = value_panels + padded * d.value_dim;
      pack_panels(key_panels, head_k, d.kv_length, d.head_dim);
      pack_panels(value_panels, head_v, d.kv_length, d.value_dim);
      pack_runs(key_columns, head_k, d.kv_length, d.head_dim);
    }
    b.scores.resize(query_block * kKeyBlock);
    b.d_probs.resize(query_block * kKeyBlock);
    b.d_scores.resize(query_block * kKeyBlock);
    for (int64_t j0 = 0; j0 < d.kv_length; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, d.kv_length - j0);
      // the tiles' row stride: padded to whole panels for the kernels (the padding is not used)
      const int64_t lds = avx2 ? (cols + kPanel - 1) / kPanel * kPanel : cols;
      float *dk_block = dk + ((n * d.kv_heads + g) * d.kv_length + j0) * d.head_dim;
      float *dv_block = dv + ((n * d.kv_heads + g) * d.kv_length + j0) * d.value_dim;
      for (int64_t hh = 0; hh < group; ++hh) {
        const int64_t h = g * group + hh;
        // causal: query blocks that end before this key block see none of it
        const int64_t first_query = d.causal ? j0 / query_block * query_block : 0;
        for (int64_t i0 = first_query; i0 < d.query_length; i0 += query_block) {
          const int64_t rows = std::min(query_block, d.query_length - i0);
          const float *q_block = p.q_rows(q, n, h, i0);
          float *dq_block = dq + ((n * d.query_heads + h) * d.query_length + i0) * d.head_dim;
          float *prob = b.scores.data();
          if (avx2) {
            panel_products_avx2(prob, lds, q_block, d.head_dim, rows, key_panels + j0 * d.head_dim,
                                d.head_dim, d.scale);
            p.apply_mask(prob, lds, n, h, i0, rows, j0, cols);
          } else {
            p.scores(prob, q, k, n, h, i0, rows, j0, cols);
          }
          const float *lse_rows = lse + (n * d.query_heads + h) * d.query_length + i0;
          for (int64_t r = 0; r < rows; ++r) {
            if (std::isinf(lse_rows[r]))  // a fully masked row: no probability anywhere
              std::fill(prob + r * lds, prob + r * lds + cols, 0.0f);
            else
              exp_shifted(prob + r * lds, cols, lse_rows[r]);
          }
          // the dropped-out probabilities (without dropout, the probabilities), then dS
          float *dropped = d.dropout > 0 ? b.d_scores.data() : prob;
          if (d.dropout > 0) {
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t c = 0; c < cols; ++c) {
                const float x = prob[r * lds + c];
                dropped[r * lds + c] =
                    !keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                        ? 0.0f
                        : x * p.dropout_scale;
              }
          }
          const float *go = d_out + ((n * d.query_heads + h) * d.query_length + i0) * d.value_dim;
          float *dp = b.d_probs.data();
          if (avx2) {
            // dV += P_droppedᵀ dO ; dP_dropped = dO Vᵀ
            accumulate_avx2<true>(dv_block, dropped, lds, cols, go, nullptr, 0, rows, d.value_dim);
            panel_products_avx2(dp, lds, go, d.value_dim, rows, value_panels + j0 * d.value_dim,
                                d.value_dim, 1.0f);
          } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(cols),
                        static_cast<blasint>(d.value_dim), static_cast<blasint>(rows), 1.0f,
                        dropped, static_cast<blasint>(lds), go, static_cast<blasint>(d.value_dim),
                        1.0f, dv_block, static_cast<blasint>(d.value_dim));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                        static_cast<blasint>(cols), static_cast<blasint>(d.value_dim), 1.0f, go,
                        static_cast<blasint>(d.value_dim), p.v_rows(v, n, h, j0),
                        static_cast<blasint>(d.value_dim), 0.0f, dp, static_cast<blasint>(lds));
          }
          // scale · dS = scale · P ⊙ (dP − D), with dP = dP_dropped ⊙ keep / (1 − p): the scale
          // of both products below, applied once here
          float *ds = b.d_scores.data();
          for (int64_t r = 0; r < rows; ++r) {
            const float row_dot = b.row_dot[hh * d.query_length + i0 + r];
            if (d.dropout == 0) {
              (avx2 ? d_scores_avx2 : d_scores_scalar)(ds + r * lds, prob + r * lds, dp + r * lds,
                                                       cols, row_dot, d.scale);
              continue;
            }
            for (int64_t c = 0; c < cols; ++c) {
              float grad_prob = dp[r * lds + c];
              if (d.dropout > 0)
                grad_prob = keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                                ? grad_prob * p.dropout_scale
                                : 0.0f;
              ds[r * lds + c] = prob[r * lds + c] * (grad_prob - row_dot) * d.scale;
            }
          }
          // dQ += scale · dS K ; dK += scale · dSᵀ Q
          if (avx2) {
            accumulate_avx2<false>(dq_block, ds, lds, rows, head_k + j0 * d.head_dim,
                                   key_columns + j0 * kPanel, d.kv_length, cols, d.head_dim);
            accumulate_avx2<true>(dk_block, ds, lds, cols, q_block, nullptr, 0, rows, d.head_dim);
          } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                        static_cast<blasint>(d.head_dim), static_cast<blasint>(cols), 1.0f, ds,
                        static_cast<blasint>(lds), head_k + j0 * d.head_dim,
                        static_cast<blasint>(d.head_dim), 1.0f, dq_block,
                        static_cast<blasint>(d.head_dim));
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(cols),
                        static_cast<blasint>(d.head_dim), static_cast<blasint>(rows), 1.0f, ds,
                        static_cast<blasint>(lds), q_block, static_cast<blasint>(d.head_dim), 1.0f,
                        dk_block, static_cast<blasint>(d.head_dim));
          }
        }
      }
    }
  }
}

void validate(const seq4j_attention_desc *desc, const float *mask) {
  if (desc == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "desc is NULL");
  const auto &d = *desc;
  if (d.batch < 1 || d.query_heads < 1 || d.kv_heads < 1 || d.query_length < 1 || d.kv_length < 1 ||
      d.head_dim < 1 || d.value_dim < 1)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "every size in desc must be >= 1, got batch=", d.batch,
         " query_heads=", d.query_heads, " kv_heads=", d.kv_heads, " query_length=", d.query_length,
         " kv_length=", d.kv_length, " head_dim=", d.head_dim, " value_dim=", d.value_dim);
  if (d.query_heads % d.kv_heads != 0)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "query_heads (", d.query_heads,
         ") must be a multiple of kv_heads (", d.kv_heads, ")");
  if (!(d.dropout >= 0.0f && d.dropout < 1.0f))
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "dropout must be in [0, 1), got ", d.dropout);
  if (!std::isfinite(d.scale)) fail(SEQ4J_ERR_INVALID_ARGUMENT, "scale must be finite, got ", d.scale);
  if (d.mask_kind < SEQ4J_MASK_NONE || d.mask_kind > SEQ4J_MASK_BOOLEAN)
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "mask_kind must be 0, 1 or 2, got ", d.mask_kind);
  if ((d.mask_kind != SEQ4J_MASK_NONE) != (mask != nullptr))
    fail(SEQ4J_ERR_INVALID_ARGUMENT, "mask must be given exactly when mask_kind is not 0");
}

}  // namespace
}  // namespace seq4j

using seq4j::fail;
using seq4j::guarded;

extern "C" {

int seq4j_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                            const float *mask, const float *key_padding,
                            const seq4j_attention_desc *desc) {
  return guarded(__func__, [&] {
    seq4j::validate(desc, mask);
    if (out == nullptr || q == nullptr || k == nullptr || v == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "out, q, k and v must not be NULL");
    seq4j::use_configured_threads();
    seq4j::forward(out, lse, q, k, v, seq4j::Problem(*desc, mask, key_padding));
    return SEQ4J_OK;
  });
}

int seq4j_attention_backward(float *dq, float *dk, float *dv, const float *d_out, const float *q,
                             const float *k, const float *v, const float *out, const float *lse,
                             const float *mask, const float *key_padding,
                             const seq4j_attention_desc *desc) {
  return guarded(__func__, [&] {
    seq4j::validate(desc, mask);
    if (dq == nullptr || dk == nullptr || dv == nullptr || d_out == nullptr || q == nullptr ||
        k == nullptr || v == nullptr || out == nullptr || lse == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "dq, dk, dv, d_out, q, k, v, out and lse must not be NULL");
    seq4j::use_configured_threads();
    seq4j::backward(dq, dk, dv, d_out, q, k, v, out, lse, seq4j::Problem(*desc, mask, key_padding));
    return SEQ4J_OK;
  });
}

int seq4j_attention_weights(float *weights, const float *q, const float *k, const float *mask,
                            const float *key_padding, const seq4j_attention_desc *desc) {
  return guarded(__func__, [&] {
    seq4j::validate(desc, mask);
    if (weights == nullptr || q == nullptr || k == nullptr)
      fail(SEQ4J_ERR_INVALID_ARGUMENT, "weights, q and k must not be NULL");
    seq4j::use_configured_threads();
    const auto &d = *desc;
    seq4j::Problem p(d, mask, key_padding);
    const int64_t tasks = d.batch * d.query_heads;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t n = task / d.query_heads, h = task % d.query_heads;
      float *w = weights + task * d.query_length * d.kv_length;
      for (int64_t i0 = 0; i0 < d.query_length; i0 += seq4j::kQueryBlock) {
        const int64_t rows = std::min(seq4j::kQueryBlock, d.query_length - i0);
        p.scores(w + i0 * d.kv_length, q, k, n, h, i0, rows, 0, d.kv_length);
      }
      for (int64_t i = 0; i < d.query_length; ++i) {
        float *row = w + i * d.kv_length;
        float max = seq4j::kMinusInfinity;
        for (int64_t j = 0; j < d.kv_length; ++j) max = std::max(max, row[j]);
        if (max == seq4j::kMinusInfinity) {
          std::fill(row, row + d.kv_length, 0.0f);
          continue;
        }
        float sum = 0;
        for (int64_t j = 0; j < d.kv_length; ++j) sum += row[j] = std::exp(row[j] - max);
        for (int64_t j = 0; j < d.kv_length; ++j) row[j] /= sum;
      }
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
