package org.seq4j.train;

/**
 * A gradient holds NaN or an infinity: thrown by {@link GradientChecks#requireFinite} (and by a
 * {@link Trainer} with the guard on) before the optimizer steps, naming the parameter and the
 * first bad element.
 */
public final class NonFiniteGradientException extends ArithmeticException {
  private static final long serialVersionUID = 1L;

  private final String parameter;
  private final long index;
  private final float value;

  NonFiniteGradientException(String message, String parameter, long index, float value) {
    super(message);
    this.parameter = parameter;
    this.index = index;
    this.value = value;
  }

  /** The dotted name of the parameter whose gradient is not finite. */
  public String parameter() {
    return parameter;
  }

  /** The row-major (flat) index of its first non-finite element. */
  public long index() {
    return index;
  }

  /** That element's value: NaN or an infinity. */
  public float value() {
    return value;
  }
}
