/*
 * seq4j.h: the C ABI of libseq4j, the only boundary between seq4j's C++ kernels and Java.
 *
 * How to read and extend it
 * -------------------------
 * - Every function returns an int status: SEQ4J_OK (0) or one of the codes below. On failure,
 *   seq4j_last_error() returns a message for the calling thread, valid until that thread's next
 *   seq4j call. No C++ exception ever crosses this boundary, and no function aborts or exits.
 * - Arguments are plain: outputs first, then inputs, then sizes, then options. Every size and
 *   offset is int64_t. Tensors are dense, row-major float32 blocks owned by the caller; native code
 *   never frees them and keeps no pointer to them after the call returns.
 * - A new op gets one file per op family under native/src/<family>/ holding its forward and
 *   backward, its declarations here, a binding in org.seq4j.internal.NativeBindings, and a float64
 *   reference in java/src/test/java/org/seq4j/reference.
 *
 * Example (C):
 *     float a[6] = {1,2,3,4,5,6}, b[6] = {1,0,0,1,1,1}, c[4];
 *     if (seq4j_matmul(c, a, b, 2, 2, 3, 0, 0, 1.0f, 0.0f, SEQ4J_BACKEND_AUTO) != SEQ4J_OK)
 *         fprintf(stderr, "%s\n", seq4j_last_error());
 */
#ifndef SEQ4J_H
#define SEQ4J_H

#include <stdint.h>

#if defined(_WIN32)
#define SEQ4J_API __declspec(dllexport)
#else
#define SEQ4J_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: stable, never renumbered. */
#define SEQ4J_OK 0
#define SEQ4J_ERR_INVALID_ARGUMENT 1 /* a size, pointer or option the caller got wrong */
#define SEQ4J_ERR_UNSUPPORTED 2      /* valid, but this build or backend cannot do it */
#define SEQ4J_ERR_OUT_OF_MEMORY 3    /* a native allocation failed */
#define SEQ4J_ERR_BACKEND 4          /* oneDNN, OpenBLAS or CUDA reported a failure */
#define SEQ4J_ERR_INTERNAL 5         /* a bug in seq4j: please report the message */

/* Backends an op may be pinned to. AUTO lets seq4j pick the faster one for the shape. */
#define SEQ4J_BACKEND_AUTO 0
#define SEQ4J_BACKEND_ONEDNN 1
#define SEQ4J_BACKEND_BLAS 2

/* ---- runtime ------------------------------------------------------------------------------ */

/* The calling thread's message for its last failed call ("" if none). Never NULL. */
SEQ4J_API const char *seq4j_last_error(void);

/* The library's version, e.g. "0.1.0-SNAPSHOT". Never NULL; static storage. */
SEQ4J_API const char *seq4j_version(void);

/* Does nothing and returns SEQ4J_OK: measures the cost of a downcall. */
SEQ4J_API int seq4j_noop(void);

/* Sets the number of threads of every pool seq4j uses (n >= 1): the OpenMP pool that runs
 * oneDNN and seq4j's kernels. OpenBLAS always runs single-threaded inside that pool, so the two
 * never compete for cores. */
SEQ4J_API int seq4j_set_threads(int64_t n);

/* The number of threads set by seq4j_set_threads (initially OMP_NUM_THREADS or the core count). */
SEQ4J_API int seq4j_get_threads(int64_t *n);

/* Writes "key=value\n" lines describing what was loaded (oneDNN version and ISA, OpenBLAS config,
 * core type and threading, OpenMP threads) into buf, NUL-terminated. *needed receives the size
 * the full text needs including the NUL; when capacity is smaller the text is cut. */
SEQ4J_API int seq4j_runtime_info(char *buf, int64_t capacity, int64_t *needed);

