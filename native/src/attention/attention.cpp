// Scaled dot-product attention, forward and backward, memory-efficient (FlashAttention's scheme
// on the CPU): the scores of one block of queries against one block of keys at a time, an online
// softmax across key blocks, and each row's log-sum-exp kept for the backward, which recomputes
// the score blocks instead of storing them. The blocks are spread over the OpenMP pool. The
// forward's block products are micro-kernels on keys and values packed once per call, the
// backward's the same kernels on keys and values packed once per task, in an AVX-512 copy and an
// AVX2 copy on the same packed layouts (with single-threaded OpenBLAS sgemms, ops/gemm.h, as the
// portable fallback for both). The ISA switch (core/cpu.h) chooses between them; the dropout of
// the attention weights draws its mask from ops/dropout.h.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "core/cpu.h"
#include "core/error.h"
#include "core/fast_exp.h"
#include "core/transpose.h"
#include "core/runtime.h"
#include "ops/dropout.h"
#include "ops/gemm.h"

#if SEQ4J_X86_64
#include <immintrin.h>
// The AVX-512 copies (the instruction sets of the cell kernels' AVX-512 copy, rnn/cell_kernels.cpp)
#define SEQ4J_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")))
#endif

namespace seq4j {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 128;
// The forward's AVX2 and AVX-512 paths: own micro-kernels on keys and values packed once per call
// (OpenBLAS re-packed both operands of every small tile product, a third of the forward's time),
// in blocks of at most kForwardQueryBlock queries by kKeyBlock keys (96 × 256, 48 × 128 and
// 192 × 64 were no better within noise; for the AVX-512 copy 48, 144 × 128 and 96 × 256 neither,
// and with 48 or 144 queries or 256 keys the causal backward's skips came coarser or costlier).
constexpr int64_t kPanel = kPanelWidth;
constexpr int64_t kKernelRows = 6;
constexpr int64_t kForwardQueryBlock = 96;
// The AVX-512 kernels' rows: 2 × 12 accumulators of the 32 zmm registers. Alone (operands in
// L1 and L2) the 12-row tiles ran at 83-87 % of an FMA loop's rate, 8 rows 6 % slower; in the
// attention 8 and 10 rows were no faster within noise.
constexpr int64_t kKernelRows512 = 12;
constexpr float kMinusInfinity = -std::numeric_limits<float>::infinity();
// The accumulating products' skew (value_columns_*): none, every row group runs over the whole
// depth.
constexpr int64_t kNoSkew = std::numeric_limits<int64_t>::min() / 4;
// With a skew, the row group starting at row r runs over the depth from r + skew on (clamped to
// 0 .. depth): the transposed products of a causal diagonal tile, where key c sees only queries
// from c + j0 - i0 on (the entries before are zero, or not computed at all).
inline int64_t skewed_start(int64_t r, int64_t skew, int64_t depth) {
  return std::clamp<int64_t>(r + skew, 0, depth);
}

// row[c] = exp(row[c] - shift), returning the sum. The scalar std::exp of this loop was most of
// the attention's time; the AVX2 version evaluates seq4j's fast exp (core/fast_exp.h, about
// 1 ulp) on 8 floats at a time, the AVX-512 one on 16, chosen at run time. Masked scores (-inf)
// give exactly 0 in each.
float exp_shifted_scalar(float *row, int64_t n, float shift) {
  float sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    row[c] = std::exp(row[c] - shift);
    sum += row[c];
  }
  return sum;
}

#if SEQ4J_X86_64
// The first n < 16 lanes.
inline __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float *row, int64_t n, float shift) {
  const __m256 shift8 = _mm256_set1_ps(shift);
  __m256 sum8 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + c), shift8));
    _mm256_storeu_ps(row + c, e);
    sum8 = _mm256_add_ps(sum8, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum8);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
              ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  return sum + exp_shifted_scalar(row + c, n - c, shift);
}

// The same on 16 floats at a time with exp16_avx512 (exp8_avx2's bits here, where inputs are
// <= 0), the last ones under a mask instead of std::exp; the sum runs in another order.
SEQ4J_AVX512 float exp_shifted_avx512(float *row, int64_t n, float shift) {
  const __m512 shift16 = _mm512_set1_ps(shift);
  __m512 sum16 = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m512 e = exp16_avx512(_mm512_sub_ps(_mm512_loadu_ps(row + c), shift16));
    _mm512_storeu_ps(row + c, e);
    sum16 = _mm512_add_ps(sum16, e);
  }
  if (c < n) {
    const __mmask16 tail = tail_mask(n - c);
    const __m512 e = exp16_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, row + c), shift16));
    _mm512_mask_storeu_ps(row + c, tail, e);
    sum16 = _mm512_mask_add_ps(sum16, tail, sum16, e);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum16);
  for (int width = 8; width > 0; width /= 2)  // pairwise: lane l + width onto lane l
    for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
  return lanes[0];
}
#endif  // SEQ4J_X86_64

// The ISA switch (core/cpu.h) picks the AVX-512 kernels, the AVX2 ones, or the portable
// fallback: exp_shifted_scalar, row_max_scalar, d_scores_scalar and OpenBLAS's sgemm.
float exp_shifted(float *row, int64_t n, float shift) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return exp_shifted_avx512(row, n, shift);
  if (use_avx2()) return exp_shifted_avx2(row, n, shift);
#endif
  return exp_shifted_scalar(row, n, shift);
}

// GCC keeps a float max reduction scalar (it may not reorder it), one score per cycle or worse.
float row_max_scalar(const float *row, int64_t n) {
  float max = kMinusInfinity;
  for (int64_t c = 0; c < n; ++c) max = std::max(max, row[c]);
  return max;
}

#if SEQ4J_X86_64
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

// (_mm512_maskz_max_ps under an all-ones mask: see exp16_avx512 on GCC 12's _mm512_max_ps)
SEQ4J_AVX512 float row_max_avx512(const float *row, int64_t n) {
  const __m512 minus_infinity = _mm512_set1_ps(kMinusInfinity);
  __m512 max16 = minus_infinity;
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) max16 = _mm512_maskz_max_ps(0xffff, max16, _mm512_loadu_ps(row + c));
  if (c < n)
    max16 = _mm512_maskz_max_ps(0xffff, max16,
                                _mm512_mask_loadu_ps(minus_infinity, tail_mask(n - c), row + c));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, max16);
  float max = kMinusInfinity;
  for (float lane : lanes) max = std::max(max, lane);  // as row_max_avx2: a NaN lane is dropped
  return max;
}
#endif  // SEQ4J_X86_64

float row_max(const float *row, int64_t n) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return row_max_avx512(row, n);
  if (use_avx2()) return row_max_avx2(row, n);
#endif
  return row_max_scalar(row, n);
}

// NaN propagation (PyTorch's math SDPA: softmax(scale · q kᵀ + mask) v, masks added as -inf).
// row_max ignores NaN (maxps and std::max drop it), so a NaN score is caught where it is cheap:
// past row_max, exp(NaN - max) = NaN makes the row's sum NaN (fast_exp.h keeps NaN); a block whose
// max is -inf (every score -inf or NaN) is summed, once per such row and block, and a NaN sum
// poisons the row. A row with a +inf score has sum exp(inf - inf) = NaN too. Only a row whose
// every score is -inf (masked, or -inf from the inputs) is "fully masked": zeros, lse = +inf.
bool has_nan(const float *row, int64_t n) {
  float sum = 0;  // -inf + -inf = -inf; NaN anywhere gives NaN
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) sum += row[c];
  return sum != sum;
}

// Whether every float of x is finite: the largest |x| as bits (NaN and inf have the largest).
// Compiled once per ISA (the portable build's SSE2 copy was a tenth of a causal forward at
// T = 512, where q, k and v are all checked).
__attribute__((always_inline)) inline bool all_finite_body(const float *x, int64_t n) {
  uint32_t largest = 0;
#pragma omp simd reduction(max : largest)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    bits &= 0x7fffffffu;
    largest = bits > largest ? bits : largest;
  }
  return largest < 0x7f800000u;
}

bool all_finite_scalar(const float *x, int64_t n) { return all_finite_body(x, n); }
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) bool all_finite_avx2(const float *x, int64_t n) {
  return all_finite_body(x, n);
}
SEQ4J_AVX512 bool all_finite_avx512(const float *x, int64_t n) { return all_finite_body(x, n); }
#endif

