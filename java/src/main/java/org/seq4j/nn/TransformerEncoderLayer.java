package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;

/**
 * One Transformer encoder layer, PyTorch's {@code nn.TransformerEncoderLayer}: self-attention and
 * a feed-forward network, each with dropout and a residual connection, normalised after
 * (post-norm, the default) or before (pre-norm, {@code normFirst}) each block:
 *
 * <pre>
 * post-norm: x = norm1(x + drop(selfAttention(x)));  y = norm2(x + drop(linear2(drop(act(linear1(x))))))
 * pre-norm:  x = x + drop(selfAttention(norm1(x)));  y = x + drop(linear2(drop(act(linear1(norm2(x))))))
 * </pre>
 *
 * <p>Parameters under PyTorch's names: {@code self_attn.in_proj_weight}, ..., {@code
 * linear1.weight}, {@code linear2.bias}, {@code norm1.weight}, {@code norm2.bias}. Shapes {@code
 * (T, N, dModel)}, or {@code (N, T, dModel)} when batch-first.
 *
 * <p>While gradients are recorded ({@link Autograd}), a {@link Mode#TRAINING} forward (and {@link
 * #forward(Tensor)}) records its backward as one operation; the explicit {@link #backward} on the
 * same forward then throws (and the other way round). Dropout applies in training mode ({@link
 * #isTraining()}).
 */
public final class TransformerEncoderLayer extends Module implements Layer {
  private final long dModel;
  private final float dropout;
  private final boolean normFirst;
  private final Activation activation;
  private final MultiHeadAttention selfAttention;
  private final Linear linear1;
  private final Linear linear2;
  private final LayerNorm norm1;
  private final LayerNorm norm2;
  private final Seeds.DropoutSeeds dropoutSeeds;
  private static final String CLOSED = "TransformerEncoderLayer: the layer is closed";
  private final CallGuard guard = new CallGuard("TransformerEncoderLayer", "layer");

  /** What the backward needs: every intermediate of the forward. */
  public static final class Context {
    private final TransformerEncoderLayer owner;
    private final Tensor input;
    private final MultiHeadAttention.Context attention;
    private final LayerNorm.Context norm1;
    private final LayerNorm.Context norm2;
    private final Tensor feedForwardInput;
    /** What the activation's derivative reads: its input, or for ReLU its output. */
    private final Tensor hidden;
    private final Tensor activated;
    private final long seed;
    private final boolean dropped;
    private Autograd.Recording recording;

    private Context(TransformerEncoderLayer owner, Tensor input,
        MultiHeadAttention.Context attention, LayerNorm.Context norm1, LayerNorm.Context norm2,
        Tensor feedForwardInput, Tensor hidden, Tensor activated, long seed, boolean dropped) {
      this.dropped = dropped;
      this.owner = owner;
      this.input = input;
      this.attention = attention;
      this.norm1 = norm1;
      this.norm2 = norm2;
      this.feedForwardInput = feedForwardInput;
      this.hidden = hidden;
      this.activated = activated;
      this.seed = seed;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /** A builder of a layer over embeddings of size {@code dModel} with {@code heads} heads. */
  public static Builder builder(long dModel, int heads) {
    return new Builder(dModel, heads);
  }

  /** Builds a {@link TransformerEncoderLayer}; see {@link TransformerBuilder} for the options. */
  public static final class Builder extends TransformerBuilder<Builder> {
    private Builder(long dModel, int heads) {
      super(dModel, heads);
    }

    @Override
    Builder self() {
      return this;
    }

    /** The layer. */
    public TransformerEncoderLayer build() {
      return new TransformerEncoderLayer(this);
    }
  }

  private TransformerEncoderLayer(Builder options) {
    options.checkOptions(); // every option first: a bad one allocates nothing
    this.dModel = options.dModel;
    this.dropout = options.dropout;
    this.normFirst = options.normFirst;
    this.activation = options.activation;
    this.dropoutSeeds = new Seeds.DropoutSeeds(options.seed);
    Parts parts = new Parts(); // and a part that fails frees those made before it
    try {
      this.selfAttention = parts.add(options.attention(0));
      this.linear1 = parts.add(
          new Linear(options.dModel, options.dimFeedforward, true, options.seed + 1));
      this.linear2 = parts.add(
          new Linear(options.dimFeedforward, options.dModel, true, options.seed + 2));
      this.norm1 = parts.add(new LayerNorm(options.dModel));
      this.norm2 = parts.add(new LayerNorm(options.dModel));
    } catch (RuntimeException | Error e) {
      parts.closeAfterFailure(e);
      throw e;
    }
    // PyTorch's attribute names and order; the tree closes them (the last first)
    register("self_attn", selfAttention);
    register("linear1", linear1);
    register("linear2", linear2);
    register("norm1", norm1);
    register("norm2", norm2);
  }

  /** The data of every parameter: inputs of a recorded forward, so frozen ones are respected. */
  private List<Tensor> recordedInputs(Tensor x) {
    List<Tensor> inputs = new ArrayList<>();
    inputs.add(x);
    for (Parameter p : namedParameters().values()) {
      inputs.add(p.data());
    }
    return inputs;
  }

  /**
   * Encodes {@code x (T, N, dModel)} (or batch-first) with no mask: the result lives in {@code
   * x}'s arena and, while gradients are recorded, takes part in the graph; dropout applies in
   * training mode.
   */
  @Override
  public Tensor forward(Tensor x) {
    Arena arena = arenaOf(x, "x");
    boolean recording = Autograd.isRecording(recordedInputs(x));
    return forward(arena, x, ScaledDotProductAttention.Options.DEFAULT, recording, isTraining(),
        "TransformerEncoderLayer.forward").output();
  }

  /**
   * Encodes {@code x}; {@code options} carries the attention mask and key padding mask ({@code
   * src_mask}, {@code src_key_padding_mask}).
   */
  public Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      Mode mode) {
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    return forward(arena, x, options, mode == Mode.TRAINING, mode == Mode.TRAINING && isTraining(),
        "TransformerEncoderLayer.forward");
  }