/* Deterministic mode (off by default; process-wide): when on != 0, every op whose float
 * results would otherwise depend on the number of threads splits its work into pieces fixed by
 * the shapes alone, each computed by one thread in a fixed order, so that its results are the same
 * bits for any thread count (seq4j_set_threads, OMP_NUM_THREADS). Today that is the matrix
 * product on both backends (seq4j_matmul, and the BLAS recurrent backend's large products through
 * it), which then runs as column or row blocks of 256 instead of one block per thread; AUTO's
 * recurrent backend becomes BLAS, since oneDNN's recurrent primitives split their work by
 * thread count (a layer pinned to ONEDNN stays as it is). Every other op is thread-count
 * independent anyway (README, "Reproducibility"). Not meant to be called while ops run. */
SEQ4J_API int seq4j_set_deterministic(int32_t on);

/* *on receives 1 when deterministic mode is on, else 0. */
SEQ4J_API int seq4j_get_deterministic(int32_t *on);

/* ---- memory -------------------------------------------------------------------------------- */

/* *block receives bytes (>= 1) of uninitialised memory aligned to 64 bytes, from the allocator
 * libseq4j links (AddressSanitizer's in a sanitized build, so that it sees the block's exact
 * size); SEQ4J_ERR_OUT_OF_MEMORY (and *block NULL) when there is none. Release it with
 * seq4j_free. This is where Java's tensors and workspaces come from (NativeMemory). */
SEQ4J_API int seq4j_alloc(void **block, int64_t bytes);

/* Releases a block of seq4j_alloc; NULL is ignored. Always SEQ4J_OK. */
SEQ4J_API int seq4j_free(void *block);

/* For AddressSanitizer (a no-op in other builds): of a block of seq4j_alloc of capacity bytes,
 * makes the first usable bytes addressable and the rest poisoned, so that an access past usable
 * or to a block held for reuse (usable 0) is reported. NativeMemory calls it for the large blocks
 * it keeps after release and hands out again for smaller requests. */
SEQ4J_API int seq4j_mark_usable(void *block, int64_t usable, int64_t capacity);

/* ---- linear algebra --------------------------------------------------------------------- */

/* c(m, n) = alpha * op(a) * op(b) + beta * c, row-major.
 * op(a) is (m, k): a is stored (m, k), or (k, m) when trans_a != 0.
 * op(b) is (k, n): b is stored (k, n), or (n, k) when trans_b != 0.
 * With beta == 0, c is written without being read (NaN in c does not propagate).
 * c must not overlap a or b. */
SEQ4J_API int seq4j_matmul(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                           int32_t trans_a, int32_t trans_b, float alpha, float beta, int32_t backend);

/* out (rows, out_features) = x (rows, in_features) · weightᵀ + bias: PyTorch's linear, with
 * weight stored (out_features, in_features) as nn.Linear keeps it and bias (out_features) or NULL.
 * oneDNN adds the bias in the product's epilogue (its matmul primitive, cached per thread and per
 * (in_features, out_features, bias)); deterministic mode and the BLAS backend lay the bias down
 * first and accumulate the product onto it. out is written without being read; it must not
 * overlap x, weight or bias. backend as seq4j_matmul's. */
SEQ4J_API int seq4j_linear(float *out, const float *x, const float *weight, const float *bias,
                           int64_t rows, int64_t in_features, int64_t out_features,
                           int32_t backend);

/* out[i] = a[i] + b[i] for i < n. out may equal a or b. */
SEQ4J_API int seq4j_add(float *out, const float *a, const float *b, int64_t n);

/* out[i] = alpha * x[i] for i < n. out may equal x. */
SEQ4J_API int seq4j_scale(float *out, const float *x, float alpha, int64_t n);

/* y[i] += alpha * x[i] for i < n. */
SEQ4J_API int seq4j_axpy(float *y, float alpha, const float *x, int64_t n);

/* x[i] = value for i < n. */
SEQ4J_API int seq4j_fill(float *x, float value, int64_t n);

/* out (b, a, c) = in (a, b, c) with the first two axes swapped: batch-first <-> time-major.
 * out must not overlap in. */
SEQ4J_API int seq4j_swap_leading_axes(float *out, const float *in, int64_t a, int64_t b, int64_t c);

/* out = in with its axes permuted (PyTorch's permute, made contiguous): in is row-major with sizes
 * dims[0..rank), and out's axis i is in's axis perm[i]. 1 <= rank <= 8; out must not overlap in. */
