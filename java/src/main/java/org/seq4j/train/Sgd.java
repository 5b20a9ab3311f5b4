package org.seq4j.train;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.NativeBindings;
import org.seq4j.nn.Parameter;

/**
 * Stochastic gradient descent with PyTorch's rule: {@code g = grad + weightDecay·p}; with momentum
 * μ, {@code v = g} on the first step and {@code μ·v + (1 − dampening)·g} after, then {@code g = v}
 * (or {@code g + μ·v} with Nesterov); finally {@code p −= lr·g}.
 *
 * <pre>{@code
 * try (Sgd sgd = Sgd.builder(lstm.parameters()).learningRate(0.1).momentum(0.9).build()) { ... }
 * }</pre>
 */
public final class Sgd implements Optimizer {
  private final List<Parameter> parameters;
  private final double momentum;
  private final double dampening;
  private final double weightDecay;
  private final boolean nesterov;
  private final Arena arena;
  private final CallGuard guard = new CallGuard("Sgd", "optimizer");
  private final Tensor[] velocities;
  private double learningRate;
  private long steps;

  private Sgd(Builder b) {
    this.parameters = ParameterChecks.forOptimizer(b.parameters);
    this.learningRate = b.learningRate;
    this.momentum = b.momentum;
    this.dampening = b.dampening;
    this.weightDecay = b.weightDecay;
    this.nesterov = b.nesterov;
    this.velocities = new Tensor[parameters.size()];
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation frees the buffers before it
      if (momentum != 0) {
        for (int i = 0; i < velocities.length; i++) {
          velocities[i] = Tensor.zeros(arena, parameters.get(i).shape().dims());
        }
      }
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /** A builder for SGD over these parameters (learning rate 0.01, no momentum, no decay). */
  public static Builder builder(List<Parameter> parameters) {
    return new Builder(parameters);
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
    boolean first = steps == 0;
    for (int i = 0; i < velocities.length; i++) {
      Parameter p = parameters.get(i);
      MemorySegment velocity = velocities[i] == null ? MemorySegment.NULL : velocities[i].segment();
      NativeBindings.sgdStep(p.data().segment(), velocity, p.grad().segment(), p.data().size(),
          (float) learningRate, (float) momentum, (float) dampening, (float) weightDecay,
          nesterov, first);
      p.markChanged();
    }
    steps++;
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
    this.learningRate = Builder.requireRate(learningRate);
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
    for (int i = 0; i < velocities.length; i++) {
      if (velocities[i] != null) {
        state.put("momentum_buffer." + parameters.get(i).name(), velocities[i]);
      }
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

  /** Builds an {@link Sgd}. */
  public static final class Builder {
    private final List<Parameter> parameters;
    private double learningRate = 0.01;
    private double momentum;
    private double dampening;
    private double weightDecay;
    private boolean nesterov;

    private Builder(List<Parameter> parameters) {
      if (parameters == null || parameters.isEmpty()) {
        throw new IllegalArgumentException("parameters: expected at least one parameter");
      }
      this.parameters = parameters;
    }

    static double requireRate(double learningRate) {
      if (!(learningRate >= 0) || Double.isInfinite(learningRate)) {
        throw new IllegalArgumentException(
            "learningRate: expected a finite value >= 0, got " + learningRate);
      }
      return learningRate;
    }

    /** The learning rate (default 0.01). */
    public Builder learningRate(double learningRate) {
      this.learningRate = requireRate(learningRate);
      return this;
    }

    /** Momentum μ in [0, 1) (default 0). */
    public Builder momentum(double momentum) {
      if (!(momentum >= 0 && momentum < 1)) {
        throw new IllegalArgumentException("momentum: expected 0 <= μ < 1, got " + momentum);
      }
      this.momentum = momentum;
      return this;
    }

    /** Dampening of the momentum in [0, 1] (default 0). */
    public Builder dampening(double dampening) {
      if (!(dampening >= 0 && dampening <= 1)) {
        throw new IllegalArgumentException("dampening: expected 0 <= d <= 1, got " + dampening);
      }
      this.dampening = dampening;
      return this;
    }

    /** L2 weight decay added to the gradient (default 0). */
    public Builder weightDecay(double weightDecay) {
      if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
        throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got "
            + weightDecay);
      }
      this.weightDecay = weightDecay;
      return this;
    }

    /** Nesterov momentum (needs momentum > 0 and no dampening, as in PyTorch). */
    public Builder nesterov(boolean nesterov) {
      this.nesterov = nesterov;
      return this;
    }

    /** The optimizer. */
    public Sgd build() {
      if (nesterov && (momentum <= 0 || dampening != 0)) {
        throw new IllegalArgumentException("nesterov: needs momentum > 0 and dampening 0, got"
            + " momentum " + momentum + " and dampening " + dampening);
      }
      return new Sgd(this);
    }
  }
}