bool all_finite(const float *x, int64_t n) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return all_finite_avx512(x, n);
  if (use_avx2()) return all_finite_avx2(x, n);
#endif
  return all_finite_scalar(x, n);
}

// out[e] = in[e] · factor (out may equal in): the online softmax's rescale of a row's
// accumulator and its final normalisation, compiled once per ISA (the portable SSE2 loops were a
// twentieth of a causal forward at T = 512).
__attribute__((always_inline)) inline void scaled_body(float *out, const float *in, int64_t n,
                                                       float factor) {
#pragma omp simd
  for (int64_t e = 0; e < n; ++e) out[e] = in[e] * factor;
}
void scaled_scalar(float *out, const float *in, int64_t n, float factor) {
  scaled_body(out, in, n, factor);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) void scaled_avx2(float *out, const float *in, int64_t n,
                                                     float factor) {
  scaled_body(out, in, n, factor);
}
SEQ4J_AVX512 void scaled_avx512(float *out, const float *in, int64_t n, float factor) {
  scaled_body(out, in, n, factor);
}
#endif
// dots[i] = Σ_e out[i, e] · d_out[i, e] for rows i of width n (the backward's D_i), and whether
// every d_out value is finite: one pass over d_out for both, compiled once per ISA.
__attribute__((always_inline)) inline bool row_dots_body(float *dots, const float *out,
                                                         const float *d_out, int64_t rows,
                                                         int64_t n) {
  uint32_t largest = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const float *o = out + i * n;
    const float *g = d_out + i * n;
    float dot = 0;
#pragma omp simd reduction(+ : dot) reduction(max : largest)
    for (int64_t e = 0; e < n; ++e) {
      dot += o[e] * g[e];
      uint32_t bits;
      std::memcpy(&bits, g + e, sizeof bits);
      bits &= 0x7fffffffu;
      largest = bits > largest ? bits : largest;
    }
    dots[i] = dot;
  }
  return largest < 0x7f800000u;
}
bool row_dots_scalar(float *dots, const float *out, const float *d_out, int64_t rows, int64_t n) {
  return row_dots_body(dots, out, d_out, rows, n);
}
#if SEQ4J_X86_64
__attribute__((target("avx2,fma"))) bool row_dots_avx2(float *dots, const float *out,
                                                       const float *d_out, int64_t rows,
                                                       int64_t n) {
  return row_dots_body(dots, out, d_out, rows, n);
}
SEQ4J_AVX512 bool row_dots_avx512(float *dots, const float *out, const float *d_out, int64_t rows,
                                  int64_t n) {
  return row_dots_body(dots, out, d_out, rows, n);
}
#endif
bool row_dots(float *dots, const float *out, const float *d_out, int64_t rows, int64_t n) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return row_dots_avx512(dots, out, d_out, rows, n);
  if (use_avx2()) return row_dots_avx2(dots, out, d_out, rows, n);
#endif
  return row_dots_scalar(dots, out, d_out, rows, n);
}

void scaled(float *out, const float *in, int64_t n, float factor) {
#if SEQ4J_X86_64
  if (active_isa() == Isa::kAvx512) return scaled_avx512(out, in, n, factor);
  if (use_avx2()) return scaled_avx2(out, in, n, factor);
#endif
  scaled_scalar(out, in, n, factor);
}

static_assert(kPanel == 16, "the panel packing transposes 16 × 16 blocks");


// One panel: panel[e · kPanel + c] = rows[c · depth + e] for the first `keys` <= kPanel rows,
// zeros for the rest. The scalar transpose, a store per float to a new cache line, was most of
// the packing, and the packing a seventh of a causal forward at T = 512; with AVX-512 whole
// 16 × 16 blocks go through registers.
void pack_panel(float *panel, const float *rows, int64_t keys, int64_t depth) {
  int64_t e0 = 0;
#if SEQ4J_X86_64
  if (keys == kPanel && active_isa() == Isa::kAvx512)
    for (; e0 + kPanel <= depth; e0 += kPanel)
      transpose_16x16_avx512(panel + e0 * kPanel, kPanel, rows + e0, depth);
#endif
  for (int64_t c = 0; c < kPanel; ++c) {
    if (c < keys) {
      const float *key = rows + c * depth;
      for (int64_t e = e0; e < depth; ++e) panel[e * kPanel + c] = key[e];
    } else {
      for (int64_t e = e0; e < depth; ++e) panel[e * kPanel + c] = 0.0f;
    }
  }
}

// The forward's keys and values, packed once per call. Keys, for score_tile_avx2 and
// score_tile_avx512: per (sample, key/value head) and run of kPanel keys, head_dim rows of kPanel
// floats, zero past kv_length, so the kernel reads one dimension of kPanel keys with two loads
// (one zmm load) instead of a strided gather. Values, for value_tile_avx2 and value_tile_avx512:
// per (sample, key/value head) and run of kPanel value columns, the keys' kPanel floats back to
// back. Read in place, one such run of a key block is a cache line every value_dim floats, all
// in 16 of L1's 64 sets at value_dim = 64, and the block's lines evicted one another before the
// next row group came. Columns past the last full run (value_dim % kPanel) stay in v.
// One allocation, not zeroed (pack writes every float): a serial zero fill cost as much again as
// packing; and glibc's malloc handed two buffers of half the size back to the system after each
// call, to be faulted in again on the next (a sixth of a 128-query forward against 4096 keys),
// while one it keeps (its trim threshold follows the largest block freed).
struct PackedHeads {
  int64_t heads, length, head_dim, value_dim, panels, runs;
  std::unique_ptr<float[]> data;
  std::unique_ptr<uint8_t[]> finite;  // causal only: the mask and packed_finite, per head

  PackedHeads(int64_t heads_, const seq4j_attention_desc &d)
      : heads(heads_), length(d.kv_length), head_dim(d.head_dim), value_dim(d.value_dim),
        panels((d.kv_length + kPanel - 1) / kPanel), runs(d.value_dim / kPanel),
        data(new float[heads * (panels * head_dim + runs * length) * kPanel]),
        finite(new uint8_t[heads]()) {}

  float *key_panel(int64_t head, int64_t j0) const {
    return data.get() + (head * panels + j0 / kPanel) * head_dim * kPanel;
  }
  float *value_run(int64_t head, int64_t e0, int64_t j0) const {
    return data.get() + heads * panels * head_dim * kPanel +
           ((head * runs + e0 / kPanel) * length + j0) * kPanel;
  }

  // Whether head `head`'s keys and values are all finite, read from their packed copies (which
  // hold every float of k and the first runs · kPanel columns of v, zeros past length) while
  // they are in the cache: a pass over k and v before the packing pulled them from memory twice,
  // 3 % of a causal forward at T = 512.
  bool packed_finite(const float *v, int64_t head) const {
    return all_finite(key_panel(head, 0), panels * head_dim * kPanel) &&
           all_finite(value_run(head, 0, 0), runs * length * kPanel) &&
           (runs * kPanel == value_dim || all_finite(v + head * length * value_dim,
                                                     length * value_dim));
  }

  void pack(const float *k, const float *v, int64_t head) {
    for (int64_t j0 = 0; j0 < length; j0 += kPanel)
      pack_panel(key_panel(head, j0), k + (head * length + j0) * head_dim,
                 std::min(kPanel, length - j0), head_dim);
    for (int64_t e0 = 0; e0 < runs * kPanel; e0 += kPanel) {
      float *run = value_run(head, e0, 0);
      for (int64_t j = 0; j < length; ++j, run += kPanel)
        for (int64_t e = 0; e < kPanel; ++e) run[e] = v[(head * length + j) * value_dim + e0 + e];
    }
  }
};

