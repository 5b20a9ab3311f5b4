package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;

/**
 * A stack of {@link TransformerDecoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerDecoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}. Every layer attends to the same memory; its gradient is summed over the layers.
 */
public final class TransformerDecoder implements AutoCloseable {
  private final List<TransformerDecoderLayer> layers = new ArrayList<>();
  private final LayerNorm norm;

  /** What the backward needs. */
  public static final class Context {
    private final List<TransformerDecoderLayer.Context> layers;
    private final LayerNorm.Context norm;

    private Context(List<TransformerDecoderLayer.Context> layers, LayerNorm.Context norm) {
      this.layers = layers;
      this.norm = norm;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /** The caches of incremental decoding, one per layer. */
  public static final class Cache {
    private final List<MultiHeadAttention.Cache> layers;

    private Cache(List<MultiHeadAttention.Cache> layers) {
      this.layers = layers;
    }

    /** Positions decoded so far. */
    public long length() {
      return layers.get(0).length();
    }

    /** Forgets every position. */
    public void clear() {
      layers.forEach(MultiHeadAttention.Cache::clear);
    }
  }

  /** {@code numLayers} layers made by {@code layer} (given the index), then {@code norm} or null. */
  public TransformerDecoder(int numLayers, IntFunction<TransformerDecoderLayer> layer,
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

  /** Runs every layer against the memory, then the final norm. */
  public Result forward(Arena arena, Tensor target, Tensor memory,
      ScaledDotProductAttention.Options targetOptions,
      ScaledDotProductAttention.Options memoryOptions, Mode mode) {
    List<TransformerDecoderLayer.Context> contexts = new ArrayList<>();
    Tensor h = target;
    for (TransformerDecoderLayer layer : layers) {
      TransformerDecoderLayer.Result r =
          layer.forward(arena, h, memory, targetOptions, memoryOptions, mode);
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

  /** Gradients of the target and of the memory; adds into every parameter's gradient. */
  public TransformerDecoderLayer.Gradients backward(Arena arena, Context context,
      Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    Tensor g = norm == null ? gradOutput : norm.backward(arena, context.norm, gradOutput);
    Tensor gradMemory = null;
    for (int i = layers.size() - 1; i >= 0; i--) {
      TransformerDecoderLayer.Gradients layerGradients =
          layers.get(i).backward(arena, context.layers.get(i), g);
      g = layerGradients.target();
      if (gradMemory == null) {
        gradMemory = layerGradients.memory();
      } else {
        TensorOps.add(gradMemory, layerGradients.memory(), gradMemory);
      }
    }
    return new TransformerDecoderLayer.Gradients(g, gradMemory);
  }

  /** Caches for incremental decoding of {@code batch} sequences up to {@code capacity} long. */
  public Cache newCache(Arena arena, long batch, long capacity) {
    List<MultiHeadAttention.Cache> caches = new ArrayList<>();
    for (TransformerDecoderLayer layer : layers) {
      caches.add(layer.newCache(arena, batch, capacity));
    }
    return new Cache(caches);
  }

  /** Decodes new positions given the earlier ones' caches (inference); see the layer's. */
  public Tensor forwardStep(Arena arena, Tensor targetStep, Tensor memory,
      ScaledDotProductAttention.Options memoryOptions, Cache cache) {
    Tensor h = targetStep;
    for (int i = 0; i < layers.size(); i++) {
      h = layers.get(i).forwardStep(arena, h, memory, memoryOptions, cache.layers.get(i));
    }
    return norm == null ? h : norm.forward(arena, h).output();
  }

  /** Frees every layer. */
  @Override
  public void close() {
    layers.forEach(TransformerDecoderLayer::close);
    if (norm != null) {
      norm.close();
    }
  }
}