SEQ4J_API int seq4j_permute(float *out, const float *in, int32_t rank, const int64_t *dims,
                            const int32_t *perm);

/* out (rows, cols) = row (cols) in every row: a bias laid down before a GEMM that adds into out. */
SEQ4J_API int seq4j_broadcast_rows(float *out, const float *row, int64_t rows, int64_t cols);

/* into[c] += the sum over r of x[r, c] (a bias gradient), summed in double in an order fixed by
 * the shape (the same bits for any thread count). into must not overlap x. */
SEQ4J_API int seq4j_add_column_sums(float *into, const float *x, int64_t rows, int64_t cols);

/* ---- recurrent layers (native/src/rnn/: rnn.cpp the entry points and AUTO's table,
 * rnn_onednn.cpp oneDNN, rnn_blas.cpp and rnn_step.cpp BLAS, cell_kernels.* its fused kernels) --
 *
 * One seq4j_rnn_layer is one layer of a recurrent network (one or two directions) with fixed sizes;
 * multi-layer networks chain them. Data is time-major and row-major:
 *   input   (T, N, I)          output (T, N, D * Hout)   (forward direction first, then backward)
 *   h0, h_n (D, N, Hout)       c0, c_n (D, N, H)         (LSTM only)
 * where D is 1 or 2 directions and Hout is proj_size for an LSTM with projection, else H.
 * Parameters are passed per direction in PyTorch's layouts and gate orders (LSTM i, f, g, o; GRU
 * r, z, n with the reset gate applied to the recurrent product including its bias). The oneDNN
 * backend converts them to oneDNN's layouts, the BLAS backend packs the recurrent weights into
 * panels; inference keeps either while weights_version stays the same.
 *
 * lengths (N values in [1, T]) gives each sample its own length, as PyTorch's packed sequences:
 * outputs past a sample's end are zero and its final state is the one at its own last step, in
 * both directions. NULL means every sample has length T (no extra cost).
 */

#define SEQ4J_CELL_RNN_TANH 0
#define SEQ4J_CELL_RNN_RELU 1
#define SEQ4J_CELL_LSTM 2
#define SEQ4J_CELL_GRU 3

typedef struct seq4j_rnn_layer seq4j_rnn_layer; /* opaque */

typedef struct seq4j_rnn_layer_desc {
  int32_t cell;        /* SEQ4J_CELL_* */
  int32_t directions;  /* 1, or 2 for bidirectional (outputs concatenated) */
  int64_t input_size;  /* I */
  int64_t hidden_size; /* H */
  int64_t proj_size;   /* P: 0 for none; LSTM only, 0 < P < H */
  int32_t peephole;    /* LSTM only: peephole weights from the cell into the gates */
  int32_t bias;        /* whether bias_ih and bias_hh exist */
} seq4j_rnn_layer_desc;

/* The parameters of one direction, PyTorch's names; G = 1 (RNN), 4 (LSTM), 3 (GRU). Unused ones
 * are NULL. For gradients, the same struct points at the gradient buffers. */
typedef struct seq4j_rnn_weights {
  float *weight_ih; /* (G*H, I) */
  float *weight_hh; /* (G*H, Hout) */
  float *bias_ih;   /* (G*H) */
  float *bias_hh;   /* (G*H) */
  float *weight_hr; /* (P, H), projection */
  float *weight_ci; /* (H), peepholes */
  float *weight_cf; /* (H) */
  float *weight_co; /* (H) */
} seq4j_rnn_weights;

/* Creates a layer; *layer receives the handle, to be released with seq4j_rnn_layer_destroy. */
SEQ4J_API int seq4j_rnn_layer_create(seq4j_rnn_layer **layer, const seq4j_rnn_layer_desc *desc);

/* Releases the layer and everything it cached. NULL is ignored. */
SEQ4J_API int seq4j_rnn_layer_destroy(seq4j_rnn_layer *layer);

