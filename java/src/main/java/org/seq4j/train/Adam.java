package org.seq4j.train;

import java.lang.foreign.Arena;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.NativeBindings;
import org.seq4j.nn.Parameter;

/**
 * Adam (Kingma and Ba) with PyTorch's rule, and AdamW (Loshchilov and Hutter): with decoupled
 * weight decay the parameters shrink by {@code 1 − lr·weightDecay} each step instead of the decay
 * being added to the gradient.
 *
 * <pre>{@code
 * try (Adam adamW = Adam.adamW(model.parameters()).learningRate(3e-4).build()) { ... }
 * }</pre>
 */
public final class Adam implements Optimizer {
  private final List<Parameter> parameters;
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;
  private final boolean decoupled;
  private final Arena arena;
  private final CallGuard guard = new CallGuard("Adam", "optimizer");
  private final Tensor[] firstMoments;
  private final Tensor[] secondMoments;
  private double learningRate;
  private long steps;

  private Adam(Builder b) {
    this.parameters = ParameterChecks.forOptimizer(b.parameters);
    this.learningRate = b.learningRate;
    this.beta1 = b.beta1;
    this.beta2 = b.beta2;
    this.eps = b.eps;
    this.weightDecay = b.weightDecay;
    this.decoupled = b.decoupled;
    this.firstMoments = new Tensor[parameters.size()];
    this.secondMoments = new Tensor[parameters.size()];
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation frees the moments before it
      for (int i = 0; i < parameters.size(); i++) {
        firstMoments[i] = Tensor.zeros(arena, parameters.get(i).shape().dims());
        secondMoments[i] = Tensor.zeros(arena, parameters.get(i).shape().dims());
      }
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /** Adam over these parameters: learning rate 0.001, betas (0.9, 0.999), eps 1e-8, no decay. */
  public static Builder builder(List<Parameter> parameters) {
    return new Builder(parameters, false, 0);
  }

  /** AdamW over these parameters: as {@link #builder} with decoupled weight decay 0.01. */
  public static Builder adamW(List<Parameter> parameters) {
    return new Builder(parameters, true, 0.01);
  }

  @Override
  public void step() {
    guard.enter();
    try {
      stepUnguarded();
    } finally {
      guard.exit();
    }
  }

  private void stepUnguarded() {
    for (Parameter p : parameters) {
      ParameterChecks.beforeStep(p); // all before any, so a failure changes nothing
    }
    steps++;
    for (int i = 0; i < parameters.size(); i++) {
      Parameter p = parameters.get(i);
      NativeBindings.adamStep(p.data().segment(), firstMoments[i].segment(),
          secondMoments[i].segment(), p.grad().segment(), p.data().size(), (float) learningRate,
          (float) beta1, (float) beta2, (float) eps, (float) weightDecay, decoupled, steps);
      p.markChanged();
    }
  }

  @Override
  public void zeroGrad() {
    for (Parameter p : parameters) {
      p.zeroGrad();
    }
  }

  @Override
  public double learningRate() {
    return learningRate;
  }

  @Override
  public void setLearningRate(double learningRate) {
    this.learningRate = Sgd.Builder.requireRate(learningRate);
  }

  @Override
  public long steps() {
    return steps;
  }

  @Override
  public List<Parameter> parameters() {
    return parameters;
  }

  @Override
  public java.util.Map<String, Tensor> state() {
    java.util.Map<String, Tensor> state = new java.util.LinkedHashMap<>();
    for (int i = 0; i < parameters.size(); i++) {
      state.put("exp_avg." + parameters.get(i).name(), firstMoments[i]);
      state.put("exp_avg_sq." + parameters.get(i).name(), secondMoments[i]);
    }
    return state;
  }

  @Override
  public void restoreSteps(long steps) {
    if (steps < 0) {
      throw new IllegalArgumentException("steps: expected >= 0, got " + steps);
    }
    this.steps = steps;
  }

  /**
   * Frees the optimizer's state, after waiting for a step in flight on another thread; steps that
   * start later throw {@link IllegalStateException}. Closing again does nothing.
   */
  @Override
  public void close() {
    guard.close(arena::close);
  }

  /** Builds an {@link Adam}. */
  public static final class Builder {
    private final List<Parameter> parameters;
    private double learningRate = 1e-3;
    private double beta1 = 0.9;
    private double beta2 = 0.999;
    private double eps = 1e-8;
    private double weightDecay;
    private final boolean decoupled;

    private Builder(List<Parameter> parameters, boolean decoupled, double weightDecay) {
      if (parameters == null || parameters.isEmpty()) {
        throw new IllegalArgumentException("parameters: expected at least one parameter");
      }
      this.parameters = parameters;
      this.decoupled = decoupled;
      this.weightDecay = weightDecay;
    }

    /** The learning rate (default 0.001). */
    public Builder learningRate(double learningRate) {
      this.learningRate = Sgd.Builder.requireRate(learningRate);
      return this;
    }

    /** The decay rates of the moment estimates, each in [0, 1) (default 0.9, 0.999). */
    public Builder betas(double beta1, double beta2) {
      if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
        throw new IllegalArgumentException(
            "beta1, beta2: expected values in [0, 1), got " + beta1 + " and " + beta2);
      }
      this.beta1 = beta1;
      this.beta2 = beta2;
      return this;
    }

    /** The term added to the denominator (default 1e-8). */
    public Builder eps(double eps) {
      if (!(eps > 0) || Double.isInfinite(eps)) {
        throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
      }
      this.eps = eps;
      return this;
    }

    /** Weight decay: added to the gradient (Adam) or decoupled (AdamW). */
    public Builder weightDecay(double weightDecay) {
      if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
        throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got "
            + weightDecay);
      }
      this.weightDecay = weightDecay;
      return this;
    }

    /** The optimizer. */
    public Adam build() {
      return new Adam(this);
    }
  }
}