#if SEQ4J_X86_64
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
// With row_scale, o's row r is first multiplied by row_scale[r] (the online softmax's rescale of
// the forward's accumulator, as scaled() gives it, without a pass of its own).
template <int R, int W, bool Transposed = false>
__attribute__((target("avx2,fma"))) void value_tile_avx2(float *o, int64_t ldo, const float *p,
                                                         int64_t ldp, const float *v, int64_t ldv,
                                                         int64_t depth, const float *row_scale) {
  static_assert(R >= 1 && R <= 6 && (W == 1 || W == 2), "value_tile_avx2 holds at most 6 × 16");
#define SEQ4J_LOAD(r)                                                        \
  __m256 lo##r = _mm256_setzero_ps(), hi##r = _mm256_setzero_ps();         \
  if constexpr (r < R) {                                                     \
    lo##r = _mm256_loadu_ps(o + r * ldo);                                    \
    if constexpr (W == 2) hi##r = _mm256_loadu_ps(o + r * ldo + 8);          \
    if (row_scale != nullptr) {                                              \
      const __m256 f = _mm256_set1_ps(row_scale[r]);                         \
      lo##r = _mm256_mul_ps(lo##r, f);                                       \
      if constexpr (W == 2) hi##r = _mm256_mul_ps(hi##r, f);                 \
    }                                                                        \
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

// s (rows × width of row stride lds, width a multiple of kPanel) = scale · q kᵀ for keys j0 ..
// j0 + width of one head.
template <int R>
__attribute__((target("avx2,fma"))) void score_rows_avx2(float *s, int64_t lds, const float *q,
                                                         int64_t ldq, const PackedHeads &packed,
                                                         int64_t head, int64_t j0, float scale,
                                                         int64_t width) {
  for (int64_t c = 0; c < width; c += kPanel)
    score_tile_avx2<R>(s + c, lds, q, ldq, packed.key_panel(head, j0 + c), packed.head_dim,
                       scale);
}

__attribute__((target("avx2,fma"))) void scores_avx2(float *s, int64_t lds, const float *q,
                                                     int64_t ldq, int64_t rows,
                                                     const PackedHeads &packed, int64_t head,
                                                     int64_t j0, float scale, int64_t width) {
  int64_t r = 0;
  for (; r + kKernelRows <= rows; r += kKernelRows)
    score_rows_avx2<kKernelRows>(s + r * lds, lds, q + r * ldq, ldq, packed, head, j0, scale,
                                 width);
  float *sr = s + r * lds;
  const float *qr = q + r * ldq;
  switch (rows - r) {
    case 5: score_rows_avx2<5>(sr, lds, qr, ldq, packed, head, j0, scale, width); break;
    case 4: score_rows_avx2<4>(sr, lds, qr, ldq, packed, head, j0, scale, width); break;
    case 3: score_rows_avx2<3>(sr, lds, qr, ldq, packed, head, j0, scale, width); break;
    case 2: score_rows_avx2<2>(sr, lds, qr, ldq, packed, head, j0, scale, width); break;
    case 1: score_rows_avx2<1>(sr, lds, qr, ldq, packed, head, j0, scale, width); break;
    default: break;
  }
}

// o (rows × 8W) += p (rows × depth) · v (depth × 8W): these columns of v (depth cache lines at
// W = 2) stay in L1 while every row group of p passes over them.
// With a skew (kNoSkew for none) each row group starts its depth at skewed_start; with row_scale
// (rows floats, or null) o's rows are rescaled first, as in value_tile_avx2.
template <int W, bool Transposed = false>
__attribute__((target("avx2,fma"))) void value_columns_avx2(float *o, int64_t ldo, const float *p,
                                                            int64_t ldp, int64_t rows,
                                                            const float *v, int64_t ldv,
                                                            int64_t depth, int64_t skew,
                                                            const float *row_scale = nullptr) {
  auto scales = [&](int64_t r) { return row_scale != nullptr ? row_scale + r : nullptr; };
  // the next row group of p: rows further down, or columns further right when transposed
  const int64_t step = Transposed ? 1 : ldp;
  // one step along the depth: p's next column, or its next row when transposed
  const int64_t along = Transposed ? ldp : 1;
  int64_t r = 0;
  for (; r + kKernelRows <= rows; r += kKernelRows) {
    const int64_t j = skewed_start(r, skew, depth);
    value_tile_avx2<kKernelRows, W, Transposed>(o + r * ldo, ldo, p + r * step + j * along, ldp,
                                                v + j * ldv, ldv, depth - j, scales(r));
  }
  const int64_t j = skewed_start(r, skew, depth);
  float *orow = o + r * ldo;
  const float *prow = p + r * step + j * along;
  const float *vj = v + j * ldv;
  const int64_t left = depth - j;
  const float *sr = scales(r);
  switch (rows - r) {
    case 5: value_tile_avx2<5, W, Transposed>(orow, ldo, prow, ldp, vj, ldv, left, sr); break;
    case 4: value_tile_avx2<4, W, Transposed>(orow, ldo, prow, ldp, vj, ldv, left, sr); break;
    case 3: value_tile_avx2<3, W, Transposed>(orow, ldo, prow, ldp, vj, ldv, left, sr); break;
    case 2: value_tile_avx2<2, W, Transposed>(orow, ldo, prow, ldp, vj, ldv, left, sr); break;
    case 1: value_tile_avx2<1, W, Transposed>(orow, ldo, prow, ldp, vj, ldv, left, sr); break;
    default: break;
  }
}

// The backward's products, on operands packed once per task. Panels: keys (or values) in
// panels of kPanel as score_tile_avx2 reads them, depth rows each, zero past length. Runs: the
// first width / kPanel runs of kPanel columns, rows back to back, as value_tile_avx2 reads them.
void pack_panels(float *dst, const float *src, int64_t length, int64_t depth) {
  for (int64_t j0 = 0; j0 < length; j0 += kPanel, dst += depth * kPanel)
    pack_panel(dst, src + j0 * depth, std::min(kPanel, length - j0), depth);
}

void pack_runs(float *dst, const float *src, int64_t length, int64_t width) {
  for (int64_t e0 = 0; e0 + kPanel <= width; e0 += kPanel)
    for (int64_t j = 0; j < length; ++j, dst += kPanel)
      std::memcpy(dst, src + j * width + e0, kPanel * sizeof(float));
}

// s (rows × width of row stride lds, width a multiple of kPanel) = scale · a bᵀ, b's rows given
// as packed panels.
__attribute__((target("avx2,fma"))) void panel_products_avx2(float *s, int64_t lds, const float *a,
                                                             int64_t lda, int64_t rows,
                                                             const float *panels, int64_t depth,
                                                             float scale, int64_t width) {
  for (int64_t c = 0; c < width; c += kPanel) {
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
                                                         int64_t depth, int64_t width,
                                                         int64_t skew = kNoSkew,
                                                         const float *row_scale = nullptr) {
  int64_t e = 0;
  for (; e + kPanel <= width; e += kPanel) {
    if (runs != nullptr)
      value_columns_avx2<2, Transposed>(o + e, width, a, lda, rows,
                                        runs + e / kPanel * run_length * kPanel, kPanel, depth,
                                        skew, row_scale);
    else
      value_columns_avx2<2, Transposed>(o + e, width, a, lda, rows, b + e, width, depth, skew,
                                        row_scale);
  }
  if (e + 8 <= width) {
    value_columns_avx2<1, Transposed>(o + e, width, a, lda, rows, b + e, width, depth, skew,
                                      row_scale);
    e += 8;
  }
  for (; e < width; ++e)
    for (int64_t r = 0; r < rows; ++r) {
      float sum = 0;
      for (int64_t j = skewed_start(r, skew, depth); j < depth; ++j)
        sum += (Transposed ? a[j * lda + r] : a[r * lda + j]) * b[j * width + e];
      if (row_scale != nullptr) o[r * width + e] *= row_scale[r];
      o[r * width + e] += sum;
    }
}

// The AVX-512 copies of the tile kernels, on the same packed layouts. A zmm holds a whole panel
// row (kPanel keys) or a run of kPanel value columns, so a tile is R rows by W = 2 panels (or
// runs, two pointers) with 2R accumulators: R = kKernelRows512 keeps 24 of the 32 registers busy
// and loads 2 + R vectors per 2R FMAs (the q or p values broadcast from memory into the FMAs).
// W = 1 takes an odd last panel or run; Masked (W = 1) the last value_dim % kPanel columns of v,
// read in place under a mask.
#define SEQ4J_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
// the row counts below R of a last partial row group, as switch cases: CALL(r) for r rows
#define SEQ4J_PARTIAL_ROWS(CALL)                                                      \
  case 11: CALL(11); break;                                                           \
  case 10: CALL(10); break;                                                           \
  case 9: CALL(9); break;                                                             \
  case 8: CALL(8); break;                                                             \
  case 7: CALL(7); break;                                                             \
  case 6: CALL(6); break;                                                             \
  case 5: CALL(5); break;                                                             \
  case 4: CALL(4); break;                                                             \
  case 3: CALL(3); break;                                                             \
  case 2: CALL(2); break;                                                             \
  case 1: CALL(1); break;                                                             \
  default: break;

// s (R × kPanel·W, row stride lds) = scale · q (R × depth, row stride ldq) · (panel, panel +
// panel_stride)ᵀ. Not inlined, nor is value_tile_avx512: inlined into their callers' loops GCC 12
// kept the second panel's vector on the stack, reloaded for each of the 12 FMAs that use it.
// With maxes (R rows of kPanel floats), each row's lanes also keep the largest score so far (NaN
// dropped, as row_max does): the forward's row max without a pass over the scores of its own.
template <int R, int W>
SEQ4J_AVX512 __attribute__((noinline)) void score_tile_avx512(float *s, int64_t lds,
                                                              const float *q, int64_t ldq,
                                                              const float *panel,
                                                              int64_t panel_stride, int64_t depth,
                                                              float scale, float *maxes) {
  static_assert(R >= 1 && R <= 12 && (W == 1 || W == 2), "score_tile_avx512 holds 12 × 2 panels");
#define SEQ4J_DECLARE(r) __m512 lo##r = _mm512_setzero_ps(), hi##r = _mm512_setzero_ps();
  SEQ4J_ROWS12(SEQ4J_DECLARE)
#undef SEQ4J_DECLARE
  const float *second = panel;
  if constexpr (W == 2) second = panel + panel_stride;
  for (int64_t e = 0; e < depth; ++e) {
    const __m512 b0 = _mm512_loadu_ps(panel + e * kPanel);
    __m512 b1 = b0;
    if constexpr (W == 2) b1 = _mm512_loadu_ps(second + e * kPanel);
#define SEQ4J_STEP(r)                                        \
  if constexpr (r < R) {                                     \
    const __m512 a = _mm512_set1_ps(q[r * ldq + e]);         \
    lo##r = _mm512_fmadd_ps(a, b0, lo##r);                   \
    if constexpr (W == 2) hi##r = _mm512_fmadd_ps(a, b1, hi##r); \
  }
    SEQ4J_ROWS12(SEQ4J_STEP)
#undef SEQ4J_STEP
  }
  const __m512 scale16 = _mm512_set1_ps(scale);
#define SEQ4J_STORE(r)                                                                       \
  if constexpr (r < R) {                                                                     \
    lo##r = _mm512_mul_ps(lo##r, scale16);                                                   \
    _mm512_storeu_ps(s + r * lds, lo##r);                                                    \
    if constexpr (W == 2) {                                                                  \
      hi##r = _mm512_mul_ps(hi##r, scale16);                                                 \
      _mm512_storeu_ps(s + r * lds + kPanel, hi##r);                                         \
    }                                                                                        \
  }
  SEQ4J_ROWS12(SEQ4J_STORE)
#undef SEQ4J_STORE
  if (maxes == nullptr) return;
  // vmaxps returns its second operand where either is NaN: the kept maximum, so NaN is dropped
#define SEQ4J_MAX(r)                                                                          \
  if constexpr (r < R) {                                                                      \
    __m512 kept = _mm512_loadu_ps(maxes + r * kPanel);                                        \
    kept = _mm512_maskz_max_ps(0xffff, lo##r, kept);                                          \
    if constexpr (W == 2) kept = _mm512_maskz_max_ps(0xffff, hi##r, kept);                    \
    _mm512_storeu_ps(maxes + r * kPanel, kept);                                               \
  }
  SEQ4J_ROWS12(SEQ4J_MAX)
#undef SEQ4J_MAX
}

// o (R × kPanel·W, row stride ldo) += p (R × depth, row stride ldp) · v (depth × kPanel·W): v's
// rows ldv apart, its second kPanel columns at v + second (the next packed run, or kPanel
// further along a row read in place). Masked: W = 1 and only the columns of `tail`, of o and of
// v (read in place). Transposed: p's element (r, j) is p[j · ldp + r], as in value_tile_avx2;
// row_scale (or null) rescales o's rows first, as there.
template <int R, int W, bool Transposed, bool Masked>
SEQ4J_AVX512 __attribute__((noinline)) void value_tile_avx512(float *o, int64_t ldo,
                                                              const float *p, int64_t ldp,
                                                              const float *v, int64_t ldv,
                                                              int64_t second, int64_t depth,
                                                              __mmask16 tail,
                                                              const float *row_scale) {
  static_assert(R >= 1 && R <= 12 && (W == 1 || W == 2) && !(Masked && W == 2),
                "value_tile_avx512 holds 12 × 2 runs, one when masked");
#define SEQ4J_LOAD(r)                                                          \
  __m512 lo##r = _mm512_setzero_ps(), hi##r = _mm512_setzero_ps();             \
  if constexpr (r < R) {                                                       \
    if constexpr (Masked)                                                      \
      lo##r = _mm512_maskz_loadu_ps(tail, o + r * ldo);                        \
    else                                                                       \
      lo##r = _mm512_loadu_ps(o + r * ldo);                                    \
    if constexpr (W == 2) hi##r = _mm512_loadu_ps(o + r * ldo + kPanel);       \
    if (row_scale != nullptr) {                                                \
      const __m512 f = _mm512_set1_ps(row_scale[r]);                           \
      lo##r = _mm512_mul_ps(lo##r, f);                                         \
      if constexpr (W == 2) hi##r = _mm512_mul_ps(hi##r, f);                   \
    }                                                                          \
  }
  SEQ4J_ROWS12(SEQ4J_LOAD)
#undef SEQ4J_LOAD
  const float *v1 = v;
  if constexpr (W == 2) v1 = v + second;
  for (int64_t j = 0; j < depth; ++j) {
    __m512 b0, b1;
    if constexpr (Masked)
      b0 = _mm512_maskz_loadu_ps(tail, v + j * ldv);
    else
      b0 = _mm512_loadu_ps(v + j * ldv);
    b1 = b0;
    if constexpr (W == 2) b1 = _mm512_loadu_ps(v1 + j * ldv);
#define SEQ4J_STEP(r)                                                                  \
  if constexpr (r < R) {                                                               \
    const __m512 a = _mm512_set1_ps(Transposed ? p[j * ldp + r] : p[r * ldp + j]);     \
    lo##r = _mm512_fmadd_ps(a, b0, lo##r);                                             \
    if constexpr (W == 2) hi##r = _mm512_fmadd_ps(a, b1, hi##r);                       \
  }
    SEQ4J_ROWS12(SEQ4J_STEP)
#undef SEQ4J_STEP
  }
#define SEQ4J_STORE(r)                                                      \
  if constexpr (r < R) {                                                    \
    if constexpr (Masked)                                                   \
      _mm512_mask_storeu_ps(o + r * ldo, tail, lo##r);                      \
    else                                                                    \
      _mm512_storeu_ps(o + r * ldo, lo##r);                                 \
    if constexpr (W == 2) _mm512_storeu_ps(o + r * ldo + kPanel, hi##r);    \
  }
  SEQ4J_ROWS12(SEQ4J_STORE)
#undef SEQ4J_STORE
}
#undef SEQ4J_ROWS12

// s (rows × W panels, row stride lds) = scale · a (rows × depth) · (panel, panel + stride)ᵀ, in
// row groups of kKernelRows512.
template <int W>
SEQ4J_AVX512 void score_columns_avx512(float *s, int64_t lds, const float *a, int64_t lda,
                                       int64_t rows, const float *panel, int64_t panel_stride,
                                       int64_t depth, float scale, float *maxes) {
  int64_t r = 0;
  for (; r + kKernelRows512 <= rows; r += kKernelRows512)
    score_tile_avx512<kKernelRows512, W>(s + r * lds, lds, a + r * lda, lda, panel, panel_stride,
                                         depth, scale,
                                         maxes == nullptr ? nullptr : maxes + r * kPanel);
  float *sr = s + r * lds;
  const float *ar = a + r * lda;
  float *mr = maxes == nullptr ? nullptr : maxes + r * kPanel;
#define SEQ4J_CALL(n) \
  score_tile_avx512<n, W>(sr, lds, ar, lda, panel, panel_stride, depth, scale, mr)
  switch (rows - r) { SEQ4J_PARTIAL_ROWS(SEQ4J_CALL) }
#undef SEQ4J_CALL
}

// s (rows × width of row stride lds, width a multiple of kPanel) = scale · a bᵀ, b's rows given
// as packed panels (depth × kPanel floats each, back to back): two panels at a time, an odd last
// one alone. The forward's scores (a = a query block, the panels of a key block) and the
// backward's S and dP. With maxes (rows × kPanel floats), as score_tile_avx512.
SEQ4J_AVX512 void panel_products_max_avx512(float *s, int64_t lds, const float *a, int64_t lda,
                                            int64_t rows, const float *panels, int64_t depth,
                                            float scale, int64_t width, float *maxes) {
  const int64_t stride = depth * kPanel;
  int64_t c = 0;
  for (; c + 2 * kPanel <= width; c += 2 * kPanel)
    score_columns_avx512<2>(s + c, lds, a, lda, rows, panels + c * depth, stride, depth, scale,
                            maxes);
  if (c < width)
    score_columns_avx512<1>(s + c, lds, a, lda, rows, panels + c * depth, stride, depth, scale,
                            maxes);
}

SEQ4J_AVX512 void panel_products_avx512(float *s, int64_t lds, const float *a, int64_t lda,
                                        int64_t rows, const float *panels, int64_t depth,
                                        float scale, int64_t width) {
  panel_products_max_avx512(s, lds, a, lda, rows, panels, depth, scale, width, nullptr);
}

// Each row's largest of its kPanel lanes (all -inf: -inf).
SEQ4J_AVX512 void lane_maxes_avx512(float *out, const float *maxes, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    alignas(64) float lanes[kPanel];
    _mm512_store_ps(lanes, _mm512_loadu_ps(maxes + r * kPanel));
    float max = kMinusInfinity;
    for (float lane : lanes) max = std::max(max, lane);
    out[r] = max;
  }
}

// o (rows × kPanel·W) += p (rows × depth) · v (depth × kPanel·W), in row groups of
// kKernelRows512: these columns of v stay in L1 while every row group of p passes over them.
template <int W, bool Transposed, bool Masked>
SEQ4J_AVX512 void value_columns_avx512(float *o, int64_t ldo, const float *p, int64_t ldp,
                                       int64_t rows, const float *v, int64_t ldv, int64_t second,
                                       int64_t depth, __mmask16 tail, int64_t skew,
                                       const float *row_scale) {
  auto scales = [&](int64_t r) { return row_scale != nullptr ? row_scale + r : nullptr; };
  const int64_t step = Transposed ? 1 : ldp;  // the next row group of p
  const int64_t along = Transposed ? ldp : 1;  // one step along the depth (as value_columns_avx2)
  int64_t r = 0;
  for (; r + kKernelRows512 <= rows; r += kKernelRows512) {
    const int64_t j = skewed_start(r, skew, depth);
    value_tile_avx512<kKernelRows512, W, Transposed, Masked>(o + r * ldo, ldo,
                                                             p + r * step + j * along, ldp,
                                                             v + j * ldv, ldv, second, depth - j,
                                                             tail, scales(r));
  }
  const int64_t j = skewed_start(r, skew, depth);
  float *orow = o + r * ldo;
  const float *prow = p + r * step + j * along;
  const float *vj = v + j * ldv;
  const float *sr = scales(r);
#define SEQ4J_CALL(n) \
  value_tile_avx512<n, W, Transposed, Masked>(orow, ldo, prow, ldp, vj, ldv, second, depth - j, \
                                              tail, sr)
  switch (rows - r) { SEQ4J_PARTIAL_ROWS(SEQ4J_CALL) }
#undef SEQ4J_CALL
}
#undef SEQ4J_PARTIAL_ROWS

// o (rows × width) += a (rows × depth, or its transpose when Transposed) · b (depth × width, row
// stride width): b's packed runs (runs, row stride kPanel, each run_length rows apart) two at a
// time where given, else b itself 2 · kPanel columns at a time; then a last run of kPanel
// columns, and the last width % kPanel columns of b in place under a mask. The forward's
// P V (runs: the packed values; row_scale its rescale of o's rows) and the backward's dV, dQ
// and dK.
template <bool Transposed>
SEQ4J_AVX512 void accumulate_avx512(float *o, const float *a, int64_t lda, int64_t rows,
                                    const float *b, const float *runs, int64_t run_length,
                                    int64_t depth, int64_t width, int64_t skew = kNoSkew,
                                    const float *row_scale = nullptr) {
  const int64_t run_stride = run_length * kPanel;
  // the columns e .. e + kPanel (and its second run): packed, or in place
  auto source = [&](int64_t e) { return runs != nullptr ? runs + e / kPanel * run_stride : b + e; };
  const int64_t ldv = runs != nullptr ? kPanel : width;
  const int64_t second = runs != nullptr ? run_stride : kPanel;
  int64_t e = 0;
  for (; e + 2 * kPanel <= width; e += 2 * kPanel)
    value_columns_avx512<2, Transposed, false>(o + e, width, a, lda, rows, source(e), ldv, second,
                                               depth, 0, skew, row_scale);
  if (e + kPanel <= width) {
    value_columns_avx512<1, Transposed, false>(o + e, width, a, lda, rows, source(e), ldv, 0,
                                               depth, 0, skew, row_scale);
    e += kPanel;
  }
  if (e < width)
    value_columns_avx512<1, Transposed, true>(o + e, width, a, lda, rows, b + e, width, 0, depth,
                                              tail_mask(width - e), skew, row_scale);
}
#endif  // SEQ4J_X86_64

// ds = scale · prob ⊙ (dp − row_dot), one row of a tile (with dropout, dp the kept entries of dP
// scaled, by dropout_run): elementwise, so ds may be dp.
void d_scores_scalar(float *ds, const float *prob, const float *dp, int64_t n, float row_dot,
                     float scale) {
  for (int64_t c = 0; c < n; ++c) ds[c] = prob[c] * (dp[c] - row_dot) * scale;
}

#if SEQ4J_X86_64
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

SEQ4J_AVX512 void d_scores_avx512(float *ds, const float *prob, const float *dp, int64_t n,
                                  float row_dot, float scale) {
  const __m512 dot16 = _mm512_set1_ps(row_dot), scale16 = _mm512_set1_ps(scale);
  int64_t c = 0;
  for (; c + 16 <= n; c += 16) {
    const __m512 g = _mm512_sub_ps(_mm512_loadu_ps(dp + c), dot16);
    _mm512_storeu_ps(ds + c, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(prob + c), g), scale16));
  }
  if (c < n) {
    const __mmask16 tail = tail_mask(n - c);
    const __m512 g = _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, dp + c), dot16);
    const __m512 x = _mm512_maskz_loadu_ps(tail, prob + c);
    _mm512_mask_storeu_ps(ds + c, tail, _mm512_mul_ps(_mm512_mul_ps(x, g), scale16));
  }
}
#endif  // SEQ4J_X86_64

struct Problem {
  const seq4j_attention_desc &d;
  const float *mask;
  const float *key_padding;
  uint64_t dropout_key;
  uint64_t dropout_threshold;
  float dropout_scale;

  // causal only: whether the additive mask is free of NaN and +inf (the causal skips are exact
  // only then, and only for heads whose keys and values are finite: see kv_finite)
  bool mask_finite = true;

  Problem(const seq4j_attention_desc &desc, const float *m, const float *kp)
      : d(desc), mask(m), key_padding(kp), dropout_key(seq4j::dropout_key(desc.seed)),
        dropout_threshold(seq4j::dropout_threshold(desc.dropout)),
        dropout_scale(desc.dropout > 0 ? 1.0f / (1.0f - desc.dropout) : 1.0f) {}

  // An additive mask's NaN or +inf anywhere (its distinct elements, strides 0 broadcast) makes
  // every head non-finite: such a value above the diagonal gives PyTorch a NaN row.
  void check_mask() {
    mask_finite = !d.causal || mask == nullptr || d.mask_kind != SEQ4J_MASK_ADDITIVE || !mask_poisons();
  }
  bool mask_poisons() const {
    const int64_t full[4] = {d.batch, d.query_heads, d.query_length, d.kv_length};
    int64_t size[4];
    for (int a = 0; a < 4; ++a) size[a] = d.mask_strides[a] == 0 ? 1 : full[a];
    for (int64_t n = 0; n < size[0]; ++n)
      for (int64_t h = 0; h < size[1]; ++h)
        for (int64_t i = 0; i < size[2]; ++i) {
          const float *row = mask + n * d.mask_strides[0] + h * d.mask_strides[1] + i * d.mask_strides[2];
          for (int64_t j = 0; j < size[3]; ++j) {
            const float m = row[j * d.mask_strides[3]];
            if (!(m < std::numeric_limits<float>::infinity())) return true;  // NaN or +inf
          }
        }
    return false;
  }
  // Whether key/value head g (sample-major) and the mask are finite; causal only, on the
  // portable path (the vector paths check the packed copies). O(Tk · (dk + dv)) against the
  // O(Tq · Tk · (dk + dv)) of the head's attention.
  bool kv_finite(const float *k, const float *v, int64_t g) const {
    return mask_finite && all_finite(k + g * d.kv_length * d.head_dim, d.kv_length * d.head_dim) &&
           all_finite(v + g * d.kv_length * d.value_dim, d.kv_length * d.value_dim);
  }

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
    sgemm_block(s, q_rows(q, n, h, i0), k_rows(k, n, h, j0), rows, cols, d.head_dim, d.head_dim,
                d.head_dim, cols, false, true, d.scale, 0.0f);
    apply_mask(s, cols, n, h, i0, rows, j0, cols);
  }

  // Whether no mask touches the tile of queries i0 .. i0 + rows - 1 and keys j0 .. j0 + cols - 1
  // (apply_mask leaves it as it is).
  bool unmasked(int64_t i0, int64_t j0, int64_t cols) const {
    return mask == nullptr && key_padding == nullptr && !(d.causal && j0 + cols - 1 > i0);
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
        float *row = s + r * lds;
        // added, not stored, as PyTorch adds its -inf mask: a NaN (or +inf) score stays NaN
#pragma omp simd
        for (int64_t c = visible; c < cols; ++c) row[c] += kMinusInfinity;
      }
      return;
    }
    if (mask == nullptr) {
      // key padding (and maybe causal): the tile's padded keys are the same for every row, so
      // each row adds -inf to them in one vector loop, then to its causal tail (the per-score
      // checks below cost half again of a padded batch's attention forward at T = 128)
      const float *padded = key_padding + n * d.kv_length + j0;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t visible =
            d.causal ? std::clamp<int64_t>(i0 + r - j0 + 1, 0, cols) : cols;
        float *row = s + r * lds;
#pragma omp simd
        for (int64_t c = 0; c < visible; ++c) row[c] += padded[c] != 0.0f ? kMinusInfinity : 0.0f;
#pragma omp simd
        for (int64_t c = visible; c < cols; ++c) row[c] += kMinusInfinity;
      }
      return;
    }
    if (d.mask_strides[3] == 1) {
      // a mask contiguous along the keys (PyTorch's usual (Tq, Tk) or (N, H, Tq, Tk)): its row
      // added, or its zeros made -inf, in vector loops, then the padding and the causal tail.
      // Adding -inf once or several times gives the same (-inf, or NaN from +inf or NaN), so the
      // pieces may go one after the other.
      const float *padded = key_padding != nullptr ? key_padding + n * d.kv_length + j0 : nullptr;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + r;
        float *row = s + r * lds;
        const float *m = mask + n * d.mask_strides[0] + h * d.mask_strides[1] +
                         i * d.mask_strides[2] + j0;
        if (d.mask_kind == SEQ4J_MASK_BOOLEAN) {
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) row[c] += m[c] == 0.0f ? kMinusInfinity : 0.0f;
        } else {
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) row[c] += m[c];
        }
        if (padded != nullptr) {
#pragma omp simd
          for (int64_t c = 0; c < cols; ++c) row[c] += padded[c] != 0.0f ? kMinusInfinity : 0.0f;
        }
        if (d.causal) {
          const int64_t visible = std::clamp<int64_t>(i - j0 + 1, 0, cols);
#pragma omp simd
          for (int64_t c = visible; c < cols; ++c) row[c] += kMinusInfinity;
        }
      }
      return;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      float *row = s + r * lds;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t j = j0 + c;
        bool masked = (d.causal && j > i) || (key_padding != nullptr && key_padding[n * d.kv_length + j] != 0.0f);
        if (mask != nullptr) {
          const float m = mask[n * d.mask_strides[0] + h * d.mask_strides[1] + i * d.mask_strides[2] +
                               j * d.mask_strides[3]];
          if (d.mask_kind == SEQ4J_MASK_BOOLEAN)
            masked = masked || m == 0.0f;
          else
            row[c] += m;
        }
        // added, not stored (PyTorch adds its -inf masks): NaN and +inf scores become NaN
        if (masked) row[c] += kMinusInfinity;
      }
    }
  }
};

