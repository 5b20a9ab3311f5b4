package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;
import org.seq4j.TensorOps;

/**
 * A stack of {@link TransformerDecoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerDecoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}. Every layer attends to the same memory; its gradient is summed over the layers.
 */
public final class TransformerDecoder extends Module {
  private final List<TransformerDecoderLayer> layers;
  private final LayerNorm norm;
  private static final String CLOSED = "TransformerDecoder: the module is closed";
  private final CallGuard guard = new CallGuard("TransformerDecoder", "module");

  /** What the backward needs. */
  public static final class Context {
    private final TransformerDecoder owner;
    private final List<TransformerDecoderLayer.Context> layers;
    private final LayerNorm.Context norm;
    private Autograd.Recording recording;

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
    register("layers", new ModuleList<>(layers));
    if (norm != null) {
      register("norm", norm);
    }
  }

  /** The layers, in order. */
  public List<TransformerDecoderLayer> layers() {
    return List.copyOf(layers);
  }

  /** The inputs of a recorded forward: the tensors, then every parameter's data. */
  private List<Tensor> recordedInputs(Tensor... tensors) {
    List<Tensor> inputs = new ArrayList<>(List.of(tensors));
    for (Parameter p : namedParameters().values()) {
      inputs.add(p.data());
    }
    return inputs;
  }

  /**
   * Runs every layer against the memory, then the final norm; in {@link Mode#TRAINING} the
   * result carries a context for {@link #backward} and, while gradients are recorded, the
   * forward records its backward (the explicit backward on the same forward then throws).
   * Dropout applies in training mode.
   */
  public Result forward(Arena arena, Tensor target, Tensor memory,
      ScaledDotProductAttention.Options targetOptions,
      ScaledDotProductAttention.Options memoryOptions, Mode mode) {
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    boolean keepContext = mode == Mode.TRAINING;
    boolean training = keepContext && isTraining();
    enter();
    try {
      List<Tensor> inputs = recordedInputs(target, memory);
      Result result;
      try (var off = Autograd.noGrad()) {
        result = forwardUnguarded(arena, target, memory, targetOptions, memoryOptions,
            keepContext, training);
      }
      Context context = result.context();
      String call = "TransformerDecoder.forward";
      if (context == null) {
        Autograd.recordUnsupported(call + " in Mode.INFERENCE", "run it in Mode.TRAINING to"
            + " compute gradients, or under Autograd.noGrad() when none are wanted", inputs,
            List.of(result.output()));
      } else {
        context.recording = Autograd.recordConsumable(call, inputs, List.of(result.output()),
            inputs, (scratch, g) -> {
              TransformerDecoderLayer.Gradients grads = backwardInternal(scratch, context, g[0]);
              Tensor[] out = new Tensor[inputs.size()];
              out[0] = grads.target();
              out[1] = grads.memory();
              return out;
            });
      }
      return result;
    } catch (IllegalStateException e) {
      throw closedDuring(e);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor target, Tensor memory,
      ScaledDotProductAttention.Options targetOptions,
      ScaledDotProductAttention.Options memoryOptions, boolean keepContext, boolean training) {
    List<TransformerDecoderLayer.Context> contexts = new ArrayList<>();
    Tensor h = target;
    for (TransformerDecoderLayer layer : layers) {
      TransformerDecoderLayer.Result r = layer.forward(arena, h, memory, targetOptions,
          memoryOptions, keepContext, training);
      contexts.add(r.context());
      h = r.output();
    }
    LayerNorm.Context normContext = null;
    if (norm != null) {
      LayerNorm.Result r = norm.forward(arena, h);
      normContext = r.context();
      h = r.output();
    }
    return new Result(h, keepContext ? new Context(this, contexts, normContext) : null);
  }

  /**
   * Gradients of the target and of the memory; adds into every parameter's gradient.
   *
   * @throws IllegalStateException if the graph's backward already ran through this forward
   */
  public TransformerDecoderLayer.Gradients backward(Arena arena, Context context,
      Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner == this && context.recording != null) {
      context.recording.consumeExplicitly("TransformerDecoder.backward");
    }
    return backwardInternal(arena, context, gradOutput);
  }

  private TransformerDecoderLayer.Gradients backwardInternal(Arena arena, Context context,
      Tensor gradOutput) {
    enter();
    try (var off = Autograd.noGrad()) {
      return backwardUnguarded(arena, context, gradOutput);
    } catch (IllegalStateException e) {
      throw closedDuring(e);
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
          layers.get(i).backwardInternal(arena, context.layers.get(i), g);
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
    enter();
    try {
      return newCacheUnguarded(arena, batch, capacity);
    } catch (IllegalStateException e) {
      throw closedDuring(e);
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
    enter();
    try {
      List<Tensor> inputs = recordedInputs(targetStep, memory);
      Tensor out;
      try (var off = Autograd.noGrad()) {
        out = forwardStepUnguarded(arena, targetStep, memory, memoryOptions, cache);
      }
      Autograd.recordUnsupported("TransformerDecoder.forwardStep", "incremental decoding is for"
          + " inference: run it under Autograd.noGrad(), or train with forward in Mode.TRAINING",
          inputs, List.of(out));
      return out;
    } catch (IllegalStateException e) {
      throw closedDuring(e);
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
   * Enters a call. {@link #close()} closes the parts before this object's own guard, so a call
   * already in flight may find a part closed: {@link #closedDuring} then reports this object as
   * closed, as a call that starts after close does.
   */
  private void enter() {
    if (isClosed()) {
      throw new IllegalStateException(CLOSED);
    }
    guard.enter();
  }

  private IllegalStateException closedDuring(IllegalStateException failure) {
    if (!isClosed() || CLOSED.equals(failure.getMessage())) {
      return failure;
    }
    IllegalStateException closed = new IllegalStateException(CLOSED);
    closed.addSuppressed(failure);
    return closed;
  }

  /**
   * Waits for the calls in flight on other threads; calls that start later throw {@link
   * IllegalStateException}. Called once by {@link #close()}, after the layers and the norm.
   */
  @Override
  protected void closeResources() {
    guard.close(() -> { });
  }
}
