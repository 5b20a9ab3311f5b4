package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.TensorOps;

/**
 * A stack of {@link TransformerDecoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerDecoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}. Every layer attends to the same memory; its gradient is summed over the layers.
 */
public final class TransformerDecoder implements AutoCloseable {
  private final List<TransformerDecoderLayer> layers;
  private final LayerNorm norm;
  private final CallGuard guard = new CallGuard("TransformerDecoder", "module");

  /** What the backward needs. */
  public static final class Context {
    private final TransformerDecoder owner;
    private final List<TransformerDecoderLayer.Context> layers;
    private final LayerNorm.Context norm;

    private Context(TransformerDecoder owner, List<TransformerDecoderLayer.Context> layers,
        LayerNorm.Context norm) {
      this.owner = owner;
      this.layers = layers;
      this.norm = norm;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /** The caches of incremental decoding, one per layer. */
  public static final class Cache {
    private final TransformerDecoder owner;
    private final List<MultiHeadAttention.Cache> layers;

    private Cache(TransformerDecoder owner, List<MultiHeadAttention.Cache> layers) {
      this.owner = owner;
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

  /**
   * {@code numLayers} layers made by {@code layer} (given the index), then {@code norm} or null.
   * The stack owns them; when construction fails it closes the layers made so far and {@code
   * norm}.
   */
  public TransformerDecoder(int numLayers, IntFunction<TransformerDecoderLayer> layer,
      LayerNorm norm) {
    // all or nothing: a failure closes the layers made and norm
    this.layers = Parts.stack(numLayers, layer, norm);
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
    guard.enter();
    try {
      return forwardUnguarded(arena, target, memory, targetOptions, memoryOptions, mode);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor target, Tensor memory,
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
    return new Result(h, mode == Mode.TRAINING ? new Context(this, contexts, normContext) : null);
  }

  /** Gradients of the target and of the memory; adds into every parameter's gradient. */
  public TransformerDecoderLayer.Gradients backward(Arena arena, Context context,
      Tensor gradOutput) {
    guard.enter();
    try {
      return backwardUnguarded(arena, context, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private TransformerDecoderLayer.Gradients backwardUnguarded(Arena arena, Context context,
      Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another TransformerDecoder; pass"
          + " the context of this stack's forward");
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
    guard.enter();
    try {
      return newCacheUnguarded(arena, batch, capacity);
    } finally {
      guard.exit();
    }
  }

  private Cache newCacheUnguarded(Arena arena, long batch, long capacity) {
    List<MultiHeadAttention.Cache> caches = new ArrayList<>();
    for (TransformerDecoderLayer layer : layers) {
      caches.add(layer.newCache(arena, batch, capacity));
    }
    return new Cache(this, caches);
  }

  /** Decodes new positions given the earlier ones' caches (inference); see the layer's. */
  public Tensor forwardStep(Arena arena, Tensor targetStep, Tensor memory,
      ScaledDotProductAttention.Options memoryOptions, Cache cache) {
    guard.enter();
    try {
      return forwardStepUnguarded(arena, targetStep, memory, memoryOptions, cache);
    } finally {
      guard.exit();
    }
  }

  private Tensor forwardStepUnguarded(Arena arena, Tensor targetStep, Tensor memory,
      ScaledDotProductAttention.Options memoryOptions, Cache cache) {
    if (cache == null) {
      throw new NullPointerException("cache");
    }
    if (cache.owner != this) {
      throw new IllegalArgumentException("cache: it was made by another TransformerDecoder; use"
          + " the cache of this decoder's newCache");
    }
    Tensor h = targetStep;
    for (int i = 0; i < layers.size(); i++) {
      h = layers.get(i).forwardStep(arena, h, memory, memoryOptions, cache.layers.get(i));
    }
    return norm == null ? h : norm.forward(arena, h).output();
  }

  /**
   * Frees every layer and the norm, after waiting for the calls in flight on other threads; calls
   * that start later throw {@link IllegalStateException}. Closing again does nothing.
   */
  @Override
  public void close() {
    guard.close(() -> {
      layers.forEach(TransformerDecoderLayer::close);
      if (norm != null) {
        norm.close();
      }
    });
  }
}
