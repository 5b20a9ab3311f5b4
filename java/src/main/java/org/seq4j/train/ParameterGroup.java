package org.seq4j.train;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.seq4j.nn.Parameter;

/**
 * One of an optimizer's parameter groups, as an entry of PyTorch's {@code
 * optimizer.param_groups}: its parameters, its current learning rate, the base learning rate that
 * schedules scale ({@code initial_lr}), and its other hyperparameters under PyTorch's keys
 * ({@code momentum}, {@code weight_decay}, {@code betas}, ...), read-only.
 *
 * <p>An optimizer of your own builds its groups with {@link #of} and reads {@link
 * #learningRate()} at every step: schedules and {@link Optimizer#setLearningRate} change it.
 */
public final class ParameterGroup {
  private final List<Parameter> parameters;
  private final double baseLearningRate;
  private final Map<String, Object> options;
  private volatile double learningRate;

  private ParameterGroup(List<Parameter> parameters, double learningRate,
      Map<String, Object> options) {
    this.parameters = List.copyOf(parameters);
    this.baseLearningRate = requireRate(learningRate, "learningRate");
    this.learningRate = learningRate;
    this.options = Map.copyOf(options);
  }

  /**
   * A group of {@code parameters} with the base learning rate {@code learningRate} and {@code
   * options} (informative: what the optimizer applies, under PyTorch's keys).
   *
   * @throws IllegalArgumentException if {@code parameters} is empty or the rate is negative or
   *     not finite
   */
  public static ParameterGroup of(List<Parameter> parameters, double learningRate,
      Map<String, Object> options) {
    Objects.requireNonNull(parameters, "parameters");
    Objects.requireNonNull(options, "options");
    if (parameters.isEmpty()) {
      throw new IllegalArgumentException("parameters: expected at least one parameter");
    }
    return new ParameterGroup(parameters, learningRate, options);
  }

  /** The parameters of this group, in order. */
  public List<Parameter> parameters() {
    return parameters;
  }

  /** The learning rate of the next step. */
  public double learningRate() {
    return learningRate;
  }

  /** Sets the learning rate of the next steps. */
  public void setLearningRate(double learningRate) {
    this.learningRate = requireRate(learningRate, "learningRate");
  }

  /** The learning rate the group was built with: schedules multiply it ({@code initial_lr}). */
  public double baseLearningRate() {
    return baseLearningRate;
  }

  /** The other hyperparameters, under PyTorch's keys; read-only. */
  public Map<String, Object> options() {
    return options;
  }

  static double requireRate(double rate, String name) {
    if (!(rate >= 0) || Double.isInfinite(rate)) {
      throw new IllegalArgumentException(name + ": expected a finite value >= 0, got " + rate);
    }
    return rate;
  }

  @Override
  public String toString() {
    return "ParameterGroup(" + parameters.size() + " parameters, lr " + learningRate + ", "
        + options + ")";
  }
}
