// Scaled dot-product attention, forward and backward, memory-efficient (FlashAttention's scheme
// on the CPU): the scores of one block of queries against one block of keys at a time, an online
// softmax across key blocks, and each row's log-sum-exp kept for the backward, which recomputes
// the score blocks instead of storing them. Each block product is a single-threaded OpenBLAS
// sgemm; the blocks are spread over the OpenMP pool.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cblas.h"
#include "core/error.h"
#include "core/runtime.h"

namespace seq4j {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 128;
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

__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float *row, int64_t n, float shift) {
  const __m256 shift8 = _mm256_set1_ps(shift);
  const __m256 low = _mm256_set1_ps(-87.3f), high = _mm256_set1_ps(88.0f);
  __m256 sum8 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(row + c), shift8);
    const __m256 underflow = _mm256_cmp_ps(x, low, _CMP_LT_OQ);
    const __m256 clamped = _mm256_min_ps(_mm256_max_ps(x, low), high);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i exponent = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
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

float exp_shifted(float *row, int64_t n, float shift) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return avx2 ? exp_shifted_avx2(row, n, shift) : exp_shifted_scalar(row, n, shift);
}

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
    // most tiles have nothing masked: skip the per-score checks for them
    const bool causal_cut = d.causal && j0 + cols - 1 > i0;
    if (mask == nullptr && key_padding == nullptr && !causal_cut) return;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = i0 + r;
      float *row = s + r * cols;
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
  std::vector<float> scores, accumulator, row_max, row_sum, d_scores, d_probs, row_dot;
};

Buffers &buffers() {
  thread_local Buffers b;
  return b;
}

void forward(float *out, float *lse, const float *q, const float *k, const float *v,
             const Problem &p) {
  const auto &d = p.d;
  const int64_t q_blocks = (d.query_length + kQueryBlock - 1) / kQueryBlock;
  const int64_t tasks = d.batch * d.query_heads * q_blocks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < tasks; ++task) {
    const int64_t qb = task % q_blocks, nh = task / q_blocks;
    const int64_t n = nh / d.query_heads, h = nh % d.query_heads;
    const int64_t i0 = qb * kQueryBlock, rows = std::min(kQueryBlock, d.query_length - i0);
    Buffers &b = buffers();
    b.scores.resize(kQueryBlock * kKeyBlock);
    b.accumulator.assign(rows * d.value_dim, 0.0f);
    b.row_max.assign(rows, kMinusInfinity);
    b.row_sum.assign(rows, 0.0f);
    // causal: keys after the block's last query are masked for every row, so skip them
    const int64_t key_end = d.causal ? std::min(d.kv_length, i0 + rows) : d.kv_length;
    for (int64_t j0 = 0; j0 < key_end; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, d.kv_length - j0);
      float *s = b.scores.data();
      p.scores(s, q, k, n, h, i0, rows, j0, cols);
      for (int64_t r = 0; r < rows; ++r) {
        float *row = s + r * cols;
        float block_max = kMinusInfinity;
        for (int64_t c = 0; c < cols; ++c) block_max = std::max(block_max, row[c]);
        if (block_max == kMinusInfinity) {  // every key of this block is masked for this row
          std::fill(row, row + cols, 0.0f);
          continue;
        }
        const float new_max = std::max(b.row_max[r], block_max);
        const float rescale = b.row_max[r] == kMinusInfinity ? 0.0f : std::exp(b.row_max[r] - new_max);
        const float sum = exp_shifted(row, cols, new_max);  // exp(-inf) = 0 for masked keys
        b.row_sum[r] = b.row_sum[r] * rescale + sum;
        b.row_max[r] = new_max;
        float *acc = b.accumulator.data() + r * d.value_dim;
        for (int64_t e = 0; e < d.value_dim; ++e) acc[e] *= rescale;
        if (d.dropout > 0) {
          for (int64_t c = 0; c < cols; ++c)
            row[c] = keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                         ? row[c] * p.dropout_scale
                         : 0.0f;
        }
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                  static_cast<blasint>(d.value_dim), static_cast<blasint>(cols), 1.0f, s,
                  static_cast<blasint>(cols), p.v_rows(v, n, h, j0),
                  static_cast<blasint>(d.value_dim), 1.0f, b.accumulator.data(),
                  static_cast<blasint>(d.value_dim));
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
}

