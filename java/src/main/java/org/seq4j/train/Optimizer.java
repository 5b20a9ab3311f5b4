package org.seq4j.train;

import java.util.List;
import org.seq4j.nn.Parameter;

/**
 * Updates parameters from their gradients. {@link #step()} applies one update to every parameter
 * (and marks it changed, so layers see the new values); {@link #zeroGrad()} clears the gradients
 * for the next step. Optimizers hold their state (momenta) off-heap and must be closed.
 */
public sealed interface Optimizer extends AutoCloseable permits Sgd, Adam {
  /** Applies one update to every parameter. */
  void step();

  /** Sets every parameter's gradient to zero. */
  void zeroGrad();

  /** The learning rate of the next step. */
  double learningRate();

  /** Sets the learning rate of the next steps (for schedules). */
  void setLearningRate(double learningRate);

  /** Steps taken so far. */
  long steps();

  /** The parameters updated, in order. */
  List<Parameter> parameters();

  /**
   * The optimizer's state tensors by name ({@code exp_avg.<parameter>} and so on, PyTorch's
   * names), for checkpoints; writing into them changes the optimizer.
   */
  java.util.Map<String, org.seq4j.Tensor> state();

  /** Sets the step count, when resuming from a checkpoint. */
  void restoreSteps(long steps);

  /** Frees the optimizer's state. */
  @Override
  void close();
}
