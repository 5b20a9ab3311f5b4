package org.seq4j;

/**
 * A failure reported by seq4j's native code, carrying the native status and its message. Argument
 * errors that Java can detect are reported before any native call as {@link
 * IllegalArgumentException} or {@link IllegalStateException}; this exception means native code
 * itself refused or failed.
 */
public final class Seq4jException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The status codes of {@code native/include/seq4j.h}. */
  public enum Status {
    /** A size, pointer or option the caller got wrong (SEQ4J_ERR_INVALID_ARGUMENT). */
    INVALID_ARGUMENT(1),
    /** Valid, but this build or backend cannot do it (SEQ4J_ERR_UNSUPPORTED). */
    UNSUPPORTED(2),
    /** A native allocation failed (SEQ4J_ERR_OUT_OF_MEMORY). */
    OUT_OF_MEMORY(3),
    /** oneDNN, OpenBLAS or CUDA reported a failure (SEQ4J_ERR_BACKEND). */
    BACKEND(4),
    /** A bug in seq4j (SEQ4J_ERR_INTERNAL). */
    INTERNAL(5),
    /** A code this version of the Java side does not know. */
    UNKNOWN(-1);

    private final int code;

    Status(int code) {
      this.code = code;
    }

    /** The numeric status as returned by the C function. */
    public int code() {
      return code;
    }

    /** The status for a native code, {@link #UNKNOWN} if it has no name here. */
    public static Status of(int code) {
      for (Status status : values()) {
        if (status.code == code) {
          return status;
        }
      }
      return UNKNOWN;
    }
  }

  private final Status status;
  private final int code;

  /**
   * Creates the exception for a failed native call.
   *
   * @param code the native status code
   * @param message the native message (it names the C function)
   */
  public Seq4jException(int code, String message) {
    super(message + " [status " + Status.of(code) + " (" + code + ")]");
    this.code = code;
    this.status = Status.of(code);
  }

  /** The status, as a name. */
  public Status status() {
    return status;
  }

  /** The raw native status code. */
  public int code() {
    return code;
  }
}
