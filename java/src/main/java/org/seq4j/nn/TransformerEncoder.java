package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;

/**
 * A stack of {@link TransformerEncoderLayer}s with an optional final {@link LayerNorm}, PyTorch's
 * {@code nn.TransformerEncoder}; parameters are named {@code layers.<i>.<name>} and {@code
 * norm.<name>}.
 */
public final class TransformerEncoder extends Module implements Layer {
  private final List<TransformerEncoderLayer> layers;
  private final LayerNorm norm;
  private static final String CLOSED = "TransformerEncoder: the module is closed";
  private final CallGuard guard = new CallGuard("TransformerEncoder", "module");

  /** What the backward needs. */
  public static final class Context {
    private final TransformerEncoder owner;
    private final List<TransformerEncoderLayer.Context> layers;
    private final LayerNorm.Context norm;
    private Autograd.Recording recording;

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
    register("layers", new ModuleList<>(layers));
    if (norm != null) {
      register("norm", norm);
    }
  }

  /** The layers, in order. */
  public List<TransformerEncoderLayer> layers() {
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
   * Encodes {@code x} with no mask: the result lives in {@code x}'s arena and, while gradients
   * are recorded, takes part in the graph; dropout applies in training mode.
   */
  @Override
  public Tensor forward(Tensor x) {
    Arena arena = arenaOf(x, "x");
    boolean recording = Autograd.isRecording(recordedInputs(x));
    return forward(arena, x, ScaledDotProductAttention.Options.DEFAULT, recording, isTraining())
        .output();
  }

  /**
   * Runs every layer, then the final norm; in {@link Mode#TRAINING} the result carries a context
   * for {@link #backward} and, while gradients are recorded, the forward records its backward
   * (the explicit backward on the same forward then throws). Dropout applies in training mode.
   */
  public Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      Mode mode) {
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    return forward(arena, x, options, mode == Mode.TRAINING, mode == Mode.TRAINING && isTraining());
  }

  private Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      boolean keepContext, boolean training) {
    enter();
    try {
      List<Tensor> inputs = recordedInputs(x);
      Result result;
      try (var off = Autograd.noGrad()) {
        result = forwardUnguarded(arena, x, options, keepContext, training);
      }
      Context context = result.context();
      String call = "TransformerEncoder.forward";
      if (context == null) {
        Autograd.recordUnsupported(call + " in Mode.INFERENCE", "run it in Mode.TRAINING to"
            + " compute gradients, or under Autograd.noGrad() when none are wanted", inputs,
            List.of(result.output()));
      } else {
        context.recording = Autograd.recordConsumable(call, inputs, List.of(result.output()),
            inputs, (scratch, g) -> {
              Tensor[] out = new Tensor[inputs.size()];
              out[0] = backwardInternal(scratch, context, g[0]);
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

  private Result forwardUnguarded(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      boolean keepContext, boolean training) {
    List<TransformerEncoderLayer.Context> contexts = new ArrayList<>();
    Tensor h = x;
    for (TransformerEncoderLayer layer : layers) {
      TransformerEncoderLayer.Result r = layer.forward(arena, h, options, keepContext, training,
          "TransformerEncoder.forward");
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
   * The gradient of the input; adds into every parameter's gradient.
   *
   * @throws IllegalStateException if the graph's backward already ran through this forward
   */
  public Tensor backward(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner == this && context.recording != null) {
      context.recording.consumeExplicitly("TransformerEncoder.backward");
    }
    return backwardInternal(arena, context, gradOutput);
  }

  private Tensor backwardInternal(Arena arena, Context context, Tensor gradOutput) {
    enter();
    try (var off = Autograd.noGrad()) {
      return backwardUnguarded(arena, context, gradOutput);
    } catch (IllegalStateException e) {
      throw closedDuring(e);
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
      g = layers.get(i).backwardInternal(arena, context.layers.get(i), g);
    }
    return g;
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