struct Buffers {
  std::vector<float> scores, accumulator, row_max, row_sum, row_scale, d_scores, d_probs, dropped,
      row_dot, packed, lane_max, block_max;
};

Buffers &buffers() {
  thread_local Buffers b;
  return b;
}

// Rows of a causal tile in groups of the kernels' rows (kernel_rows): on a tile the diagonal
// crosses, a group computes only the keys its last row sees, `seen` of the tile's cols, and a
// group that sees none is skipped (a 96-query block against 128 keys did a fifth more products
// than the triangle needs, the backward's 96 × 128 tiles a third more). Elsewhere one group.
struct RowGroups {
  int64_t i0, j0, rows, cols, step;
  bool diagonal;
  RowGroups(bool trim, int64_t i0_, int64_t rows_, int64_t j0_, int64_t cols_, int64_t kernel_rows)
      : i0(i0_), j0(j0_), rows(rows_), cols(cols_), step(rows_),
        diagonal(trim && j0_ + cols_ - 1 > i0_) {
    if (diagonal) step = kernel_rows;
  }
  // the keys of the tile that rows r0 .. r1 - 1 see (the last row's count)
  int64_t seen(int64_t r1) const {
    return diagonal ? std::clamp<int64_t>(i0 + r1 - j0, 0, cols) : cols;
  }
  template <class F>
  void each(F &&f) const {
    for (int64_t r0 = 0; r0 < rows; r0 += step) {
      const int64_t r1 = std::min(rows, r0 + step);
      const int64_t keys = seen(r1);
      if (keys > 0) f(r0, r1, keys);
    }
  }
};

