package org.seq4j.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;

/**
 * Updates parameters from their gradients. {@link #step()} applies one update to every parameter
 * (and marks it changed, so layers see the new values); {@link #zeroGrad()} clears the gradients
 * for the next step. Optimizers hold their state (momenta) off-heap and must be closed.
 *
 * <p>The parameters come in {@link #groups() groups}, as PyTorch's {@code param_groups}: each has
 * its own learning rate and options. {@link Sgd} and {@link Adam} are built with groups by their
 * builders; {@link Scheduler}s change every group's rate relative to its base rate.
 *
 * <p><b>An optimizer of your own</b> implements {@link #groups()}, {@link #step()}, {@link
 * #steps()} and {@link #restoreSteps}; the rest has defaults. Its step reads each group's {@link
 * ParameterGroup#learningRate()} and calls {@link Parameter#markChanged()} after writing into a
 * parameter's {@code data()}:
 *
 * <pre>{@code
 * final class SignSgd implements Optimizer {
 *   private final List<ParameterGroup> groups;
 *   private long steps;
 *   SignSgd(List<Parameter> parameters, double lr) {
 *     groups = List.of(ParameterGroup.of(parameters, lr, Map.of()));
 *   }
 *   public List<ParameterGroup> groups() { return groups; }
 *   public void step() {
 *     for (ParameterGroup g : groups) for (Parameter p : g.parameters()) {
 *       ... p.data() -= g.learningRate() * sign(p.grad()) ...; p.markChanged();
 *     }
 *     steps++;
 *   }
 *   public long steps() { return steps; }
 *   public void restoreSteps(long s) { steps = s; }
 * }
 * }</pre>
 */
public interface Optimizer extends AutoCloseable {
  /** Applies one update to every parameter. */
  void step();

  /** The parameter groups, in order (at least one); fixed at construction. */
  List<ParameterGroup> groups();

  /** Steps taken so far. */
  long steps();

  /** Sets the step count, when resuming from a checkpoint. */
  void restoreSteps(long steps);

  /** Sets every parameter's gradient to zero. */
  default void zeroGrad() {
    for (Parameter p : parameters()) {
      p.zeroGrad();
    }
  }

  /** The learning rate of the next step of the first group. */
  default double learningRate() {
    return groups().get(0).learningRate();
  }

  /**
   * Sets the learning rate of the next steps: the first group gets {@code learningRate} and every
   * group the same multiple of its own base rate (as a PyTorch scheduler scales each group's
   * {@code initial_lr}), so a single-group optimizer simply takes the rate. When the first group's
   * base rate is 0, every group gets {@code learningRate}.
   */
  default void setLearningRate(double learningRate) {
    ParameterGroup.requireRate(learningRate, "learningRate");
    List<ParameterGroup> groups = groups();
    double base = groups.get(0).baseLearningRate();
    groups.get(0).setLearningRate(learningRate);
    for (int i = 1; i < groups.size(); i++) {
      ParameterGroup g = groups.get(i);
      g.setLearningRate(base == 0 ? learningRate : g.baseLearningRate() * (learningRate / base));
    }
  }

  /** The parameters of every group, in order. */
  default List<Parameter> parameters() {
    List<Parameter> all = new ArrayList<>();
    for (ParameterGroup g : groups()) {
      all.addAll(g.parameters());
    }
    return List.copyOf(all);
  }

  /**
   * The optimizer's state tensors by name ({@code exp_avg.<parameter>} and so on, PyTorch's
   * names), for checkpoints; writing into them changes the optimizer. The default: no state.
   */
  default Map<String, Tensor> state() {
    return Map.of();
  }

  /** Frees the optimizer's state. The default does nothing. */
  @Override
  default void close() {}
}
