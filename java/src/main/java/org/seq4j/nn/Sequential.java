package org.seq4j.nn;

import java.util.ArrayList;
import java.util.List;
import org.seq4j.Tensor;

/**
 * Modules applied one after another, as PyTorch's {@code nn.Sequential}: the parts are named
 * {@code 0}, {@code 1}, … so that their parameters are {@code 0.weight}, {@code 2.bias}, as in
 * PyTorch's state dict.
 *
 * <pre>{@code
 * try (Sequential mlp = new Sequential(new Linear(4, 16), Nonlinearity.relu(), new Linear(16, 1))) {
 *   Tensor y = mlp.forward(x);
 * }
 * }</pre>
 */
public final class Sequential extends Module implements Layer {
  private final List<Layer> layers = new ArrayList<>();

  /**
   * Chains {@code layers}, each a {@link Module} implementing {@link Layer}; the sequential owns
   * them (closing it closes them).
   *
   * @throws IllegalArgumentException naming the first argument that is not a module
   */
  public Sequential(Layer... layers) {
    for (int i = 0; i < layers.length; i++) {
      Layer layer = layers[i];
      if (layer == null) {
        throw new NullPointerException("layers[" + i + "]");
      }
      if (!(layer instanceof Module module)) {
        throw new IllegalArgumentException("layers[" + i + "]: expected a Module that implements"
            + " Layer, got " + layer.getClass().getName());
      }
      register(Integer.toString(i), module);
      this.layers.add(layer);
    }
  }

  /** The number of layers. */
  public int size() {
    return layers.size();
  }

  /** The layer at {@code index}. */
  public Layer get(int index) {
    return layers.get(index);
  }

  /** Applies every layer in turn. */
  @Override
  public Tensor forward(Tensor input) {
    if (isClosed()) {
      throw new IllegalStateException("Sequential: it is closed");
    }
    Tensor x = input;
    for (Layer layer : layers) {
      x = layer.forward(x);
    }
    return x;
  }
}