// One block of queries against every key it sees: online softmax over blocks of kKeyBlock keys.
// With packed keys and values the products are the AVX-512 kernels (avx512) or the AVX2 ones,
// without them OpenBLAS's sgemm.
void forward_block(float *out, float *lse, const float *q, const float *k, const float *v,
                   const Problem &p, [[maybe_unused]] const PackedHeads *packed,
                   [[maybe_unused]] bool avx512, int64_t n, int64_t h, int64_t i0, int64_t rows,
                   int64_t query_block) {
  const auto &d = p.d;
  Buffers &b = buffers();
  b.scores.resize(query_block * kKeyBlock);
  b.accumulator.assign(rows * d.value_dim, 0.0f);
  b.row_max.assign(rows, kMinusInfinity);
  b.row_sum.assign(rows, 0.0f);
  b.row_scale.resize(rows);
  b.block_max.resize(rows);
#if SEQ4J_X86_64
  if (avx512) b.lane_max.resize(rows * kPanel);
#endif
  // causal: keys after the block's last query are masked for every row, so skip them, unless a
  // non-finite q, k or v there would make PyTorch's result NaN (NaN + -inf = NaN, 0 · NaN = NaN):
  // then every key is visited as PyTorch's math does
  int64_t key_end = d.kv_length;
  bool trim = false;
  if (d.causal) {
    const int64_t g = n * d.kv_heads + p.kv_head(h);
    const bool head_finite = packed != nullptr ? packed->finite[g] != 0 : p.kv_finite(k, v, g);
    trim = head_finite && all_finite(p.q_rows(q, n, h, i0), rows * d.head_dim);
  }
  if (trim) key_end = std::min(d.kv_length, i0 + rows);
  [[maybe_unused]] const int64_t head = n * d.kv_heads + p.kv_head(h);
  for (int64_t j0 = 0; j0 < key_end; j0 += kKeyBlock) {
    const int64_t cols = std::min(kKeyBlock, key_end - j0);
    int64_t lds = cols;
#if SEQ4J_X86_64
    if (packed != nullptr) lds = (cols + kPanel - 1) / kPanel * kPanel;  // padding unused
#endif
    const RowGroups groups(trim && packed != nullptr, i0, rows, j0, cols,
                           avx512 ? kKernelRows512 : kKernelRows);
    groups.each([&](int64_t r0, int64_t r1, int64_t seen) {
      float *s = b.scores.data() + r0 * lds;
      [[maybe_unused]] const float *q_group = p.q_rows(q, n, h, i0 + r0);
      float *acc = b.accumulator.data() + r0 * d.value_dim;
      // each row's max, taken by the score kernel where it stores the final scores (no mask, no
      // padding keys past kv_length in the last panel), else by row_max below
      bool have_max = false;
#if SEQ4J_X86_64
      const int64_t width = (seen + kPanel - 1) / kPanel * kPanel;
      if (packed != nullptr) {
        if (avx512) {
          have_max = width == seen && p.unmasked(i0 + r0, j0, seen);
          float *lanes = have_max ? b.lane_max.data() + r0 * kPanel : nullptr;
          if (have_max) std::fill(lanes, lanes + (r1 - r0) * kPanel, kMinusInfinity);
          panel_products_max_avx512(s, lds, q_group, d.head_dim, r1 - r0,
                                    packed->key_panel(head, j0), d.head_dim, d.scale, width, lanes);
          if (have_max) lane_maxes_avx512(b.block_max.data() + r0, lanes, r1 - r0);
        } else
          scores_avx2(s, lds, q_group, d.head_dim, r1 - r0, *packed, head, j0, d.scale, width);
        p.apply_mask(s, lds, n, h, i0 + r0, r1 - r0, j0, seen);
      } else
#endif
      {
        p.scores(s, q, k, n, h, i0, rows, j0, cols);  // one group: r0 = 0, seen = cols
      }
      // each row's rescale of its accumulator: applied by the packed paths' value products as
      // they load it, by a pass of its own before sgemm
      float *row_scale = b.row_scale.data();
      std::fill(row_scale + r0, row_scale + r1, 1.0f);
      for (int64_t r = r0; r < r1; ++r) {
        float *row = b.scores.data() + r * lds;
        const float block_max = have_max ? b.block_max[r] : row_max(row, seen);
        if (block_max == kMinusInfinity) {  // every key of this block is masked, or NaN
          if (has_nan(row, seen)) {  // NaN scores: the row's output and lse are NaN
            std::fill(row, row + seen, std::numeric_limits<float>::quiet_NaN());
            b.row_sum[r] = std::numeric_limits<float>::quiet_NaN();
          } else {
            std::fill(row, row + seen, 0.0f);
          }
          continue;
        }
        const float old_max = b.row_max[r];
        const float new_max = std::max(old_max, block_max);
        const float sum = exp_shifted(row, seen, new_max);  // exp(-inf) = 0 for masked keys
        if (new_max != old_max) {  // after the first blocks the running max rarely moves
          const float rescale = old_max == kMinusInfinity ? 0.0f : std::exp(old_max - new_max);
          b.row_sum[r] *= rescale;
          row_scale[r] = rescale;
          b.row_max[r] = new_max;
        }
        b.row_sum[r] += sum;
        if (d.dropout > 0)
          dropout_run(row, row, seen, p.dropout_key, p.score_index(n, h, i0 + r, j0),
                      p.dropout_threshold, p.dropout_scale);
      }
#if SEQ4J_X86_64
      if (packed != nullptr) {
        if (avx512)
          accumulate_avx512<false>(acc, s, lds, r1 - r0, p.v_rows(v, n, h, j0),
                                   packed->runs > 0 ? packed->value_run(head, 0, j0) : nullptr,
                                   packed->length, seen, d.value_dim, kNoSkew, row_scale + r0);
        else
          accumulate_avx2<false>(acc, s, lds, r1 - r0, p.v_rows(v, n, h, j0),
                                 packed->runs > 0 ? packed->value_run(head, 0, j0) : nullptr,
                                 packed->length, seen, d.value_dim, kNoSkew, row_scale + r0);
      } else
#endif
      {
        for (int64_t r = r0; r < r1; ++r)
          if (row_scale[r] != 1.0f) {
            float *row_acc = b.accumulator.data() + r * d.value_dim;
            scaled(row_acc, row_acc, d.value_dim, row_scale[r]);
          }
        sgemm_block(acc, s, p.v_rows(v, n, h, j0), rows, d.value_dim, cols, lds, d.value_dim,
                    d.value_dim, false, false, 1.0f, 1.0f);
      }
    });
  }
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    float *o = out + ((n * d.query_heads + h) * d.query_length + i) * d.value_dim;
    // l = 0 only for a fully masked row (else l >= 1); NaN for a row that saw a NaN
    const float l = b.row_sum[r];
    const float inverse = l == 0 ? 0.0f : 1.0f / l;
    scaled(o, b.accumulator.data() + r * d.value_dim, d.value_dim, inverse);
    if (lse != nullptr)
      lse[(n * d.query_heads + h) * d.query_length + i] =
          l == 0 ? std::numeric_limits<float>::infinity() : b.row_max[r] + std::log(l);
  }
}

