package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;

/**
 * A stack of {@link TransformerEncoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerEncoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}.
 */
public final class TransformerEncoder implements AutoCloseable {
  private final List<TransformerEncoderLayer> layers;
  private final LayerNorm norm;
  private final CallGuard guard = new CallGuard("TransformerEncoder", "module");

  /** What the backward needs. */
  public static final class Context {
    private final TransformerEncoder owner;
    private final List<TransformerEncoderLayer.Context> layers;
    private final LayerNorm.Context norm;

    private Context(TransformerEncoder owner, List<TransformerEncoderLayer.Context> layers,
        LayerNorm.Context norm) {
      this.owner = owner;
      this.layers = layers;
      this.norm = norm;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /**
   * {@code numLayers} layers made by {@code layer} (given the layer's index, so each can have its
   * own seed), and {@code norm} applied last, or null. The stack owns {@code norm} and the layers
   * ({@link #close} closes them); when construction fails it closes those made so far and {@code
   * norm}, so a failed {@code new} leaves nothing behind.
   */
  public TransformerEncoder(int numLayers, IntFunction<TransformerEncoderLayer> layer,
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

  /** Runs every layer, then the final norm. */
  public Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      Mode mode) {
    guard.enter();
    try {
      return forwardUnguarded(arena, x, options, mode);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
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
    return new Result(h, mode == Mode.TRAINING ? new Context(this, contexts, normContext) : null);
  }

  /** The gradient of the input; adds into every parameter's gradient. */
  public Tensor backward(Arena arena, Context context, Tensor gradOutput) {
    guard.enter();
    try {
      return backwardUnguarded(arena, context, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private Tensor backwardUnguarded(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another TransformerEncoder; pass"
          + " the context of this stack's forward");
    }
    Tensor g = norm == null ? gradOutput : norm.backward(arena, context.norm, gradOutput);
    for (int i = layers.size() - 1; i >= 0; i--) {
      g = layers.get(i).backward(arena, context.layers.get(i), g);
    }
    return g;
  }

  /**
   * Frees every layer and the norm, after waiting for the calls in flight on other threads; calls
   * that start later throw {@link IllegalStateException}. Closing again does nothing.
   */
  @Override
  public void close() {
    guard.close(() -> {
      layers.forEach(TransformerEncoderLayer::close);
      if (norm != null) {
        norm.close();
      }
    });
  }
}