/* Which backend runs a call: SEQ4J_BACKEND_ONEDNN (oneDNN's RNN primitives), SEQ4J_BACKEND_BLAS
 * (OpenBLAS sgemm for the products and seq4j's fused, vectorized cell kernels; rnn_blas.cpp) or
 * SEQ4J_BACKEND_AUTO, which picks one from (cell, sizes, t, n, training) by a fixed table measured
 * in bench/ (rnn.cpp, choose_backend). A training forward (workspace not NULL) and its backward
 * resolve AUTO the same way for the same arguments. *chosen receives the backend a call with these
 * arguments would use; training is nonzero for a training forward or a backward. */
SEQ4J_API int seq4j_rnn_layer_backend(seq4j_rnn_layer *layer, int32_t backend, int64_t t,
                                      int64_t n, int32_t training, int32_t *chosen);

/* Bytes of workspace a training forward on this backend needs (the backward reads it). */
SEQ4J_API int seq4j_rnn_layer_workspace_size(seq4j_rnn_layer *layer, int32_t backend,
                                             const int64_t *lengths, int64_t t, int64_t n,
                                             int64_t *bytes);

/* Forward. weights: D structs. weights_version: callers bump it when parameters change; -1 forces
 * a fresh conversion. workspace NULL means inference; otherwise a training forward that fills
 * workspace (workspace_bytes from seq4j_rnn_layer_workspace_size). h_n/c_n may be NULL (not
 * wanted); h0/c0 NULL mean zeros. */
SEQ4J_API int seq4j_rnn_layer_forward(seq4j_rnn_layer *layer, int32_t backend,
                                      const seq4j_rnn_weights *weights, int64_t weights_version,
                                      float *output, float *h_n, float *c_n, void *workspace,
                                      int64_t workspace_bytes, const float *input, const float *h0,
                                      const float *c0, const int64_t *lengths, int64_t t,
                                      int64_t n);

/* Backward of the latest training forward of this layer on the same backend: writes grad_input,
 * grad_h0, grad_c0 (each may be NULL when not wanted) and ADDS the parameter gradients into the
 * buffers of grads (D structs). grad_h_n/grad_c_n NULL mean zero. The forward's tensors, workspace
 * and lengths are passed again, unchanged. It may be called any number of times for one training
 * forward, each call adding the parameter gradients again. On oneDNN it uses the weights as
 * converted by that forward; oneDNN's backward overwrites part of the workspace, so a second
 * backward first recomputes the forward into it (the workspace records its state; the recomputed
 * outputs go to seq4j's own buffers, the caller's are left as they are), at the cost of one
 * forward. The workspace also records the thread count the forward split a small layer's batch
 * for, so the backward splits the same way at any seq4j_set_threads since; a workspace no
 * training forward filled gives SEQ4J_ERR_INVALID_ARGUMENT. The BLAS backend reads the caller's
 * weights and leaves the workspace intact. */
SEQ4J_API int seq4j_rnn_layer_backward(
    seq4j_rnn_layer *layer, int32_t backend, const seq4j_rnn_weights *weights,
    const seq4j_rnn_weights *grads, float *grad_input, float *grad_h0, float *grad_c0,
    const float *grad_output, const float *grad_h_n, const float *grad_c_n, const void *workspace,
    int64_t workspace_bytes, const float *input, const float *h0, const float *c0,
    const float *output, const float *h_n, const float *c_n, const int64_t *lengths, int64_t t,
    int64_t n);

/* One inference step of a stack of unidirectional layers, the streaming path: for layer l,
 * h + offset (N, Hout_l) and c + offset (N, H_l) (LSTM) hold its state and are overwritten in place
 * with the next one; layer 0 reads input (N, I), layer l > 0 reads layer l-1's new h. The
 * top layer's new h is the step's output. weights[l] points at layer l's single direction. Weights
 * are re-packed for matrix-vector work (N <= 8) when weights_version changes. Allocates nothing
 * once warm. */
SEQ4J_API int seq4j_rnn_step(seq4j_rnn_layer *const *layers, const seq4j_rnn_weights *const *weights,
                             int64_t weights_version, int32_t num_layers, float *h, float *c,
                             const float *input, int64_t n);