  /** The forward of every entry: {@code keepContext} saves (and records), {@code training} drops. */
  Result forward(Arena arena, Tensor x, ScaledDotProductAttention.Options options,
      boolean keepContext, boolean training, String call) {
    enter();
    try {
      List<Tensor> inputs = recordedInputs(x);
      Result result;
      try (var off = Autograd.noGrad()) {
        result = forwardUnguarded(arena, x, options, keepContext, training);
      }
      Context context = result.context();
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
    SequenceChecks.requireSequence(x, "x", "T", dModel, selfAttention.isBatchFirst());
    if (options == null) {
      throw new NullPointerException("options");
    }
    long callSeed = dropoutSeeds.next();
    Tensor attentionInput = x;
    LayerNorm.Result first = null;
    if (normFirst) {
      first = norm1.forward(arena, x);
      attentionInput = first.output();
    }
    MultiHeadAttention.Result attended = selfAttention.forward(arena, attentionInput,
        attentionInput, attentionInput, options, false, true, keepContext, training,
        "TransformerEncoderLayer.forward");
    Tensor residual1 = add(arena, x, drop(arena, attended.output(), callSeed, training));
    Tensor afterAttention = residual1;
    if (!normFirst) {
      first = norm1.forward(arena, residual1);
      afterAttention = first.output();
    }
    LayerNorm.Result second = null;
    Tensor feedForwardInput = afterAttention;
    if (normFirst) {
      second = norm2.forward(arena, afterAttention);
      feedForwardInput = second.output();
    }
    // hidden: what the activation's backward reads f' from; for ReLU its output, computed over
    // linear1's (one tensor of (rows, ff) kept instead of two; after dropout the same gradient,
    // as dropped entries get none either way)
    Tensor[] forwardAndSaved = activation.forwardForLayer(arena, linear1.forward(arena,
        feedForwardInput));
    Tensor activated = drop(arena, forwardAndSaved[0], callSeed + 1, training);
    Tensor hidden = activation.derivativeFromOutput() ? activated : forwardAndSaved[1];
    Tensor feedForward = drop(arena, linear2.forward(arena, activated), callSeed + 2, training);
    Tensor residual2 = add(arena, afterAttention, feedForward);
    Tensor output = residual2;
    if (!normFirst) {
      second = norm2.forward(arena, residual2);
      output = second.output();
    }
    Context context = keepContext ? new Context(this, x, attended.context(), first.context(),
        second.context(), feedForwardInput, hidden, activated, callSeed, training) : null;
    return new Result(output, context);
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
      context.recording.consumeExplicitly("TransformerEncoderLayer.backward");
    }
    return backwardInternal(arena, context, gradOutput);
  }

  /** The backward without claiming the forward's recording (the graph's backward calls this). */
  Tensor backwardInternal(Arena arena, Context context, Tensor gradOutput) {
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
      throw new IllegalArgumentException("context: it was made by another"
          + " TransformerEncoderLayer; pass the context of this layer's forward");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (!gradOutput.shape().equals(context.input.shape())) {
      throw new IllegalArgumentException("gradOutput: expected shape " + context.input.shape()
          + " (the input's), got " + gradOutput.shape());
    }
    // second block: y = [norm2](a + drop(linear2(drop(act(linear1([norm2](a)))))))
    Tensor gradResidual2 = normFirst ? gradOutput : norm2.backward(arena, context.norm2, gradOutput);
    Tensor gradFeedForward = drop(arena, gradResidual2, context.seed + 2, context.dropped);
    Tensor gradActivated = linear2.backward(arena, context.activated, gradFeedForward);
    Tensor gradHidden = activation.backward(arena, context.hidden,
        drop(arena, gradActivated, context.seed + 1, context.dropped));
    Tensor gradFeedForwardInput = linear1.backward(arena, context.feedForwardInput, gradHidden);
    Tensor gradAfterAttention = normFirst
        ? add(arena, gradResidual2, norm2.backward(arena, context.norm2, gradFeedForwardInput))
        : add(arena, gradResidual2, gradFeedForwardInput);
    // first block: a = [norm1](x + drop(selfAttention([norm1](x))))
    Tensor gradResidual1 = normFirst ? gradAfterAttention
        : norm1.backward(arena, context.norm1, gradAfterAttention);
    Tensor gradAttentionInput = selfAttention.backwardSelf(arena, context.attention,
        drop(arena, gradResidual1, context.seed, context.dropped));
    return normFirst
        ? add(arena, gradResidual1, norm1.backward(arena, context.norm1, gradAttentionInput))
        : add(arena, gradResidual1, gradAttentionInput);
  }

  private static Tensor add(Arena arena, Tensor a, Tensor b) {
    return ResidualOps.add(arena, a, b);
  }

  private Tensor drop(Arena arena, Tensor x, long dropSeed, boolean training) {
    return ResidualOps.dropout(arena, x, dropout, dropSeed, training);
  }


  /** The embedding size. */
  public long dModel() {
    return dModel;
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
   * IllegalStateException}. Called once by {@link #close()}, after the parts are closed.
   */
  @Override
  protected void closeResources() {
    guard.close(() -> { });
  }
}