void forward(float *out, float *lse, const float *q, const float *k, const float *v,
             const Problem &p) {
  const auto &d = p.d;
  if (!use_avx2()) {
    const int64_t q_blocks = (d.query_length + kQueryBlock - 1) / kQueryBlock;
    const int64_t tasks = d.batch * d.query_heads * q_blocks;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qb = task % q_blocks, nh = task / q_blocks, i0 = qb * kQueryBlock;
      forward_block(out, lse, q, k, v, p, nullptr, false, nh / d.query_heads, nh % d.query_heads, i0,
                    std::min(kQueryBlock, d.query_length - i0), kQueryBlock);
    }
    return;
  }
#if SEQ4J_X86_64
  const bool avx512 = active_isa() == Isa::kAvx512;
  // blocks of at most kForwardQueryBlock queries, of even sizes (128 queries as 66 + 62, not
  // 96 + 32) in multiples of the kernels' rows
  const int64_t kernel_rows = avx512 ? kKernelRows512 : kKernelRows;
  int64_t q_blocks = (d.query_length + kForwardQueryBlock - 1) / kForwardQueryBlock;
  const int64_t query_block =
      ((d.query_length + q_blocks - 1) / q_blocks + kernel_rows - 1) / kernel_rows * kernel_rows;
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
      if (d.causal) heads.finite[g] = p.mask_finite && heads.packed_finite(v, g);
      state[g].store(2, std::memory_order_release);
    } else {
      while (state[g].load(std::memory_order_acquire) != 2) _mm_pause();
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
    forward_block(out, lse, q, k, v, p, &heads, avx512, n, h, i0,
                  std::min(query_block, d.query_length - i0), query_block);
  }