/* How the BLAS backend stores the weights it packs for matrix-vector work: the streaming step
 * (seq4j_rnn_step) and its small-batch inference forward (N <= 8). SEQ4J_STEP_WEIGHTS_F32 (the
 * default) or SEQ4J_STEP_WEIGHTS_BF16: each weight rounded to bfloat16 (nearest even), half the
 * bytes to stream at every step, and the inputs of the products ([x; h]) rounded too, so each
 * product is exact and the products sum in float32 (vdpbf16ps where the CPU has AVX512_BF16);
 * the state stays float32. Training, larger batches and the oneDNN backend are unaffected. The
 * next call re-packs. */
#define SEQ4J_STEP_WEIGHTS_F32 0
#define SEQ4J_STEP_WEIGHTS_BF16 1
SEQ4J_API int seq4j_rnn_layer_set_step_weights(seq4j_rnn_layer *layer, int32_t storage);

/* The one ISA switch of seq4j's own vector kernels (native/src/core/cpu.cpp): the BLAS backend's
 * cell kernels and panel products, and attention's tile kernels and softmax, exist in copies for
 * AVX-512, AVX2 + FMA and the baseline (the portable C++ fallback, the only copy on other
 * architectures than x86-64; for attention std::exp and OpenBLAS's sgemm). The copies round
 * differently (their sums run in other orders), each within the ops' tolerances. The best copy
 * the CPU supports is chosen at load. This forces one for every
 * kernel at once, for tests of the fallbacks and for comparisons: 0 the best, 1 baseline, 2 AVX2,
 * 3 AVX-512. Fails with SEQ4J_ERR_UNSUPPORTED ("this CPU has no ...") when the CPU lacks it.
 * *previous (may be NULL) receives the one in use before (1, 2 or 3). Not meant to be called
 * while kernels run on other threads. */
SEQ4J_API int seq4j_select_kernels(int32_t isa, int32_t *previous);

/* Inverted dropout with a counter-based generator: out[i] = x[i] * keep_i / (1 - p), where keep_i
 * depends only on (seed, i). Calling it again with the same seed on the gradient gives the
 * backward. out may equal x (native/src/ops/dropout.cpp).
 *
 * The generator of every dropout mask in seq4j (this function's, and the attention weights' of
 * seq4j_attention_forward/backward), exactly, so that references can reproduce it bit for bit.
 * All arithmetic is on unsigned 64-bit integers, wrapping modulo 2^64; ^ is XOR, >> a logical
 * shift:
 *     splitmix64(z):  z = z + 0x9E3779B97F4A7C15
 *                     z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
 *                     z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *                     return z ^ (z >> 31)
 *     key       = splitmix64((uint64_t) seed)            (the int64 seed's two's-complement bits)
 *     threshold = (uint64_t) floor((double) p * 2^24)    (p as a float, widened to double)
 *     keep_i    = (splitmix64(key ^ (uint64_t) i) >> 40) >= threshold
 * i is the element's index: here the offset in x; in attention the score's row-major index
 * ((n * Hq + h) * Tq + q) * Tk + k in the (N, Hq, Tq, Tk) weights. A kept element is scaled by
 * 1 / (1 - p) in float32. */
SEQ4J_API int seq4j_dropout(float *out, const float *x, int64_t n, float p, int64_t seed);

/* ---- losses (native/src/ops/losses.cpp): each returns the mean loss in *loss and, when grad is
 * not NULL, writes the gradient of that mean loss with respect to its input into grad. ---------- */

/* Mean squared error over n elements: mean((prediction - target)^2). */
SEQ4J_API int seq4j_mse_loss(float *loss, float *grad, const float *prediction, const float *target,
                             int64_t n);

/* Softmax cross-entropy of logits (m, v) against labels (m) in [0, v), averaged over the rows whose
 * label is not ignore_index (0 when every row is ignored). With label_smoothing e in [0, 1) the
 * target distribution is (1 - e) one-hot + e / v, as PyTorch's CrossEntropyLoss. */
