package org.seq4j.train;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;

/**
 * Gradient-flow diagnostics for backpropagation through time: how much gradient reaches the
 * hidden state at each step. In a simple RNN it shrinks geometrically going back in time
 * (vanishing gradients); an LSTM's cell highway keeps it alive over many more steps.
 *
 * <p>{@link #hiddenStateGradientNorms} runs the network one step at a time in training mode
 * (the same values as one call) and backpropagates one step at a time, reading {@code ∂L/∂h(t)}
 * between the steps. It costs one extra forward and backward; parameter gradients are left as
 * they were.
 */
public final class GradientFlow {
  private GradientFlow() {}

  /**
   * {@code ‖∂L/∂h(t)‖} (the L2 norm over the batch and hidden units) for every step {@code t} of
   * a one-layer, one-direction, time-major network, where {@code L} is the loss whose gradient
   * with respect to the outputs is {@code gradOutput}: the gradient that arrives at {@code h(t)}
   * directly from the output at {@code t} plus all that flows back from later steps.
   *
   * @param input {@code (T, N, inputSize)}
   * @param initial the initial state, or null for zeros
   * @param gradOutput {@code ∂L/∂output}, {@code (T, N, Hout)}
   */
  public static double[] hiddenStateGradientNorms(RecurrentLayer layer, Tensor input,
      RecurrentState initial, Tensor gradOutput) {
    java.util.Objects.requireNonNull(layer, "layer");
    java.util.Objects.requireNonNull(input, "input");
    java.util.Objects.requireNonNull(gradOutput, "gradOutput");
    if (input.shape().rank() != 3) {
      throw new IllegalArgumentException(
          "input: expected shape (T, N, " + layer.inputSize() + "), got " + input.shape());
    }
    org.seq4j.internal.Checks.usable(gradOutput.segment(), "gradOutput");
    if (layer.numLayers() != 1 || layer.directions() != 1 || layer.batchFirst()) {
      throw new IllegalArgumentException("layer: expected one layer, one direction and"
          + " time-major inputs, got " + layer);
    }
    if (!gradOutput.shape().equals(org.seq4j.Shape.of(input.dim(0), input.dim(1),
        layer.outputSizePerDirection()))) {
      throw new IllegalArgumentException("gradOutput: expected shape (" + input.dim(0) + ", "
          + input.dim(1) + ", " + layer.outputSizePerDirection() + "), got "
          + gradOutput.shape());
    }
    int steps = Math.toIntExact(input.dim(0));
    double[] norms = new double[steps];
    try (Arena arena = Arena.ofConfined()) {
      List<Parameter> parameters = layer.parameters();
      List<Tensor> savedGradients = new ArrayList<>();
      for (Parameter p : parameters) {
        savedGradients.add(p.grad().copy(arena));
      }
      RecurrentLayer.Result[] results = new RecurrentLayer.Result[steps];
      RecurrentState state = initial;
      for (int t = 0; t < steps; t++) {
        results[t] = layer.forward(arena, input.slice(t, t + 1), state, null, Mode.TRAINING);
        state = results[t].finalState();
      }
      RecurrentState fromLater = null;
      Tensor total = Tensor.zeros(arena, 1, input.dim(1), layer.outputSizePerDirection());
      for (int t = steps - 1; t >= 0; t--) {
        Tensor direct = gradOutput.slice(t, t + 1);
        if (fromLater == null) {
          total.copyFrom(direct);
        } else {
          TensorOps.add(direct, fromLater.hidden(), total);
        }
        double sum = 0;
        for (float g : total.toArray()) {
          sum += (double) g * g;
        }
        norms[t] = Math.sqrt(sum);
        RecurrentLayer.Gradients gradients =
            layer.backward(arena, results[t].context(), direct, fromLater);
        fromLater = gradients.initialState();
      }
      for (int i = 0; i < parameters.size(); i++) {
        parameters.get(i).grad().copyFrom(savedGradients.get(i));
      }
    }
    return norms;
  }
}
