package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Tensor;

/**
 * A stack of {@link TransformerEncoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerEncoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}.
 */
public final class TransformerEncoder implements AutoCloseable {
  private final List<TransformerEncoderLayer> layers = new ArrayList<>();
  private final LayerNorm norm;

  /** What the backward needs. */
  public static final class Context {
    private final List<TransformerEncoderLayer.Context> layers;
    private final LayerNorm.Context norm;

    private Context(List<TransformerEncoderLayer.Context> layers, LayerNorm.Context norm) {
      this.layers = layers;
      this.norm = norm;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /**
   * {@code numLayers} layers made by {@code layer} (given the layer's index, so each can have its
   * own seed), and {@code norm} applied last, or null.
   */
  public TransformerEncoder(int numLayers, IntFunction<TransformerEncoderLayer> layer,
      LayerNorm norm) {
    if (numLayers < 1) {
      throw new IllegalArgumentException("numLayers: expected >= 1, got " + numLayers);
    }
    for (int i = 0; i < numLayers; i++) {
      layers.add(layer.apply(i));
    }
    this.norm = norm;
  }

  /** Every parameter under PyTorch's name. */
  public List<Parameter> parameters() {
    List<Parameter> all = new ArrayList<>();
    for (int i = 0; i < layers.size(); i++) {
      all.addAll(Parameter.prefixed("layers." + i + ".", layers.get(i).parameters()));
    }
    if (norm != null) {
      all.addAll(Parameter.prefixed("norm.", norm.parameters()));
    }
    return all;
  }

  /** Runs every layer, then the final norm. */
  public Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      Mode mode) {
    List<TransformerEncoderLayer.Context> contexts = new ArrayList<>();
    Tensor h = x;
    for (TransformerEncoderLayer layer : layers) {
      TransformerEncoderLayer.Result r = layer.forward(arena, h, options, mode);
      contexts.add(r.context());
      h = r.output();
    }
    LayerNorm.Context normContext = null;
    if (norm != null) {
      LayerNorm.Result r = norm.forward(arena, h);
      normContext = r.context();
      h = r.output();
    }
    return new Result(h, mode == Mode.TRAINING ? new Context(contexts, normContext) : null);
  }

  /** The gradient of the input; adds into every parameter's gradient. */
  public Tensor backward(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    Tensor g = norm == null ? gradOutput : norm.backward(arena, context.norm, gradOutput);
    for (int i = layers.size() - 1; i >= 0; i--) {
      g = layers.get(i).backward(arena, context.layers.get(i), g);
    }
    return g;
  }

  /** Frees every layer. */
  @Override
  public void close() {
    layers.forEach(TransformerEncoderLayer::close);
    if (norm != null) {
      norm.close();
    }
  }
}