#endif  // SEQ4J_X86_64
}

void backward(float *dq, float *dk, float *dv, const float *d_out, const float *q, const float *k,
              const float *v, const float *out, const float *lse, const Problem &p) {
  const auto &d = p.d;
  const int64_t group = d.query_heads / d.kv_heads;
  const int64_t tasks = d.batch * d.kv_heads;
  // With AVX2 or AVX-512 the tile products are the forward's micro-kernels, that copy of them
  // (OpenBLAS's sgemm re-packed both operands of each small tile product), on the task's keys and
  // values packed once: keys and values as panels for S = Q Kᵀ and dP = dO Vᵀ, keys as runs of
  // columns for dQ += dS K. dV and dK read the probability tiles transposed in place, and dO and
  // Q as they are.
  const bool avx2 = use_avx2();
#if SEQ4J_X86_64
  const bool avx512 = active_isa() == Isa::kAvx512;
  const int64_t padded = (d.kv_length + kPanel - 1) / kPanel * kPanel;
  const int64_t key_runs = d.head_dim / kPanel;
  const int64_t kernel_rows = avx512 ? kKernelRows512 : kKernelRows;  // RowGroups' rows
#else
  const int64_t kernel_rows = kKernelRows;
#endif
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
    std::memset(dq + ((n * d.query_heads + g * group) * d.query_length) * d.head_dim, 0,
                group * d.query_length * d.head_dim * sizeof(float));
    // D_i = Σ dO_i · O_i, in the pass that also checks dO (the heads of a group are adjacent)
    const int64_t first_row = (n * d.query_heads + g * group) * d.query_length;
    const bool d_out_finite =
        row_dots(b.row_dot.data(), out + first_row * d.value_dim, d_out + first_row * d.value_dim,
                 group * d.query_length, d.value_dim);
    // causal: query blocks that end before a key block are skipped, and a tile the diagonal
    // crosses is trimmed (RowGroups), exact only while q, k, v, dO and lse (NaN for a row the
    // forward made NaN) are finite there; else visit them all. k and v are checked on their
    // packed copies where there are any (as the forward's PackedHeads::packed_finite).
    bool causal_skip = d.causal && d_out_finite &&
                       all_finite(p.q_rows(q, n, g * group, 0), group * d.query_length * d.head_dim);
    if (causal_skip) {
      const float *head_lse = lse + (n * d.query_heads + g * group) * d.query_length;
      for (int64_t i = 0; i < group * d.query_length; ++i)
        if (head_lse[i] != head_lse[i]) causal_skip = false;
    }
    const float *head_k = k + (n * d.kv_heads + g) * d.kv_length * d.head_dim;
#if SEQ4J_X86_64
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
      // the key and value panels: every float of the head's k and v, zeros past kv_length
      if (causal_skip)
        causal_skip = p.mask_finite && all_finite(key_panels, padded * (d.head_dim + d.value_dim));
    } else
