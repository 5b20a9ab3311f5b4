package org.seq4j.train;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.Objects;
import org.seq4j.nn.Parameter;

/**
 * Checks of gradients between {@code backward} and the optimizer's step: an opt-in guard that
 * stops training on the first NaN or infinity, naming where it is, before it spreads into the
 * weights and the optimizer's moments.
 */
public final class GradientChecks {
  private GradientChecks() {}

  /**
   * Throws on the first non-finite gradient element, parameters in order.
   *
   * @param parameters the parameters, such as {@code model.parameters()} (dotted names)
   * @throws NonFiniteGradientException naming the parameter, the element's index (flat and per
   *     dimension) and its value
   */
  public static void requireFinite(Iterable<Parameter> parameters) {
    Objects.requireNonNull(parameters, "parameters");
    for (Parameter p : parameters) {
      check(p.name(), p);
    }
  }

  /** {@link #requireFinite(Iterable)} over named parameters ({@code model.namedParameters()}). */
  public static void requireFinite(Map<String, Parameter> parameters) {
    Objects.requireNonNull(parameters, "parameters");
    parameters.forEach(GradientChecks::check);
  }

  private static void check(String name, Parameter p) {
    ParameterChecks.usableGrad(p);
    MemorySegment grad = p.grad().segment();
    long n = p.grad().size();
    for (long i = 0; i < n; i++) {
      float v = grad.getAtIndex(ValueLayout.JAVA_FLOAT, i);
      if (!Float.isFinite(v)) {
        throw new NonFiniteGradientException("the gradient of " + name + " is not finite:"
            + " element " + i + " " + multiIndex(p.shape().dims(), i) + " is " + v + " (shape "
            + p.shape() + ")", name, i, v);
      }
    }
  }

  private static String multiIndex(long[] dims, long flat) {
    long[] index = new long[dims.length];
    for (int d = dims.length - 1; d >= 0; d--) {
      index[d] = flat % dims[d];
      flat /= dims[d];
    }
    return java.util.Arrays.toString(index);
  }
}
