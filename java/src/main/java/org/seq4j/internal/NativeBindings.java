package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;
import org.seq4j.Seq4jException;

/**
 * The C ABI of {@code native/include/seq4j.h} as Java methods: one typed static method per C
 * function, in the header's order and sections, each with the C prototype beside it. This class is
 * the only place that holds a {@link MethodHandle} of libseq4j and calls {@code invokeExact}; the
 * rest of seq4j passes {@link MemorySegment}s and primitives and gets results or exceptions.
 *
 * <p>Errors: every method turns a nonzero status into a {@link Seq4jException} carrying the status
 * and {@code seq4j_last_error()}'s message, in {@link #check(int)}; what a downcall itself throws
 * (a closed arena's {@link IllegalStateException}, a load failure) passes unchanged through {@link
 * #rethrow(Throwable)}. If the libraries could not be loaded, every method throws the loader's
 * {@link UnsatisfiedLinkError}, with the full list of attempts: the class itself always
 * initialises.
 *
 * <p>{@code Linker.Option.critical(true)} marks a call the JVM runs without the thread-state
 * transition a GC safepoint needs: it may take heap arrays, but a long critical call stalls every
 * GC. It is used only for calls that are O(1) and never start an OpenMP team; each binding says
 * why it is or is not critical.
 */
public final class NativeBindings {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle NEW_LOAD_ERROR = newLoadErrorHandle();
  private static final Object LOADED = loadOnce();
  private static final boolean CRITICAL = true;
  private static final boolean ORDINARY = false;

  private NativeBindings() {}

  // ---- runtime -------------------------------------------------------------------------------

  // const char *seq4j_last_error(void);
  // critical: returns a pointer to thread-local storage, O(1)
  private static final MethodHandle LAST_ERROR = bind("seq4j_last_error", CRITICAL, ADDRESS);

  // const char *seq4j_version(void);
  // critical: returns a pointer to static storage, O(1)
  private static final MethodHandle VERSION = bind("seq4j_version", CRITICAL, ADDRESS);

  // int seq4j_noop(void);
  // critical: does nothing (the downcall-cost benchmark's subject)
  private static final MethodHandle NOOP = bind("seq4j_noop", CRITICAL, JAVA_INT);

  // the same function as an ordinary downcall, for the benchmark's comparison
  private static final MethodHandle NOOP_ORDINARY = bind("seq4j_noop", ORDINARY, JAVA_INT);

  // int seq4j_set_threads(int64_t n);
  // critical: stores n and calls omp_set_num_threads, which sets a variable and starts no team
  private static final MethodHandle SET_THREADS =
      bind("seq4j_set_threads", CRITICAL, JAVA_INT, JAVA_LONG);

  // int seq4j_get_threads(int64_t *n);
  // critical: reads one value, O(1); Seq4j.threads() passes a heap array, which needs critical
  private static final MethodHandle GET_THREADS =
      bind("seq4j_get_threads", CRITICAL, JAVA_INT, ADDRESS);

  // int seq4j_runtime_info(char *buf, int64_t capacity, int64_t *needed);
  // ordinary: builds a text from oneDNN's and OpenBLAS's configuration (allocates, not O(1))
  private static final MethodHandle RUNTIME_INFO =
      bind("seq4j_runtime_info", ORDINARY, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS);

