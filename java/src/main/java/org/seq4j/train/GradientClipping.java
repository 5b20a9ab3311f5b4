package org.seq4j.train;

import java.util.Collection;
import org.seq4j.TensorOps;
import org.seq4j.internal.NativeBindings;
import org.seq4j.nn.Parameter;

/**
 * Gradient clipping against exploding gradients, as PyTorch's {@code clip_grad_norm_} and {@code
 * clip_grad_value_}: call it between {@code backward} and the optimizer's {@code step}.
 */
public final class GradientClipping {
  private GradientClipping() {}

  /**
   * The global L2 norm of every gradient together, accumulated in double precision.
   *
   * @return {@code sqrt(Σ_p Σ_i grad_p[i]²)}
   */
  public static double globalNorm(Collection<Parameter> parameters) {
    if (parameters == null) {
      throw new NullPointerException("parameters");
    }
    for (Parameter p : parameters) {
      ParameterChecks.usableGrad(p);
    }
    double sum = 0;
    for (Parameter p : parameters) {
      sum += NativeBindings.sumSquares(p.grad().segment(), p.grad().size());
    }
    return Math.sqrt(sum);
  }

  /**
   * Scales every gradient by {@code maxNorm / (norm + 1e-6)} when the global norm exceeds
   * {@code maxNorm}, and leaves them alone otherwise.
   *
   * @return the global norm before clipping, to log or plot
   */
  public static double clipByGlobalNorm(Collection<Parameter> parameters, double maxNorm) {
    if (!(maxNorm > 0) || Double.isInfinite(maxNorm)) {
      throw new IllegalArgumentException("maxNorm: expected a finite value > 0, got " + maxNorm);
    }
    double norm = globalNorm(parameters);
    for (Parameter p : parameters) {
      ParameterChecks.writableGrad(p);
    }
    double factor = maxNorm / (norm + 1e-6);
    if (factor < 1) {
      for (Parameter p : parameters) {
        TensorOps.scale(p.grad(), (float) factor, p.grad());
      }
    }
    return norm;
  }

  /** Clamps every gradient element into {@code [-clip, clip]}. */
  public static void clipByValue(Collection<Parameter> parameters, double clip) {
    if (!(clip >= 0) || Double.isInfinite(clip)) {
      throw new IllegalArgumentException("clip: expected a finite value >= 0, got " + clip);
    }
    for (Parameter p : parameters) {
      ParameterChecks.writableGrad(p);
    }
    for (Parameter p : parameters) {
      NativeBindings.clamp(p.grad().segment(), (float) clip, p.grad().size());
    }
  }
}
