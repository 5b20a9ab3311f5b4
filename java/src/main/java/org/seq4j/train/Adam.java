package org.seq4j.train;

import java.lang.foreign.Arena;
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
 * Adam (Kingma and Ba) with PyTorch's rule, and AdamW (Loshchilov and Hutter): with decoupled
 * weight decay the parameters shrink by {@code 1 − lr·weightDecay} each step instead of the decay
 * being added to the gradient. Each {@link ParameterGroup} has its own learning rate, betas, eps
 * and weight decay; the builder's settings are the defaults of every group.
 *
 * <pre>{@code
 * try (Adam adamW = Adam.adamW(model.parameters()).learningRate(3e-4).build()) { ... }
 * try (Adam adamW = Adam.adamW().learningRate(1e-3)
 *     .group(decayed, g -> g.weightDecay(0.1))
 *     .group(biasesAndNorms, g -> g.weightDecay(0)).build()) { ... }
 * }</pre>
 */
public final class Adam implements Optimizer {
  private final List<ParameterGroup> groups;
  private final Options[] options; // per group
  private final List<Parameter> parameters;
  private final int[] groupOf; // per parameter
  private final boolean decoupled;
  private final Arena arena;
  private final CallGuard guard = new CallGuard("Adam", "optimizer");
  private final Tensor[] firstMoments;
  private final Tensor[] secondMoments;
  private long steps;

  private Adam(List<Parameter> all, List<ParameterGroup> groups, Options[] options,
      boolean decoupled) {
    this.parameters = ParameterChecks.forOptimizer(all);
    this.groups = List.copyOf(groups);
    this.options = options;
    this.decoupled = decoupled;
    this.groupOf = new int[parameters.size()];
    int index = 0;
    for (int g = 0; g < groups.size(); g++) {
      for (int i = 0; i < groups.get(g).parameters().size(); i++) {
        groupOf[index++] = g;
      }
    }
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

  /**
   * Adam over these parameters as one group: learning rate 0.001, betas (0.9, 0.999), eps 1e-8,
   * no decay; {@link Builder#group} adds more groups.
   */
  public static Builder builder(List<Parameter> parameters) {
    return new Builder(false, 0).group(requireSome(parameters));
  }

  /** Adam with no group yet: add them with {@link Builder#group}. */
  public static Builder builder() {
    return new Builder(false, 0);
  }

  /** AdamW over these parameters: as {@link #builder} with decoupled weight decay 0.01. */
  public static Builder adamW(List<Parameter> parameters) {
    return new Builder(true, 0.01).group(requireSome(parameters));
  }

  /** AdamW with no group yet: add them with {@link Builder#group}. */
  public static Builder adamW() {
    return new Builder(true, 0.01);
  }

  private static List<Parameter> requireSome(List<Parameter> parameters) {
    if (parameters == null || parameters.isEmpty()) {
      throw new IllegalArgumentException("parameters: expected at least one parameter");
    }
    return parameters;
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
      Options o = options[groupOf[i]];
      double learningRate = groups.get(groupOf[i]).learningRate();
      NativeBindings.adamStep(p.data().segment(), firstMoments[i].segment(),
          secondMoments[i].segment(), p.grad().segment(), p.data().size(), (float) learningRate,
          (float) o.beta1, (float) o.beta2, (float) o.eps, (float) o.weightDecay, decoupled,
          steps);
      p.markChanged();
    }
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

  /** The options of one group (and the defaults of every group): PyTorch's Adam arguments. */
  public static final class Options {
    private double learningRate = 1e-3;
    private double beta1 = 0.9;
    private double beta2 = 0.999;
    private double eps = 1e-8;
    private double weightDecay;

    private Options() {}

    private Options copy() {
      Options o = new Options();
      o.learningRate = learningRate;
      o.beta1 = beta1;
      o.beta2 = beta2;
      o.eps = eps;
      o.weightDecay = weightDecay;
      return o;
    }

    /** The learning rate (default 0.001). */
    public Options learningRate(double learningRate) {
      this.learningRate = ParameterGroup.requireRate(learningRate, "learningRate");
      return this;
    }

    /** The decay rates of the moment estimates, each in [0, 1) (default 0.9, 0.999). */
    public Options betas(double beta1, double beta2) {
      if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
        throw new IllegalArgumentException(
            "beta1, beta2: expected values in [0, 1), got " + beta1 + " and " + beta2);
      }
      this.beta1 = beta1;
      this.beta2 = beta2;
      return this;
    }

    /** The term added to the denominator (default 1e-8). */
    public Options eps(double eps) {
      if (!(eps > 0) || Double.isInfinite(eps)) {
        throw new IllegalArgumentException("eps: expected a finite value > 0, got " + eps);
      }
      this.eps = eps;
      return this;
    }

    /** Weight decay: added to the gradient (Adam) or decoupled (AdamW). */
    public Options weightDecay(double weightDecay) {
      if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
        throw new IllegalArgumentException("weightDecay: expected a finite value >= 0, got "
            + weightDecay);
      }
      this.weightDecay = weightDecay;
      return this;
    }

    private Map<String, Object> asMap() {
      return Map.of("betas", List.of(beta1, beta2), "eps", eps, "weight_decay", weightDecay);
    }
  }

  /**
   * Builds an {@link Adam}. Its setters give the defaults of every group; a group's own settings
   * ({@link #group(List, Consumer)}) override them, whatever the order of the calls.
   */
  public static final class Builder {
    private final Options defaults = new Options();
    private final boolean decoupled;
    private final List<List<Parameter>> groupParameters = new ArrayList<>();
    private final List<Consumer<Options>> groupOptions = new ArrayList<>();

    private Builder(boolean decoupled, double weightDecay) {
      this.decoupled = decoupled;
      defaults.weightDecay(weightDecay);
    }

    /** Adds a group of parameters with the default options. */
    public Builder group(List<Parameter> parameters) {
      return group(parameters, o -> { });
    }

    /**
     * Adds a group of parameters whose options {@code options} sets, starting from the defaults:
     * {@code group(norms, g -> g.weightDecay(0))}.
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

    /** The default learning rate (0.001). */
    public Builder learningRate(double learningRate) {
      defaults.learningRate(learningRate);
      return this;
    }

    /** The default decay rates of the moment estimates, each in [0, 1) (0.9, 0.999). */
    public Builder betas(double beta1, double beta2) {
      defaults.betas(beta1, beta2);
      return this;
    }

    /** The default term added to the denominator (1e-8). */
    public Builder eps(double eps) {
      defaults.eps(eps);
      return this;
    }

    /** The default weight decay: added to the gradient (Adam) or decoupled (AdamW). */
    public Builder weightDecay(double weightDecay) {
      defaults.weightDecay(weightDecay);
      return this;
    }

    /**
     * The optimizer.
     *
     * @throws IllegalArgumentException if there is no group or a parameter appears twice
     */
    public Adam build() {
      if (groupParameters.isEmpty()) {
        throw new IllegalArgumentException("groups: expected at least one parameter group");
      }
      List<ParameterGroup> groups = new ArrayList<>();
      List<Parameter> all = new ArrayList<>();
      Options[] options = new Options[groupParameters.size()];
      for (int g = 0; g < options.length; g++) {
        Options o = defaults.copy();
        groupOptions.get(g).accept(o);
        options[g] = o;
        groups.add(ParameterGroup.of(groupParameters.get(g), o.learningRate, o.asMap()));
        all.addAll(groupParameters.get(g));
      }
      return new Adam(all, groups, options, decoupled);
    }
  }
}
