package org.seq4j.train;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.NativeBindings;
import org.seq4j.nn.Parameter;

/**
 * Stochastic gradient descent with PyTorch's rule: {@code g = grad + weightDecay·p}; with momentum
 * μ, {@code v = g} on the first step and {@code μ·v + (1 − dampening)·g} after, then {@code g = v}
 * (or {@code g + μ·v} with Nesterov); finally {@code p −= lr·g}. Each {@link ParameterGroup} has
 * its own options; the builder's settings are the defaults of every group, as the keyword
 * arguments of PyTorch's {@code torch.optim.SGD}.
 *
 * <pre>{@code
 * try (Sgd sgd = Sgd.builder(lstm.parameters()).learningRate(0.1).momentum(0.9).build()) { ... }
 * try (Sgd sgd = Sgd.builder().momentum(0.9)
 *     .group(encoder.parameters(), g -> g.learningRate(0.01))
 *     .group(head.parameters(), g -> g.learningRate(0.1).weightDecay(0)).build()) { ... }
 * }</pre>
 */
public final class Sgd implements Optimizer {
  private final List<ParameterGroup> groups;
  private final Options[] options; // per group
  private final List<Parameter> parameters;
  private final int[] groupOf; // per parameter
  private final Arena arena;
  private final CallGuard guard = new CallGuard("Sgd", "optimizer");
  private final Tensor[] velocities;
  private long steps;

