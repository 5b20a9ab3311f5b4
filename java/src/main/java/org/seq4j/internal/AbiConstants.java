package org.seq4j.internal;

import org.seq4j.Backend;
import org.seq4j.KernelIsa;

/**
 * The {@code #define} constants of {@code native/include/seq4j.h}, mirrored once: the rest of
 * seq4j names these, never the numbers. {@code AbiLayoutsTest} checks them against the C side's
 * {@code static_assert}s in {@code native/src/core/abi_layouts.cpp}.
 */
public final class AbiConstants {
  private AbiConstants() {}

  // status codes (SEQ4J_OK, SEQ4J_ERR_*); Seq4jException.Status names the same numbers
  public static final int OK = 0;
  public static final int ERR_INVALID_ARGUMENT = 1;
  public static final int ERR_UNSUPPORTED = 2;
  public static final int ERR_OUT_OF_MEMORY = 3;
  public static final int ERR_BACKEND = 4;
  public static final int ERR_INTERNAL = 5;

  // SEQ4J_BACKEND_*
  public static final int BACKEND_AUTO = 0;
  public static final int BACKEND_ONEDNN = 1;
  public static final int BACKEND_BLAS = 2;

  // SEQ4J_CELL_*
  public static final int CELL_RNN_TANH = 0;
  public static final int CELL_RNN_RELU = 1;
  public static final int CELL_LSTM = 2;
  public static final int CELL_GRU = 3;

  // SEQ4J_MASK_*
  public static final int MASK_NONE = 0;
  public static final int MASK_ADDITIVE = 1;
  public static final int MASK_BOOLEAN = 2;

  // SEQ4J_ACTIVATION_*
  public static final int ACTIVATION_RELU = 0;
  public static final int ACTIVATION_GELU = 1;
  public static final int ACTIVATION_GELU_TANH = 2;

  // the storage argument of seq4j_rnn_layer_set_step_weights
  public static final int STEP_WEIGHTS_F32 = 0;
  public static final int STEP_WEIGHTS_BF16 = 1;

  // the isa argument of seq4j_select_kernels (the header names the numbers in its comment)
  public static final int ISA_BEST = 0;
  public static final int ISA_BASELINE = 1;
  public static final int ISA_AVX2 = 2;
  public static final int ISA_AVX512 = 3;

  /** The {@code SEQ4J_BACKEND_*} code of a backend. */
  public static int backend(Backend backend) {
    return switch (backend) {
      case AUTO -> BACKEND_AUTO;
      case ONEDNN -> BACKEND_ONEDNN;
      case BLAS -> BACKEND_BLAS;
    };
  }

  /** The backend of a {@code SEQ4J_BACKEND_*} code that a call resolved to (never AUTO). */
  public static Backend resolvedBackend(int code) {
    return switch (code) {
      case BACKEND_ONEDNN -> Backend.ONEDNN;
      case BACKEND_BLAS -> Backend.BLAS;
      default -> throw new IllegalStateException("native code resolved backend " + code);
    };
  }

  /** The {@code isa} code of {@code seq4j_select_kernels} for a kernel set. */
  public static int isa(KernelIsa isa) {
    return switch (isa) {
      case BEST -> ISA_BEST;
      case BASELINE -> ISA_BASELINE;
      case AVX2 -> ISA_AVX2;
      case AVX512 -> ISA_AVX512;
    };
  }

  /** The kernel set of a code {@code seq4j_select_kernels} reported as the previous one. */
  public static KernelIsa isa(int code) {
    return switch (code) {
      case ISA_AVX512 -> KernelIsa.AVX512;
      case ISA_AVX2 -> KernelIsa.AVX2;
      default -> KernelIsa.BASELINE;
    };
  }
}