SEQ4J_API int seq4j_cross_entropy_loss(float *loss, float *grad, const float *logits,
                                       const int64_t *labels, int64_t m, int64_t v,
                                       int64_t ignore_index, float label_smoothing);

/* Binary cross-entropy with logits over n elements, targets in [0, 1], computed stably. */
SEQ4J_API int seq4j_bce_with_logits_loss(float *loss, float *grad, const float *logits,
                                         const float *target, int64_t n);

/* ---- optimizers and clipping (native/src/ops/optimizers.cpp) -------------------------------- */

/* One SGD step on n parameters, PyTorch's rule: g = grad + weight_decay * p; with momentum,
 * velocity = g on the first step, else momentum * velocity + (1 - dampening) * g, and g becomes
 * g + momentum * velocity (Nesterov) or velocity; then p -= lr * g. velocity may be NULL when
 * momentum is 0. */
SEQ4J_API int seq4j_sgd_step(float *param, float *velocity, const float *grad, int64_t n, float lr,
                             float momentum, float dampening, float weight_decay, int32_t nesterov,
                             int32_t first_step);

/* One Adam step (step >= 1 counts from 1), PyTorch's rule; decoupled != 0 is AdamW (the weight
 * decay shrinks p directly instead of being added to the gradient). */
SEQ4J_API int seq4j_adam_step(float *param, float *m, float *v, const float *grad, int64_t n,
                              float lr, float beta1, float beta2, float eps, float weight_decay,
                              int32_t decoupled, int64_t step);

/* *out = sum of x[i]^2, accumulated in double. */
SEQ4J_API int seq4j_sum_squares(double *out, const float *x, int64_t n);

/* x[i] = min(max(x[i], -clip), clip). */
SEQ4J_API int seq4j_clamp(float *x, float clip, int64_t n);

/* ---- scaled dot-product attention (native/src/attention/attention.cpp) ----------------------
 *
 * q (N, Hq, Tq, d), k (N, Hkv, Tk, d), v (N, Hkv, Tk, dv), out (N, Hq, Tq, dv); Hq is a multiple
 * of Hkv (grouped-query attention: query head h reads key/value head h / (Hq / Hkv)).
 * out = dropout(softmax(scale · q kᵀ + mask)) v, computed tile by tile with an online softmax: no
 * Tq × Tk matrix is ever held, memory grows linearly in T. lse (N, Hq, Tq) keeps each row's
 * log-sum-exp for the backward, which recomputes the tiles.
 *
 * Non-finite values follow PyTorch's math scaled_dot_product_attention (>= 2.5, _safe_softmax) on
 * every ISA copy: masks (causal, boolean, key padding) are *added* as -inf, so with s = scale · q kᵀ
 * + mask a score that is NaN (a NaN in q_i or k_j, inf · 0, or a NaN additive mask) stays NaN even
 * where masked, and +inf - inf = NaN.
 *  - fully masked row (every score -inf, none NaN): output 0, lse = +inf (not NaN);
 *  - a NaN score in row i, or a +inf one (exp(inf - inf)): output row i all NaN, lse NaN;
 *    so a NaN in q_i poisons row i, a NaN in k_j every row of that head (masked or not);
 *  - a NaN (or inf) in v_j[e]: column e of every row of the head is NaN (0 · NaN, also where key j
 *    is masked or dropped) or ±inf where only positive weights meet an inf;
 *  - -inf scores from the inputs act as masked ones.
 * The causal path still skips the tiles above the diagonal when q, k and v of a head (and an
 * additive mask) are finite, and visits them all when not, so the answer is the same either way. Scores that overflow float
 * from finite inputs are computed like any other where the kernel computes them (not above a
 * causal diagonal). The backward propagates NaN the same way (NaN lse rows give NaN gradients);
 * seq4j_attention_weights gives NaN rows where the forward's are NaN and zero rows where fully
 * masked. */

#define SEQ4J_MASK_NONE 0
#define SEQ4J_MASK_ADDITIVE 1 /* mask values are added to the scores */
#define SEQ4J_MASK_BOOLEAN 2  /* nonzero: the key takes part; zero: it is masked out */