void backward(float *dq, float *dk, float *dv, const float *d_out, const float *q, const float *k,
              const float *v, const float *out, const float *lse, const Problem &p) {
  const auto &d = p.d;
  const int64_t group = d.query_heads / d.kv_heads;
  const int64_t tasks = d.batch * d.kv_heads;
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
    b.scores.resize(kQueryBlock * kKeyBlock);
    b.d_probs.resize(kQueryBlock * kKeyBlock);
    b.d_scores.resize(kQueryBlock * kKeyBlock);
    for (int64_t j0 = 0; j0 < d.kv_length; j0 += kKeyBlock) {
      const int64_t cols = std::min(kKeyBlock, d.kv_length - j0);
      float *dk_block = dk + ((n * d.kv_heads + g) * d.kv_length + j0) * d.head_dim;
      float *dv_block = dv + ((n * d.kv_heads + g) * d.kv_length + j0) * d.value_dim;
      for (int64_t hh = 0; hh < group; ++hh) {
        const int64_t h = g * group + hh;
        // causal: query blocks that end before this key block see none of it
        const int64_t first_query = d.causal ? j0 / kQueryBlock * kQueryBlock : 0;
        for (int64_t i0 = first_query; i0 < d.query_length; i0 += kQueryBlock) {
          const int64_t rows = std::min(kQueryBlock, d.query_length - i0);
          float *prob = b.scores.data();
          p.scores(prob, q, k, n, h, i0, rows, j0, cols);
          const float *lse_rows = lse + (n * d.query_heads + h) * d.query_length + i0;
          float *dropped = b.d_scores.data();  // the dropped-out probabilities, then dS
          for (int64_t r = 0; r < rows; ++r) {
            if (std::isinf(lse_rows[r]))  // a fully masked row: no probability anywhere
              std::fill(prob + r * cols, prob + (r + 1) * cols, 0.0f);
            else
              exp_shifted(prob + r * cols, cols, lse_rows[r]);
          }
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
              const float x = prob[r * cols + c];
              dropped[r * cols + c] =
                  d.dropout > 0 && !keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                      ? 0.0f
                      : x * p.dropout_scale;
            }
          const float *go = d_out + ((n * d.query_heads + h) * d.query_length + i0) * d.value_dim;
          // dV += P_droppedᵀ dO
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(cols),
                      static_cast<blasint>(d.value_dim), static_cast<blasint>(rows), 1.0f, dropped,
                      static_cast<blasint>(cols), go, static_cast<blasint>(d.value_dim), 1.0f,
                      dv_block, static_cast<blasint>(d.value_dim));
          // dP_dropped = dO Vᵀ
          float *dp = b.d_probs.data();
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                      static_cast<blasint>(cols), static_cast<blasint>(d.value_dim), 1.0f, go,
                      static_cast<blasint>(d.value_dim), p.v_rows(v, n, h, j0),
                      static_cast<blasint>(d.value_dim), 0.0f, dp, static_cast<blasint>(cols));
          // dS = P ⊙ (dP − D), with dP = dP_dropped ⊙ keep / (1 − p)
          float *ds = dropped;
          for (int64_t r = 0; r < rows; ++r) {
            const float row_dot = b.row_dot[hh * d.query_length + i0 + r];
            for (int64_t c = 0; c < cols; ++c) {
              float grad_prob = dp[r * cols + c];
              if (d.dropout > 0)
                grad_prob = keep(p.dropout_key, p.score_index(n, h, i0 + r, j0 + c), p.dropout_threshold)
                                ? grad_prob * p.dropout_scale
                                : 0.0f;
              ds[r * cols + c] = prob[r * cols + c] * (grad_prob - row_dot);
            }
          }
          // dQ += scale · dS K ; dK += scale · dSᵀ Q
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(rows),
                      static_cast<blasint>(d.head_dim), static_cast<blasint>(cols), d.scale, ds,
                      static_cast<blasint>(cols), p.k_rows(k, n, h, j0),
                      static_cast<blasint>(d.head_dim), 1.0f,
                      dq + ((n * d.query_heads + h) * d.query_length + i0) * d.head_dim,
                      static_cast<blasint>(d.head_dim));
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<blasint>(cols),
                      static_cast<blasint>(d.head_dim), static_cast<blasint>(rows), d.scale, ds,
                      static_cast<blasint>(cols), p.q_rows(q, n, h, i0),
                      static_cast<blasint>(d.head_dim), 1.0f, dk_block,
                      static_cast<blasint>(d.head_dim));
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