  /** {@code seq4j_last_error()}: the calling thread's last native error message. */
  public static String lastError() {
    try {
      MemorySegment text = (MemorySegment) LAST_ERROR.invokeExact();
      return text.reinterpret(Long.MAX_VALUE).getString(0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_version()}: the native library's version. */
  public static String version() {
    try {
      MemorySegment text = (MemorySegment) VERSION.invokeExact();
      return text.reinterpret(Long.MAX_VALUE).getString(0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_noop()} as a critical downcall: returns its status (0), for benchmarks. */
  public static int noop() {
    try {
      return (int) NOOP.invokeExact();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_noop()} as an ordinary downcall: returns its status (0), for benchmarks. */
  public static int noopOrdinary() {
    try {
      return (int) NOOP_ORDINARY.invokeExact();
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_set_threads(n)}. */
  public static void setThreads(long n) {
    try {
      check((int) SET_THREADS.invokeExact(n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_get_threads(&n)}: returns n. Allocation-free (a heap array, critical call). */
  public static long getThreads() {
    long[] result = new long[1];
    try {
      check((int) GET_THREADS.invokeExact(MemorySegment.ofArray(result)));
    } catch (Throwable t) {
      throw rethrow(t);
    }
    return result[0];
  }

  /**
   * {@code seq4j_runtime_info(buf, capacity, needed)}: the whole text, retried with a larger
   * buffer when the first was too small.
   */
  public static String runtimeInfo() {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment needed = call.allocate(JAVA_LONG);
      MemorySegment buffer = call.allocate(4096);
      check((int) RUNTIME_INFO.invokeExact(buffer, buffer.byteSize(), needed));
      long size = needed.get(JAVA_LONG, 0);
      if (size > buffer.byteSize()) {
        buffer = call.allocate(size);
        check((int) RUNTIME_INFO.invokeExact(buffer, buffer.byteSize(), needed));
      }
      buffer.set(java.lang.foreign.ValueLayout.JAVA_BYTE, buffer.byteSize() - 1, (byte) 0);
      return buffer.getString(0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- linear algebra ------------------------------------------------------------------------
  // ordinary, all: each runs in time linear in its sizes and may split work across the pool

  // int seq4j_matmul(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
  //                  int32_t trans_a, int32_t trans_b, float alpha, float beta, int32_t backend);
  private static final MethodHandle MATMUL =
      bind("seq4j_matmul", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
          JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT);

  // int seq4j_linear(float *out, const float *x, const float *weight, const float *bias,
  //                  int64_t rows, int64_t in_features, int64_t out_features, int32_t backend);
  private static final MethodHandle LINEAR =
      bind("seq4j_linear", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG, JAVA_LONG, JAVA_INT);

  // int seq4j_add(float *out, const float *a, const float *b, int64_t n);
  private static final MethodHandle ADD =
      bind("seq4j_add", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);

  // int seq4j_scale(float *out, const float *x, float alpha, int64_t n);
  private static final MethodHandle SCALE =
      bind("seq4j_scale", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG);

  // int seq4j_axpy(float *y, float alpha, const float *x, int64_t n);
  private static final MethodHandle AXPY =
      bind("seq4j_axpy", ORDINARY, JAVA_INT, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_LONG);

  // int seq4j_fill(float *x, float value, int64_t n);
  private static final MethodHandle FILL =
      bind("seq4j_fill", ORDINARY, JAVA_INT, ADDRESS, JAVA_FLOAT, JAVA_LONG);

  // int seq4j_swap_leading_axes(float *out, const float *in, int64_t a, int64_t b, int64_t c);
  private static final MethodHandle SWAP_LEADING_AXES =
      bind("seq4j_swap_leading_axes", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
          JAVA_LONG);

  // int seq4j_permute(float *out, const float *in, int32_t rank, const int64_t *dims,
  //                   const int32_t *perm);
  private static final MethodHandle PERMUTE =
      bind("seq4j_permute", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);

  // int seq4j_broadcast_rows(float *out, const float *row, int64_t rows, int64_t cols);
  private static final MethodHandle BROADCAST_ROWS =
      bind("seq4j_broadcast_rows", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);

  // int seq4j_add_column_sums(float *into, const float *x, int64_t rows, int64_t cols);
  private static final MethodHandle ADD_COLUMN_SUMS =
      bind("seq4j_add_column_sums", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);

  /** {@code seq4j_matmul}: {@code c = alpha op(a) op(b) + beta c}; backend a {@code BACKEND_*}. */
  public static void matmul(MemorySegment c, MemorySegment a, MemorySegment b, long m, long n,
      long k, boolean transposeA, boolean transposeB, float alpha, float beta, int backend) {
    try {
      check((int) MATMUL.invokeExact(c, a, b, m, n, k, transposeA ? 1 : 0, transposeB ? 1 : 0,
          alpha, beta, backend));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * {@code seq4j_linear}: {@code out (rows, outFeatures) = x · weightᵀ + bias}, weight {@code
   * (outFeatures, inFeatures)}; bias {@link MemorySegment#NULL} for none.
   */
  public static void linear(MemorySegment out, MemorySegment x, MemorySegment weight,
      MemorySegment bias, long rows, long inFeatures, long outFeatures, int backend) {
    try {
      check((int) LINEAR.invokeExact(out, x, weight, bias, rows, inFeatures, outFeatures,
          backend));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /**
   * {@code seq4j_matmul} with its raw status returned, not checked: only for tests of the status
   * path itself.
   */
  static int matmulStatus(MemorySegment c, MemorySegment a, MemorySegment b, long m, long n,
      long k, int transposeA, int transposeB, float alpha, float beta, int backend) {
    try {
      return (int) MATMUL.invokeExact(c, a, b, m, n, k, transposeA, transposeB, alpha, beta,
          backend);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_add}: {@code out[i] = a[i] + b[i]}. */
  public static void add(MemorySegment out, MemorySegment a, MemorySegment b, long n) {
    try {
      check((int) ADD.invokeExact(out, a, b, n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_scale}: {@code out[i] = alpha x[i]}. */
  public static void scale(MemorySegment out, MemorySegment x, float alpha, long n) {
    try {
      check((int) SCALE.invokeExact(out, x, alpha, n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_axpy}: {@code y[i] += alpha x[i]}. */
  public static void axpy(MemorySegment y, float alpha, MemorySegment x, long n) {
    try {
      check((int) AXPY.invokeExact(y, alpha, x, n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_fill}: {@code x[i] = value}. */
  public static void fill(MemorySegment x, float value, long n) {
    try {
      check((int) FILL.invokeExact(x, value, n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_swap_leading_axes}: {@code out (b, a, c) = in (a, b, c)}. */
  public static void swapLeadingAxes(MemorySegment out, MemorySegment in, long a, long b,
      long c) {
    try {
      check((int) SWAP_LEADING_AXES.invokeExact(out, in, a, b, c));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** out (rows, cols) = row in every row. */
  public static void broadcastRows(MemorySegment out, MemorySegment row, long rows, long cols) {
    try {
      check((int) BROADCAST_ROWS.invokeExact(out, row, rows, cols));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** into[c] += the sum over rows of x[r, c]. */
  public static void addColumnSums(MemorySegment into, MemorySegment x, long rows, long cols) {
    try {
      check((int) ADD_COLUMN_SUMS.invokeExact(into, x, rows, cols));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** out = in (row-major, sizes {@code dims}) with out's axis i = in's axis {@code perm[i]}. */
  public static void permute(MemorySegment out, MemorySegment in, long[] dims, int[] perm) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment dimsSegment = call.allocateFrom(JAVA_LONG, dims);
      MemorySegment permSegment = call.allocateFrom(JAVA_INT, perm);
      check((int) PERMUTE.invokeExact(out, in, dims.length, dimsSegment, permSegment));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- recurrent layers ----------------------------------------------------------------------
  // The handle's owner is RecurrentLayerHandles, which builds the structs (AbiLayouts).

  // int seq4j_rnn_layer_create(seq4j_rnn_layer **layer, const seq4j_rnn_layer_desc *desc);
  // ordinary: builds a oneDNN engine and caches (allocates)
  private static final MethodHandle RNN_LAYER_CREATE =
      bind("seq4j_rnn_layer_create", ORDINARY, JAVA_INT, ADDRESS, ADDRESS);

  // int seq4j_rnn_layer_destroy(seq4j_rnn_layer *layer);
  // ordinary: frees cached primitives and packed weights (not O(1))
  private static final MethodHandle RNN_LAYER_DESTROY =
      bind("seq4j_rnn_layer_destroy", ORDINARY, JAVA_INT, ADDRESS);

  // int seq4j_rnn_layer_backend(seq4j_rnn_layer *layer, int32_t backend, int64_t t, int64_t n,
  //                             int32_t training, int32_t *chosen);
  // ordinary: a table look-up, but it is called once per training forward only (no gain)
  private static final MethodHandle RNN_LAYER_BACKEND =
      bind("seq4j_rnn_layer_backend", ORDINARY, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
          JAVA_INT, ADDRESS);

  // int seq4j_rnn_layer_workspace_size(seq4j_rnn_layer *layer, int32_t backend,
  //                                    const int64_t *lengths, int64_t t, int64_t n,
  //                                    int64_t *bytes);
  // ordinary: on oneDNN it creates primitive descriptors (not tiny)
  private static final MethodHandle RNN_LAYER_WORKSPACE_SIZE =
      bind("seq4j_rnn_layer_workspace_size", ORDINARY, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
          JAVA_LONG, JAVA_LONG, ADDRESS);

  // int seq4j_rnn_layer_forward(seq4j_rnn_layer *layer, int32_t backend,
  //     const seq4j_rnn_weights *weights, int64_t weights_version, float *output, float *h_n,
  //     float *c_n, void *workspace, int64_t workspace_bytes, const float *input, const float *h0,
  //     const float *c0, const int64_t *lengths, int64_t t, int64_t n);
  // ordinary: long-running, parallel
  private static final MethodHandle RNN_LAYER_FORWARD =
      bind("seq4j_rnn_layer_forward", ORDINARY, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          JAVA_LONG, JAVA_LONG);

  // int seq4j_rnn_layer_backward(seq4j_rnn_layer *layer, int32_t backend,
  //     const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads, float *grad_input,
  //     float *grad_h0, float *grad_c0, const float *grad_output, const float *grad_h_n,
  //     const float *grad_c_n, const void *workspace, int64_t workspace_bytes, const float *input,
  //     const float *h0, const float *c0, const float *output, const float *h_n,
  //     const float *c_n, const int64_t *lengths, int64_t t, int64_t n);
  // ordinary: long-running, parallel
  private static final MethodHandle RNN_LAYER_BACKWARD =
      bind("seq4j_rnn_layer_backward", ORDINARY, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);

  // int seq4j_rnn_step(seq4j_rnn_layer *const *layers, const seq4j_rnn_weights *const *weights,
  //                    int64_t weights_version, int32_t num_layers, float *h, float *c,
  //                    const float *input, int64_t n);
  // ordinary: short for small weights, but it opens an OpenMP parallel region once the weights
  // are large (rnn_blas.cpp), re-packs weights when their version changes, and takes the GEMM
  // route above 8 samples; none of that may run while the GC is held off
  private static final MethodHandle RNN_STEP =
      bind("seq4j_rnn_step", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS,
          ADDRESS, ADDRESS, JAVA_LONG);

  // int seq4j_rnn_layer_set_step_weights(seq4j_rnn_layer *layer, int32_t storage);
  // ordinary: rare (a configuration change), takes the packing lock
  private static final MethodHandle RNN_LAYER_SET_STEP_WEIGHTS =
      bind("seq4j_rnn_layer_set_step_weights", ORDINARY, JAVA_INT, ADDRESS, JAVA_INT);

  // int seq4j_select_kernels(int32_t isa, int32_t *previous);
  // ordinary: O(1), but rare (tests and comparisons): nothing to gain
  private static final MethodHandle SELECT_KERNELS =
      bind("seq4j_select_kernels", ORDINARY, JAVA_INT, JAVA_INT, ADDRESS);

  // int seq4j_dropout(float *out, const float *x, int64_t n, float p, int64_t seed);
  // ordinary: linear in n, parallel for large n
  private static final MethodHandle DROPOUT =
      bind("seq4j_dropout", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_FLOAT,
          JAVA_LONG);

  /** {@code seq4j_rnn_layer_create(&layer, desc)}: returns the new handle. */
  public static MemorySegment rnnLayerCreate(MemorySegment desc) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment out = call.allocate(ADDRESS);
      check((int) RNN_LAYER_CREATE.invokeExact(out, desc));
      return out.get(ADDRESS, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_rnn_layer_destroy(layer)}; its status is ignored (it cannot fail). */
  public static void rnnLayerDestroy(MemorySegment layer) {
    try {
      int ignored = (int) RNN_LAYER_DESTROY.invokeExact(layer);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_rnn_layer_backend(...)}: returns the backend code a call would use. */
  public static int rnnLayerBackend(MemorySegment layer, int backend, long t, long n,
      boolean training) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment chosen = call.allocate(JAVA_INT);
      check((int) RNN_LAYER_BACKEND.invokeExact(layer, backend, t, n, training ? 1 : 0, chosen));
      return chosen.get(JAVA_INT, 0);
    } catch (Throwable failure) {
      throw rethrow(failure);
    }
  }

  /** {@code seq4j_rnn_layer_workspace_size(...)}: returns the bytes. */
  public static long rnnLayerWorkspaceSize(MemorySegment layer, int backend,
      MemorySegment lengths, long t, long n) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment bytes = call.allocate(JAVA_LONG);
      check((int) RNN_LAYER_WORKSPACE_SIZE.invokeExact(layer, backend, lengths, t, n, bytes));
      return bytes.get(JAVA_LONG, 0);
    } catch (Throwable failure) {
      throw rethrow(failure);
    }
  }

  /** {@code seq4j_rnn_layer_forward(...)}; absent tensors are {@link MemorySegment#NULL}. */
  public static void rnnLayerForward(MemorySegment layer, int backend, MemorySegment weights,
      long weightsVersion, MemorySegment output, MemorySegment hN, MemorySegment cN,
      MemorySegment workspace, long workspaceBytes, MemorySegment input, MemorySegment h0,
      MemorySegment c0, MemorySegment lengths, long t, long n) {
    try {
      check((int) RNN_LAYER_FORWARD.invokeExact(layer, backend, weights, weightsVersion, output,
          hN, cN, workspace, workspaceBytes, input, h0, c0, lengths, t, n));
    } catch (Throwable failure) {
      throw rethrow(failure);
    }
  }

  /** {@code seq4j_rnn_layer_backward(...)}; absent tensors are {@link MemorySegment#NULL}. */
  public static void rnnLayerBackward(MemorySegment layer, int backend, MemorySegment weights,
      MemorySegment grads, MemorySegment gradInput, MemorySegment gradH0, MemorySegment gradC0,
      MemorySegment gradOutput, MemorySegment gradHN, MemorySegment gradCN,
      MemorySegment workspace, long workspaceBytes, MemorySegment input, MemorySegment h0,
      MemorySegment c0, MemorySegment output, MemorySegment hN, MemorySegment cN,
      MemorySegment lengths, long t, long n) {
    try {
      check((int) RNN_LAYER_BACKWARD.invokeExact(layer, backend, weights, grads, gradInput,
          gradH0, gradC0, gradOutput, gradHN, gradCN, workspace, workspaceBytes, input, h0, c0,
          output, hN, cN, lengths, t, n));
    } catch (Throwable failure) {
      throw rethrow(failure);
    }
  }

  /** {@code seq4j_rnn_step(...)}: allocation-free on the Java side. */
  public static void rnnStep(MemorySegment layers, MemorySegment weights, long weightsVersion,
      int numLayers, MemorySegment h, MemorySegment c, MemorySegment input, long n) {
    try {
      check((int) RNN_STEP.invokeExact(layers, weights, weightsVersion, numLayers, h, c, input,
          n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_rnn_layer_set_step_weights(layer, storage)}. */
  public static void rnnLayerSetStepWeights(MemorySegment layer, int storage) {
    try {
      check((int) RNN_LAYER_SET_STEP_WEIGHTS.invokeExact(layer, storage));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_select_kernels(isa, &previous)}: returns the previous ISA code. */
  public static int selectKernels(int isa) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment previous = call.allocate(JAVA_INT);
      check((int) SELECT_KERNELS.invokeExact(isa, previous));
      return previous.get(JAVA_INT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_dropout(out, x, n, p, seed)}. */
  public static void dropout(MemorySegment out, MemorySegment x, long n, float p, long seed) {
    try {
      check((int) DROPOUT.invokeExact(out, x, n, p, seed));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- losses --------------------------------------------------------------------------------
  // ordinary, all: linear in their sizes

  // int seq4j_mse_loss(float *loss, float *grad, const float *prediction, const float *target,
  //                    int64_t n);
  private static final MethodHandle MSE_LOSS =
      bind("seq4j_mse_loss", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);

  // int seq4j_cross_entropy_loss(float *loss, float *grad, const float *logits,
  //     const int64_t *labels, int64_t m, int64_t v, int64_t ignore_index, float label_smoothing);
  private static final MethodHandle CROSS_ENTROPY_LOSS =
      bind("seq4j_cross_entropy_loss", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_FLOAT);

  // int seq4j_bce_with_logits_loss(float *loss, float *grad, const float *logits,
  //                                const float *target, int64_t n);
  private static final MethodHandle BCE_WITH_LOGITS_LOSS =
      bind("seq4j_bce_with_logits_loss", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          JAVA_LONG);

  /** {@code seq4j_mse_loss}: returns the loss; grad may be {@link MemorySegment#NULL}. */
  public static float mseLoss(MemorySegment grad, MemorySegment prediction, MemorySegment target,
      long n) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment loss = call.allocate(JAVA_FLOAT);
      check((int) MSE_LOSS.invokeExact(loss, grad, prediction, target, n));
      return loss.get(JAVA_FLOAT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_cross_entropy_loss}: returns the loss; grad may be {@link MemorySegment#NULL}. */
  public static float crossEntropyLoss(MemorySegment grad, MemorySegment logits, long[] labels,
      long m, long v, long ignoreIndex, float labelSmoothing) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment loss = call.allocate(JAVA_FLOAT);
      MemorySegment labelSegment = call.allocateFrom(JAVA_LONG, labels);
      check((int) CROSS_ENTROPY_LOSS.invokeExact(loss, grad, logits, labelSegment, m, v,
          ignoreIndex, labelSmoothing));
      return loss.get(JAVA_FLOAT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_bce_with_logits_loss}: returns the loss; grad may be NULL. */
  public static float bceWithLogitsLoss(MemorySegment grad, MemorySegment logits,
      MemorySegment target, long n) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment loss = call.allocate(JAVA_FLOAT);
      check((int) BCE_WITH_LOGITS_LOSS.invokeExact(loss, grad, logits, target, n));
      return loss.get(JAVA_FLOAT, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- optimizers and clipping ---------------------------------------------------------------
  // ordinary, all: linear in n

  // int seq4j_sgd_step(float *param, float *velocity, const float *grad, int64_t n, float lr,
  //     float momentum, float dampening, float weight_decay, int32_t nesterov, int32_t first_step);
  private static final MethodHandle SGD_STEP =
      bind("seq4j_sgd_step", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_FLOAT,
          JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_INT);

  // int seq4j_adam_step(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
  //     float beta1, float beta2, float eps, float weight_decay, int32_t decoupled, int64_t step);
  private static final MethodHandle ADAM_STEP =
      bind("seq4j_adam_step", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_LONG);

  // int seq4j_sum_squares(double *out, const float *x, int64_t n);
  private static final MethodHandle SUM_SQUARES =
      bind("seq4j_sum_squares", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG);

  // int seq4j_clamp(float *x, float clip, int64_t n);
  private static final MethodHandle CLAMP =
      bind("seq4j_clamp", ORDINARY, JAVA_INT, ADDRESS, JAVA_FLOAT, JAVA_LONG);

  /** {@code seq4j_sgd_step}; velocity may be {@link MemorySegment#NULL} without momentum. */
  public static void sgdStep(MemorySegment param, MemorySegment velocity, MemorySegment grad,
      long n, float lr, float momentum, float dampening, float weightDecay, boolean nesterov,
      boolean firstStep) {
    try {
      check((int) SGD_STEP.invokeExact(param, velocity, grad, n, lr, momentum, dampening,
          weightDecay, nesterov ? 1 : 0, firstStep ? 1 : 0));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_adam_step}; step counts from 1. */
  public static void adamStep(MemorySegment param, MemorySegment m, MemorySegment v,
      MemorySegment grad, long n, float lr, float beta1, float beta2, float eps,
      float weightDecay, boolean decoupled, long step) {
    try {
      check((int) ADAM_STEP.invokeExact(param, m, v, grad, n, lr, beta1, beta2, eps, weightDecay,
          decoupled ? 1 : 0, step));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_sum_squares}: returns the sum of squares, accumulated in double. */
  public static double sumSquares(MemorySegment x, long n) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment out = call.allocate(JAVA_DOUBLE);
      check((int) SUM_SQUARES.invokeExact(out, x, n));
      return out.get(JAVA_DOUBLE, 0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_clamp}: {@code x[i] = min(max(x[i], -clip), clip)}. */
  public static void clamp(MemorySegment x, float clip, long n) {
    try {
      check((int) CLAMP.invokeExact(x, clip, n));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- scaled dot-product attention ----------------------------------------------------------
  // ordinary, all: quadratic in the sequence length, parallel. desc: AbiLayouts.ATTENTION_DESC

  // int seq4j_attention_forward(float *out, float *lse, const float *q, const float *k,
  //     const float *v, const float *mask, const float *key_padding,
  //     const seq4j_attention_desc *desc);
  private static final MethodHandle ATTENTION_FORWARD =
      bind("seq4j_attention_forward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS);

  // int seq4j_attention_backward(float *dq, float *dk, float *dv, const float *d_out,
  //     const float *q, const float *k, const float *v, const float *out, const float *lse,
  //     const float *mask, const float *key_padding, const seq4j_attention_desc *desc);
  private static final MethodHandle ATTENTION_BACKWARD =
      bind("seq4j_attention_backward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);

  // int seq4j_attention_weights(float *weights, const float *q, const float *k,
  //     const float *mask, const float *key_padding, const seq4j_attention_desc *desc);
  private static final MethodHandle ATTENTION_WEIGHTS =
      bind("seq4j_attention_weights", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS);

  /** {@code seq4j_attention_forward}; lse, mask and keyPadding may be NULL. */
  public static void attentionForward(MemorySegment out, MemorySegment lse, MemorySegment q,
      MemorySegment k, MemorySegment v, MemorySegment mask, MemorySegment keyPadding,
      MemorySegment desc) {
    try {
      check((int) ATTENTION_FORWARD.invokeExact(out, lse, q, k, v, mask, keyPadding, desc));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_attention_backward}; mask and keyPadding may be NULL. */
  public static void attentionBackward(MemorySegment dq, MemorySegment dk, MemorySegment dv,
      MemorySegment dOut, MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment out,
      MemorySegment lse, MemorySegment mask, MemorySegment keyPadding, MemorySegment desc) {
    try {
      check((int) ATTENTION_BACKWARD.invokeExact(dq, dk, dv, dOut, q, k, v, out, lse, mask,
          keyPadding, desc));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_attention_weights}; mask and keyPadding may be NULL. */
  public static void attentionWeights(MemorySegment weights, MemorySegment q, MemorySegment k,
      MemorySegment mask, MemorySegment keyPadding, MemorySegment desc) {
    try {
      check((int) ATTENTION_WEIGHTS.invokeExact(weights, q, k, mask, keyPadding, desc));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- layer norm ----------------------------------------------------------------------------
  // ordinary, both: linear in rows * cols

  // int seq4j_layer_norm_forward(float *out, float *mean, float *rstd, const float *x,
  //     const float *gamma, const float *beta, int64_t rows, int64_t cols, float eps);
  private static final MethodHandle LAYER_NORM_FORWARD =
      bind("seq4j_layer_norm_forward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_FLOAT);

  // int seq4j_layer_norm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
  //     const float *x, const float *mean, const float *rstd, const float *gamma, int64_t rows,
  //     int64_t cols);
  private static final MethodHandle LAYER_NORM_BACKWARD =
      bind("seq4j_layer_norm_backward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);

  /** {@code seq4j_layer_norm_forward}; gamma and beta may be NULL. */
  public static void layerNormForward(MemorySegment out, MemorySegment mean, MemorySegment rstd,
      MemorySegment x, MemorySegment gamma, MemorySegment beta, long rows, long cols, float eps) {
    try {
      check((int) LAYER_NORM_FORWARD.invokeExact(out, mean, rstd, x, gamma, beta, rows, cols,
          eps));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_layer_norm_backward}; dgamma, dbeta and gamma may be NULL. */
  public static void layerNormBackward(MemorySegment dx, MemorySegment dgamma,
      MemorySegment dbeta, MemorySegment dout, MemorySegment x, MemorySegment mean,
      MemorySegment rstd, MemorySegment gamma, long rows, long cols) {
    try {
      check((int) LAYER_NORM_BACKWARD.invokeExact(dx, dgamma, dbeta, dout, x, mean, rstd, gamma,
          rows, cols));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- activations and embedding -------------------------------------------------------------
  // ordinary, all: linear in their sizes

  // int seq4j_activation_forward(float *out, const float *x, int64_t n, int32_t kind);
  private static final MethodHandle ACTIVATION_FORWARD =
      bind("seq4j_activation_forward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT);

  // int seq4j_activation_backward(float *dx, const float *dout, const float *x, int64_t n,
  //                               int32_t kind);
  private static final MethodHandle ACTIVATION_BACKWARD =
      bind("seq4j_activation_backward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_INT);

  // int seq4j_embedding_forward(float *out, const float *weight, const int64_t *indices,
  //                             int64_t n, int64_t vocabulary, int64_t dim);
  private static final MethodHandle EMBEDDING_FORWARD =
      bind("seq4j_embedding_forward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG, JAVA_LONG);

  // int seq4j_embedding_backward(float *dweight, const float *dout, const int64_t *indices,
  //                              int64_t n, int64_t vocabulary, int64_t dim);
  private static final MethodHandle EMBEDDING_BACKWARD =
      bind("seq4j_embedding_backward", ORDINARY, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG, JAVA_LONG);

  /** {@code seq4j_activation_forward}; kind an {@code ACTIVATION_*} code. */
  public static void activationForward(MemorySegment out, MemorySegment x, long n, int kind) {
    try {
      check((int) ACTIVATION_FORWARD.invokeExact(out, x, n, kind));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_activation_backward}; kind an {@code ACTIVATION_*} code. */
  public static void activationBackward(MemorySegment dx, MemorySegment dout, MemorySegment x,
      long n, int kind) {
    try {
      check((int) ACTIVATION_BACKWARD.invokeExact(dx, dout, x, n, kind));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_embedding_forward}: the rows of weight at indices. */
  public static void embeddingForward(MemorySegment out, MemorySegment weight, long[] indices,
      long vocabulary, long dim) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment index = call.allocateFrom(JAVA_LONG, indices);
      check((int) EMBEDDING_FORWARD.invokeExact(out, weight, index, (long) indices.length,
          vocabulary, dim));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_embedding_backward}: adds the rows of dout into dweight at indices. */
  public static void embeddingBackward(MemorySegment dweight, MemorySegment dout, long[] indices,
      long vocabulary, long dim) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment index = call.allocateFrom(JAVA_LONG, indices);
      check((int) EMBEDDING_BACKWARD.invokeExact(dweight, dout, index, (long) indices.length,
          vocabulary, dim));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  // ---- memory and deterministic mode (seq4j.h, runtime section) ------------------------------

  // int seq4j_alloc(void **block, int64_t bytes);
  // critical: one malloc, tiny (a large block is one mmap; its pages are touched later, by the
  // caller) and never starts a thread team; takes a heap array for the result
  private static final MethodHandle ALLOC =
      bind("seq4j_alloc", CRITICAL, JAVA_INT, ADDRESS, JAVA_LONG);

  // int seq4j_free(void *block);
  // critical: one free, tiny (a large block is one munmap)
  private static final MethodHandle FREE = bind("seq4j_free", CRITICAL, JAVA_INT, ADDRESS);

  // int seq4j_mark_usable(void *block, int64_t usable, int64_t capacity);
  // critical: sets AddressSanitizer's shadow bytes of one block (a no-op unless sanitized)
  private static final MethodHandle MARK_USABLE =
      bind("seq4j_mark_usable", CRITICAL, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG);

  // int seq4j_set_deterministic(int32_t on);
  // critical: stores one flag, O(1)
  private static final MethodHandle SET_DETERMINISTIC =
      bind("seq4j_set_deterministic", CRITICAL, JAVA_INT, JAVA_INT);

  // int seq4j_get_deterministic(int32_t *on);
  // critical: reads one flag, O(1); takes a heap array, which needs critical
  private static final MethodHandle GET_DETERMINISTIC =
      bind("seq4j_get_deterministic", CRITICAL, JAVA_INT, ADDRESS);

  /**
   * {@code seq4j_alloc(&block, bytes)}: the address of {@code bytes} (at least 1) of uninitialised,
   * 64-byte aligned native memory from libseq4j's allocator (the sanitizer's in a sanitized
   * build), or {@link MemorySegment#NULL} when the system has none left (status
   * SEQ4J_ERR_OUT_OF_MEMORY; the caller decides what to do, NativeMemory retries once after
   * emptying its cache). The segment has size 0: the caller gives it its size and lifetime.
   */
  public static MemorySegment alloc(long bytes) {
    long[] block = new long[1];  // void *: ADDRESS is 64 bits on every platform seq4j builds for
    try {
      int status = (int) ALLOC.invokeExact(MemorySegment.ofArray(block), bytes);
      if (status == AbiConstants.ERR_OUT_OF_MEMORY) {
        return MemorySegment.NULL;
      }
      check(status);
    } catch (Throwable t) {
      throw rethrow(t);
    }
    return MemorySegment.ofAddress(block[0]);
  }

  /** {@code seq4j_free(block)}: releases a block of {@link #alloc}; NULL is ignored. */
  public static void free(MemorySegment block) {
    try {
      check((int) FREE.invokeExact(block));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_mark_usable(block, usable, capacity)}: for AddressSanitizer's bookkeeping. */
  public static void markUsable(MemorySegment block, long usable, long capacity) {
    try {
      check((int) MARK_USABLE.invokeExact(block, usable, capacity));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_set_deterministic(on)}. */
  public static void setDeterministic(boolean on) {
    try {
      check((int) SET_DETERMINISTIC.invokeExact(on ? 1 : 0));
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** {@code seq4j_get_deterministic(&on)}. Allocation-free (a heap array, critical call). */
  public static boolean deterministic() {
    int[] result = new int[1];
    try {
      check((int) GET_DETERMINISTIC.invokeExact(MemorySegment.ofArray(result)));
    } catch (Throwable t) {
      throw rethrow(t);
    }
    return result[0] != 0;
  }

  // ---- the one place a status becomes an exception -------------------------------------------

  /**
   * Turns a native status into an exception: {@link Seq4jException} with the native message.
   *
   * @param status the value the C function returned
   */
  static void check(int status) {
    if (status != AbiConstants.OK) {
      throw new Seq4jException(status, lastError());
    }
  }

  /** Rethrows what a downcall threw: unchecked exceptions and errors pass unchanged. */
  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (t instanceof Error error) {
      throw error;
    }
    throw new IllegalStateException("unexpected checked exception from a downcall", t);
  }

  // ---- loading and linking -------------------------------------------------------------------

  /** What the loader loaded. */
  public static NativeLoader.Loaded loaded() {
    if (LOADED instanceof NativeLoader.Loaded loaded) {
      return loaded;
    }
    throw newLoadError();
  }

  private static Object loadOnce() {
    if (!NativeAccess.enabled()) {
      System.getLogger("org.seq4j")
          .log(System.Logger.Level.WARNING,
              "native access is not enabled for seq4j; add " + NativeAccess.flag()
                  + " to the java command line (future JDKs will refuse to run it without)");
    }
    try {
      return NativeLoader.load();
    } catch (UnsatisfiedLinkError e) {
      return e;
    }
  }

  private static UnsatisfiedLinkError newLoadError() {
    UnsatisfiedLinkError original = (UnsatisfiedLinkError) LOADED;
    UnsatisfiedLinkError error = new UnsatisfiedLinkError(original.getMessage());
    error.initCause(original.getCause());
    return error;
  }

  private static MethodHandle bind(
      String name, boolean critical, MemoryLayout result, MemoryLayout... arguments) {
    FunctionDescriptor descriptor = FunctionDescriptor.of(result, arguments);
    if (LOADED instanceof NativeLoader.Loaded loaded) {
      Optional<MemorySegment> symbol = loaded.lookup().find(name);
      if (symbol.isEmpty()) {
        throw new IllegalStateException(
            "libseq4j in " + loaded.folder() + " lacks " + name
                + ": it does not match this seq4j JAR");
      }
      return critical
          ? LINKER.downcallHandle(symbol.get(), descriptor, Linker.Option.critical(true))
          : LINKER.downcallHandle(symbol.get(), descriptor);
    }
    MethodType type = descriptor.toMethodType();
    MethodHandle thrower =
        MethodHandles.foldArguments(
            MethodHandles.throwException(type.returnType(), UnsatisfiedLinkError.class),
            NEW_LOAD_ERROR);
    return MethodHandles.dropArguments(thrower, 0, type.parameterList());
  }

  private static MethodHandle newLoadErrorHandle() {
    try {
      return MethodHandles.lookup()
          .findStatic(NativeBindings.class, "newLoadError",
              MethodType.methodType(UnsatisfiedLinkError.class));
    } catch (ReflectiveOperationException e) {
      throw new ExceptionInInitializerError(e);
    }
  }
}