typedef struct seq4j_attention_desc {
  int64_t batch, query_heads, kv_heads, query_length, kv_length, head_dim, value_dim;
  float scale;          /* the factor of q kᵀ */
  int32_t causal;       /* key j is visible to query i only when j <= i (PyTorch's is_causal) */
  float dropout;        /* probability of dropping an attention weight; 0 outside training.
                         * The mask is seq4j_dropout's generator (above), indexed by score. */
  int64_t seed;         /* dropout's seed: the same seed gives the same mask */
  int32_t mask_kind;    /* SEQ4J_MASK_* */
  int64_t mask_strides[4]; /* element strides of mask for (n, h, i, j); 0 broadcasts */
} seq4j_attention_desc;

/* Forward. mask: per desc (may be NULL with SEQ4J_MASK_NONE); key_padding (N, Tk), nonzero =
 * that key is ignored, or NULL. lse may be NULL (inference). */
SEQ4J_API int seq4j_attention_forward(float *out, float *lse, const float *q, const float *k,
                                      const float *v, const float *mask,
                                      const float *key_padding, const seq4j_attention_desc *desc);

/* Backward: writes dq, dk, dv (overwritten, not added) from d_out and the forward's out and lse. */
SEQ4J_API int seq4j_attention_backward(float *dq, float *dk, float *dv, const float *d_out,
                                       const float *q, const float *k, const float *v,
                                       const float *out, const float *lse, const float *mask,
                                       const float *key_padding,
                                       const seq4j_attention_desc *desc);

/* The attention weights (N, Hq, Tq, Tk), without dropout: only for callers who ask for them. */
SEQ4J_API int seq4j_attention_weights(float *weights, const float *q, const float *k,
                                      const float *mask, const float *key_padding,
                                      const seq4j_attention_desc *desc);

/* ---- layer norm (native/src/attention/layer_norm.cpp): over the last dimension of x (rows, cols).
 * The forward saves each row's mean and reciprocal standard deviation for the backward. -------- */

/* out = (x - mean) * rstd * gamma + beta; gamma and beta (cols) may be NULL (no affine). */
SEQ4J_API int seq4j_layer_norm_forward(float *out, float *mean, float *rstd, const float *x,
                                       const float *gamma, const float *beta, int64_t rows,
                                       int64_t cols, float eps);

/* dx = ∂L/∂x (written); dgamma, dbeta (cols) are ADDED into when not NULL. */
SEQ4J_API int seq4j_layer_norm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                                        const float *x, const float *mean, const float *rstd,
                                        const float *gamma, int64_t rows, int64_t cols);

/* ---- activations and embedding (native/src/ops/activations.cpp, embedding.cpp) ------------- */

#define SEQ4J_ACTIVATION_RELU 0
#define SEQ4J_ACTIVATION_GELU 1      /* x Φ(x), with the error function, PyTorch's default */
#define SEQ4J_ACTIVATION_GELU_TANH 2 /* PyTorch's approximate='tanh' */

/* out = f(x); out may equal x. */
SEQ4J_API int seq4j_activation_forward(float *out, const float *x, int64_t n, int32_t kind);

/* dx = dout * f'(x); dx may equal dout. */
SEQ4J_API int seq4j_activation_backward(float *dx, const float *dout, const float *x, int64_t n,
                                        int32_t kind);

/* out (n, dim) = weight[indices[i]] for weight (vocabulary, dim); indices in [0, vocabulary). */
SEQ4J_API int seq4j_embedding_forward(float *out, const float *weight, const int64_t *indices,
                                      int64_t n, int64_t vocabulary, int64_t dim);

/* dweight[indices[i]] += dout[i]: ADDED into dweight (vocabulary, dim). */
SEQ4J_API int seq4j_embedding_backward(float *dweight, const float *dout, const int64_t *indices,
                                       int64_t n, int64_t vocabulary, int64_t dim);

#ifdef __cplusplus
}
#endif

#endif /* SEQ4J_H */
