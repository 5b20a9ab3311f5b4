package org.seq4j.internal;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;
import org.seq4j.Seq4jException;

/**
 * One {@link MethodHandle} per C function of {@code seq4j.h}, linked once when this class
 * initialises (which loads the libraries) and called with {@code invokeExact}.
 *
 * <p>{@code critical(true)} is used only for calls that are O(1) (they may not block a GC and may
 * take heap arrays); everything that may run long is an ordinary downcall. If the libraries could
 * not be loaded, every handle throws the loader's {@link UnsatisfiedLinkError}, with the full list
 * of attempts, at each call: the class itself always initialises.
 */
public final class NativeBindings {
  private static final Linker LINKER = Linker.nativeLinker();
  private static final MethodHandle NEW_LOAD_ERROR = newLoadErrorHandle();
  private static final Object LOADED = loadOnce();

  // ---- runtime
  public static final MethodHandle LAST_ERROR = bind("seq4j_last_error", true, ADDRESS);
  public static final MethodHandle VERSION = bind("seq4j_version", true, ADDRESS);
  public static final MethodHandle NOOP = bind("seq4j_noop", true, JAVA_INT);
  /** The same no-op as an ordinary (non-critical) downcall: for the downcall-cost benchmark. */
  public static final MethodHandle NOOP_NON_CRITICAL = bind("seq4j_noop", false, JAVA_INT);
  public static final MethodHandle SET_THREADS =
      bind("seq4j_set_threads", true, JAVA_INT, JAVA_LONG);
  public static final MethodHandle GET_THREADS =
      bind("seq4j_get_threads", true, JAVA_INT, ADDRESS);
  public static final MethodHandle RUNTIME_INFO =
      bind("seq4j_runtime_info", false, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS);

  // ---- linear algebra
  public static final MethodHandle MATMUL =
      bind("seq4j_matmul", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
          JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT);
  public static final MethodHandle ADD =
      bind("seq4j_add", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);
  public static final MethodHandle SCALE =
      bind("seq4j_scale", false, JAVA_INT, ADDRESS, ADDRESS, JAVA_FLOAT, JAVA_LONG);
  public static final MethodHandle AXPY =
      bind("seq4j_axpy", false, JAVA_INT, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_LONG);
  public static final MethodHandle FILL =
      bind("seq4j_fill", false, JAVA_INT, ADDRESS, JAVA_FLOAT, JAVA_LONG);

  public static final MethodHandle SWAP_LEADING_AXES =
      bind("seq4j_swap_leading_axes", false, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
          JAVA_LONG);
  public static final MethodHandle DROPOUT =
      bind("seq4j_dropout", false, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_FLOAT, JAVA_LONG);

  // ---- recurrent layers
  public static final MethodHandle RNN_LAYER_CREATE =
      bind("seq4j_rnn_layer_create", false, JAVA_INT, ADDRESS, ADDRESS);
  public static final MethodHandle RNN_LAYER_DESTROY =
      bind("seq4j_rnn_layer_destroy", false, JAVA_INT, ADDRESS);
  public static final MethodHandle RNN_LAYER_WORKSPACE_SIZE =
      bind("seq4j_rnn_layer_workspace_size", false, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS,
          JAVA_LONG, JAVA_LONG, ADDRESS);
  public static final MethodHandle RNN_LAYER_BACKEND =
      bind("seq4j_rnn_layer_backend", false, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
          JAVA_INT, ADDRESS);
  // critical: the streaming step is short, allocation-free and never calls back into Java
  public static final MethodHandle RNN_STEP =
      bind("seq4j_rnn_step", true, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, ADDRESS,
          ADDRESS, ADDRESS, JAVA_LONG);
  public static final MethodHandle SELECT_KERNELS =
      bind("seq4j_select_kernels", false, JAVA_INT, JAVA_INT, ADDRESS);
  public static final MethodHandle RNN_LAYER_FORWARD =
      bind("seq4j_rnn_layer_forward", false, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG);
  public static final MethodHandle RNN_LAYER_BACKWARD =
      bind("seq4j_rnn_layer_backward", false, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);

  // ---- losses, optimizers, clipping
  public static final MethodHandle MSE_LOSS =
      bind("seq4j_mse_loss", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG);
  public static final MethodHandle CROSS_ENTROPY_LOSS =
      bind("seq4j_cross_entropy_loss", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_FLOAT);
  public static final MethodHandle BCE_WITH_LOGITS_LOSS =
      bind("seq4j_bce_with_logits_loss", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          JAVA_LONG);
  public static final MethodHandle SGD_STEP =
      bind("seq4j_sgd_step", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_FLOAT,
          JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_INT);
  public static final MethodHandle ADAM_STEP =
      bind("seq4j_adam_step", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_LONG);
  public static final MethodHandle SUM_SQUARES =
      bind("seq4j_sum_squares", false, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG);
  public static final MethodHandle CLAMP =
      bind("seq4j_clamp", false, JAVA_INT, ADDRESS, JAVA_FLOAT, JAVA_LONG);

  // ---- attention
  public static final MethodHandle ATTENTION_FORWARD =
      bind("seq4j_attention_forward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS);
  public static final MethodHandle ATTENTION_BACKWARD =
      bind("seq4j_attention_backward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
  public static final MethodHandle ATTENTION_WEIGHTS =
      bind("seq4j_attention_weights", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS);

  // ---- layer norm, activations, embedding
  public static final MethodHandle LAYER_NORM_FORWARD =
      bind("seq4j_layer_norm_forward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_FLOAT);
  public static final MethodHandle LAYER_NORM_BACKWARD =
      bind("seq4j_layer_norm_backward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
          ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG);
  public static final MethodHandle ACTIVATION_FORWARD =
      bind("seq4j_activation_forward", false, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT);
  public static final MethodHandle ACTIVATION_BACKWARD =
      bind("seq4j_activation_backward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_INT);
  public static final MethodHandle EMBEDDING_FORWARD =
      bind("seq4j_embedding_forward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG, JAVA_LONG);
  public static final MethodHandle EMBEDDING_BACKWARD =
      bind("seq4j_embedding_backward", false, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
          JAVA_LONG, JAVA_LONG);

  /** The address of {@code seq4j_rnn_layer_destroy}, for arena cleanup actions. */
  public static MemorySegment symbol(String name) {
    return loaded().lookup().find(name).orElseThrow();
  }

  private NativeBindings() {}

  /** What the loader loaded. */
  public static NativeLoader.Loaded loaded() {
    if (LOADED instanceof NativeLoader.Loaded loaded) {
      return loaded;
    }
    throw newLoadError();
  }

  /**
   * Turns a native status into an exception: {@link Seq4jException} with the native message.
   *
   * @param status the value the C function returned
   */
  public static void check(int status) {
    if (status != 0) {
      throw new Seq4jException(status, lastError());
    }
  }

  /** The calling thread's last native error message. */
  public static String lastError() {
    try {
      MemorySegment text = (MemorySegment) LAST_ERROR.invokeExact();
      return text.reinterpret(Long.MAX_VALUE).getString(0);
    } catch (Throwable t) {
      throw rethrow(t);
    }
  }

  /** Rethrows what a downcall threw: unchecked exceptions and errors pass unchanged. */
  public static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException runtime) {
      throw runtime;
    }
    if (t instanceof Error error) {
      throw error;
    }
    throw new IllegalStateException("unexpected checked exception from a downcall", t);
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
      String name, boolean critical, java.lang.foreign.MemoryLayout result,
      java.lang.foreign.MemoryLayout... arguments) {
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