#endif
    {
      if (causal_skip) causal_skip = p.kv_finite(k, v, n * d.kv_heads + g);
    }
    b.scores.resize(query_block * kKeyBlock);
    b.d_probs.resize(query_block * kKeyBlock);
    b.d_scores.resize(query_block * kKeyBlock);
    if (d.dropout > 0) b.dropped.resize(query_block * kKeyBlock);
    for (int64_t j0 = 0; j0 < d.kv_length; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, d.kv_length - j0);
      // the tiles' row stride: padded to whole panels for the kernels (the padding is not used)
      const int64_t lds = avx2 ? (cols + kPanel - 1) / kPanel * kPanel : cols;
      float *dk_block = dk + ((n * d.kv_heads + g) * d.kv_length + j0) * d.head_dim;
      float *dv_block = dv + ((n * d.kv_heads + g) * d.kv_length + j0) * d.value_dim;
      for (int64_t hh = 0; hh < group; ++hh) {
        const int64_t h = g * group + hh;
        // causal: query blocks that end before this key block see none of it
        const int64_t first_query = causal_skip ? j0 / query_block * query_block : 0;
        for (int64_t i0 = first_query; i0 < d.query_length; i0 += query_block) {
          const int64_t rows = std::min(query_block, d.query_length - i0);
          const float *q_block = p.q_rows(q, n, h, i0);
          float *dq_block = dq + ((n * d.query_heads + h) * d.query_length + i0) * d.head_dim;
          const float *lse_rows = lse + (n * d.query_heads + h) * d.query_length + i0;
          const float *go = d_out + ((n * d.query_heads + h) * d.query_length + i0) * d.value_dim;
          float *prob = b.scores.data();
          float *dp = b.d_probs.data();
          float *ds = b.d_scores.data();
          // the dropped-out probabilities (without dropout, the probabilities)
          float *dropped = d.dropout > 0 ? b.dropped.data() : prob;
          // Per row group: P, dP, dS and dQ over the keys the group sees; past them a row of
          // P, its dropout and dS hold zeros, which the transposed products below read (skewed,
          // they never read the rows of a group that sees none of these keys).
          const RowGroups groups(avx2 && causal_skip, i0, rows, j0, cols, kernel_rows);
          groups.each([&](int64_t r0, int64_t r1, int64_t seen) {
            [[maybe_unused]] const int64_t group_rows = r1 - r0;
#if SEQ4J_X86_64
            if (avx2) {
              const int64_t width = (seen + kPanel - 1) / kPanel * kPanel;
              (avx512 ? panel_products_avx512 : panel_products_avx2)(
                  prob + r0 * lds, lds, q_block + r0 * d.head_dim, d.head_dim, group_rows,
                  key_panels + j0 * d.head_dim, d.head_dim, d.scale, width);
              p.apply_mask(prob + r0 * lds, lds, n, h, i0 + r0, group_rows, j0, seen);
              // dP_dropped = dO Vᵀ
              (avx512 ? panel_products_avx512 : panel_products_avx2)(
                  dp + r0 * lds, lds, go + r0 * d.value_dim, d.value_dim, group_rows,
                  value_panels + j0 * d.value_dim, d.value_dim, 1.0f, width);
            } else
#endif
            {
              p.scores(prob, q, k, n, h, i0, rows, j0, cols);  // one group: r0 = 0, seen = cols
              sgemm_block(dp, go, p.v_rows(v, n, h, j0), rows, cols, d.value_dim, d.value_dim,
                          d.value_dim, lds, false, true, 1.0f, 0.0f);
            }
            for (int64_t r = r0; r < r1; ++r) {
              float *prob_row = prob + r * lds;
              if (std::isinf(lse_rows[r]))  // a fully masked row: no probability anywhere
                std::fill(prob_row, prob_row + seen, 0.0f);
              else
                exp_shifted(prob_row, seen, lse_rows[r]);
              if (d.dropout > 0)
                dropout_run(dropped + r * lds, prob_row, seen, p.dropout_key,
                            p.score_index(n, h, i0 + r, j0), p.dropout_threshold,
                            p.dropout_scale);
              // scale · dS = scale · P ⊙ (dP − D), with dP = dP_dropped ⊙ keep / (1 − p): the
              // scale of both products below, applied once here
              const float row_dot = b.row_dot[hh * d.query_length + i0 + r];
              float *ds_row = ds + r * lds;
              const float *dp_row = dp + r * lds;
              // with dropout, the gradient of P is dP's kept entries scaled: put in ds_row
              // first, which the elementwise d_scores then reads where it writes
              const float *grad_prob = dp_row;
              if (d.dropout > 0) {
                dropout_run(ds_row, dp_row, seen, p.dropout_key, p.score_index(n, h, i0 + r, j0),
                            p.dropout_threshold, p.dropout_scale);
                grad_prob = ds_row;
              }
#if SEQ4J_X86_64
              (avx512 ? d_scores_avx512 : avx2 ? d_scores_avx2 : d_scores_scalar)(
                  ds_row, prob_row, grad_prob, seen, row_dot, d.scale);
#else
              d_scores_scalar(ds_row, prob_row, grad_prob, seen, row_dot, d.scale);
#endif
              if (seen < cols) {
                std::fill(dropped + r * lds + seen, dropped + r * lds + cols, 0.0f);
                std::fill(ds_row + seen, ds_row + cols, 0.0f);
              }
            }
            // dQ += scale · dS K
#if SEQ4J_X86_64
            if (avx2) {
              (avx512 ? accumulate_avx512<false> : accumulate_avx2<false>)(
                  dq_block + r0 * d.head_dim, ds + r0 * lds, lds, group_rows,
                  head_k + j0 * d.head_dim, key_columns + j0 * kPanel, d.kv_length, seen,
                  d.head_dim, kNoSkew, nullptr);
            } else
#endif
            {
              sgemm_block(dq_block, ds, head_k + j0 * d.head_dim, rows, d.head_dim, cols, lds,
                          d.head_dim, d.head_dim, false, false, 1.0f, 1.0f);
            }
          });
          // dV += P_droppedᵀ dO ; dK += scale · dSᵀ Q: key c of a diagonal tile sees the
          // queries from c + j0 - i0 on
#if SEQ4J_X86_64
          if (avx2) {
            const int64_t skew = groups.diagonal ? j0 - i0 : kNoSkew;
            (avx512 ? accumulate_avx512<true> : accumulate_avx2<true>)(
                dv_block, dropped, lds, cols, go, nullptr, 0, rows, d.value_dim, skew, nullptr);
            (avx512 ? accumulate_avx512<true> : accumulate_avx2<true>)(
                dk_block, ds, lds, cols, q_block, nullptr, 0, rows, d.head_dim, skew, nullptr);
          } else
#endif
          {
            sgemm_block(dv_block, dropped, go, cols, d.value_dim, rows, lds, d.value_dim,
                        d.value_dim, true, false, 1.0f, 1.0f);
            sgemm_block(dk_block, ds, q_block, cols, d.head_dim, rows, lds, d.head_dim,
                        d.head_dim, true, false, 1.0f, 1.0f);
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
    seq4j::Problem problem(*desc, mask, key_padding);
    problem.check_mask();
    seq4j::forward(out, lse, q, k, v, problem);
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
    seq4j::Problem problem(*desc, mask, key_padding);
    problem.check_mask();
    seq4j::backward(dq, dk, dv, d_out, q, k, v, out, lse, problem);
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
        if (max == seq4j::kMinusInfinity) {  // fully masked: zeros; NaN scores: NaN (the forward's)
          std::fill(row, row + d.kv_length,
                    seq4j::has_nan(row, d.kv_length) ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
          continue;
        }
        // past here a NaN score, or a +inf one (exp(inf - inf)), makes the sum and the row NaN
        float sum = 0;
        for (int64_t j = 0; j < d.kv_length; ++j) sum += row[j] = std::exp(row[j] - max);
        for (int64_t j = 0; j < d.kv_length; ++j) row[j] /= sum;
      }
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
