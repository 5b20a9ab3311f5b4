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

/* ---- linear algebra --------------------------------------------------------------------- */

/* c(m, n) = alpha * op(a) * op(b) + beta * c, row-major.
 * op(a) is (m, k): a is stored (m, k), or (k, m) when trans_a != 0.
 * op(b) is (k, n): b is stored (k, n), or (n, k) when trans_b != 0.
 * With beta == 0, c is written without being read (NaN in c does not propagate).
 * c must not overlap a or b. */
SEQ4J_API int seq4j_matmul(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                           int32_t trans_a, int32_t trans_b, float alpha, float beta, int32_t backend);

/* out[i] = a[i] + b[i] for i < n. out may equal a or b. */
SEQ4J_API int seq4j_add(float *out, const float *a, const float *b, int64_t n);

/* out[i] = alpha * x[i] for i < n. out may equal x. */
SEQ4J_API int seq4j_scale(float *out, const float *x, float alpha, int64_t n);

/* y[i] += alpha * x[i] for i < n. */
SEQ4J_API int seq4j_axpy(float *y, float alpha, const float *x, int64_t n);

/* x[i] = value for i < n. */
SEQ4J_API int seq4j_fill(float *x, float value, int64_t n);

#ifdef __cplusplus
}
#endif

#endif /* SEQ4J_H */