  private Sgd(List<Parameter> all, List<ParameterGroup> groups, Options[] options) {
    this.parameters = ParameterChecks.forOptimizer(all);
    this.groups = List.copyOf(groups);
    this.options = options;
    this.groupOf = new int[parameters.size()];
    int index = 0;
    for (int g = 0; g < groups.size(); g++) {
      for (int i = 0; i < groups.get(g).parameters().size(); i++) {
        groupOf[index++] = g;
      }
    }
    this.velocities = new Tensor[parameters.size()];
    this.arena = Arena.ofShared();
    try { // all or nothing: a failed allocation frees the buffers before it
      for (int i = 0; i < velocities.length; i++) {
        if (options[groupOf[i]].momentum != 0) {
          velocities[i] = Tensor.zeros(arena, parameters.get(i).shape().dims());
        }
      }
    } catch (RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /**
   * A builder for SGD over these parameters as one group (learning rate 0.01, no momentum, no
   * decay); {@link Builder#group} adds more groups.
   */
  public static Builder builder(List<Parameter> parameters) {
    if (parameters == null || parameters.isEmpty()) {
      throw new IllegalArgumentException("parameters: expected at least one parameter");
    }
    return new Builder().group(parameters);
  }

  /** A builder with no group yet: add them with {@link Builder#group}. */
  public static Builder builder() {
    return new Builder();
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
      Options o = options[groupOf[i]];
      double learningRate = groups.get(groupOf[i]).learningRate();
      MemorySegment velocity = velocities[i] == null ? MemorySegment.NULL : velocities[i].segment();
      NativeBindings.sgdStep(p.data().segment(), velocity, p.grad().segment(), p.data().size(),
          (float) learningRate, (float) o.momentum, (float) o.dampening, (float) o.weightDecay,
          o.nesterov, first);
      p.markChanged();
    }
    steps++;
  }

  @Override
  public List<ParameterGroup> groups() {
    return groups;
  }

  @Override
  public void zeroGrad() {
    for (Parameter p : parameters) {
      p.zeroGrad();
    }
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
  public Map<String, Tensor> state() {
    Map<String, Tensor> state = new LinkedHashMap<>();
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

  /** The options of one group (and the defaults of every group): PyTorch's SGD arguments. */
  public static final class Options {
    private double learningRate = 0.01;
    private double momentum;
    private double dampening;
    private double weightDecay;
    private boolean nesterov;

    private Options() {}

    private Options copy() {
      Options o = new Options();
      o.learningRate = learningRate;
      o.momentum = momentum;
      o.dampening = dampening;
      o.weightDecay = weightDecay;
      o.nesterov = nesterov;
      return o;
    }

    /** The learning rate (default 0.01). */
    public Options learningRate(double learningRate) {
      this.learningRate = ParameterGroup.requireRate(learningRate, "learningRate");
      return this;
    }

    /** Momentum μ in [0, 1) (default 0). */
    public Options momentum(double momentum) {
      if (!(momentum >= 0 && momentum < 1)) {
        throw new IllegalArgumentException("momentum: expected 0 <= μ < 1, got " + momentum);
      }
      this.momentum = momentum;
      return this;
    }

    /** Dampening of the momentum in [0, 1] (default 0). */
    public Options dampening(double dampening) {
      if (!(dampening >= 0 && dampening <= 1)) {
        throw new IllegalArgumentException("dampening: expected 0 <= d <= 1, got " + dampening);
      }
      this.dampening = dampening;
      return this;
    }

    /** L2 weight decay added to the gradient (default 0). */
    public Options weightDecay(double weightDecay) {
      if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
        throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got "
            + weightDecay);
      }
      this.weightDecay = weightDecay;
      return this;
    }

    /** Nesterov momentum (needs momentum > 0 and no dampening, as in PyTorch). */
    public Options nesterov(boolean nesterov) {
      this.nesterov = nesterov;
      return this;
    }

    private void check() {
      if (nesterov && (momentum <= 0 || dampening != 0)) {
        throw new IllegalArgumentException("nesterov: needs momentum > 0 and dampening 0, got"
            + " momentum " + momentum + " and dampening " + dampening);
      }
    }

    private Map<String, Object> asMap() {
      return Map.of("momentum", momentum, "dampening", dampening, "weight_decay", weightDecay,
          "nesterov", nesterov);
    }
  }

  /**
   * Builds an {@link Sgd}. Its setters give the defaults of every group; a group's own settings
   * ({@link #group(List, Consumer)}) override them, whatever the order of the calls.
   */
  public static final class Builder {
    private final Options defaults = new Options();
    private final List<List<Parameter>> groupParameters = new ArrayList<>();
    private final List<Consumer<Options>> groupOptions = new ArrayList<>();

    private Builder() {}

    static double requireRate(double learningRate) {
      return ParameterGroup.requireRate(learningRate, "learningRate");
    }

    /** Adds a group of parameters with the default options. */
    public Builder group(List<Parameter> parameters) {
      return group(parameters, o -> { });
    }

    /**
     * Adds a group of parameters whose options {@code options} sets, starting from the defaults:
     * {@code group(head.parameters(), g -> g.learningRate(0.1).momentum(0))}.
     */
    public Builder group(List<Parameter> parameters, Consumer<Options> options) {
      Objects.requireNonNull(options, "options");
      if (parameters == null || parameters.isEmpty()) {
        throw new IllegalArgumentException("parameters: expected at least one parameter in group "
            + groupParameters.size());
      }
      groupParameters.add(List.copyOf(parameters));
      groupOptions.add(options);
      return this;
    }

    /** The default learning rate (0.01). */
    public Builder learningRate(double learningRate) {
      defaults.learningRate(learningRate);
      return this;
    }

    /** The default momentum μ in [0, 1) (0). */
    public Builder momentum(double momentum) {
      defaults.momentum(momentum);
      return this;
    }

    /** The default dampening of the momentum in [0, 1] (0). */
    public Builder dampening(double dampening) {
      defaults.dampening(dampening);
      return this;
    }

    /** The default L2 weight decay added to the gradient (0). */
    public Builder weightDecay(double weightDecay) {
      defaults.weightDecay(weightDecay);
      return this;
    }

    /** Nesterov momentum by default (needs momentum > 0 and no dampening, as in PyTorch). */
    public Builder nesterov(boolean nesterov) {
      defaults.nesterov(nesterov);
      return this;
    }

    /**
     * The optimizer.
     *
     * @throws IllegalArgumentException if there is no group, a group's options are inconsistent,
     *     or a parameter appears twice (in one group or two)
     */
    public Sgd build() {
      if (groupParameters.isEmpty()) {
        throw new IllegalArgumentException("groups: expected at least one parameter group");
      }
      List<ParameterGroup> groups = new ArrayList<>();
      List<Parameter> all = new ArrayList<>();
      Options[] options = new Options[groupParameters.size()];
      for (int g = 0; g < options.length; g++) {
        Options o = defaults.copy();
        groupOptions.get(g).accept(o);
        o.check();
        options[g] = o;
        groups.add(ParameterGroup.of(groupParameters.get(g), o.learningRate, o.asMap()));
        all.addAll(groupParameters.get(g));
      }
      return new Sgd(all, groups, options);
    }
  }
}
