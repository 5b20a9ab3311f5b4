package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.CallGuard;

/**
 * One Transformer decoder layer, PyTorch's {@code nn.TransformerDecoderLayer}: masked
 * self-attention over the target, cross-attention from the target to the encoder's output
 * ("memory"), and a feed-forward network, each with dropout and a residual connection, normalised
 * after (post-norm, default) or before (pre-norm) each block.
 *
 * <p>Parameters under PyTorch's names: {@code self_attn.*}, {@code multihead_attn.*}, {@code
 * linear1.*}, {@code linear2.*}, {@code norm1.*}, {@code norm2.*}, {@code norm3.*}. Shapes {@code
 * (T, N, dModel)} and memory {@code (S, N, dModel)}, or batch-first.
 *
 * <p>While gradients are recorded ({@link Autograd}), a {@link Mode#TRAINING} forward records its
 * backward as one operation (into the target and the memory); the explicit {@link #backward} on
 * the same forward then throws (and the other way round). Dropout applies in training mode ({@link
 * #isTraining()}). {@link #forwardStep} is for inference: a backward reaching it throws.
 */
public final class TransformerDecoderLayer extends Module {
  private final float dropout;
  private final boolean normFirst;
  private final Activation activation;
  private final MultiHeadAttention selfAttention;
  private final MultiHeadAttention crossAttention;
  private final Linear linear1;
  private final Linear linear2;
  private final LayerNorm norm1;
  private final LayerNorm norm2;
  private final LayerNorm norm3;
  private final Seeds.DropoutSeeds dropoutSeeds;
  private static final String CLOSED = "TransformerDecoderLayer: the layer is closed";
  private final CallGuard guard = new CallGuard("TransformerDecoderLayer", "layer");

  /** What the backward needs. */
  public static final class Context {
    private final TransformerDecoderLayer owner;
    private final Tensor target;
    private final MultiHeadAttention.Context self;
    private final MultiHeadAttention.Context cross;
    private final LayerNorm.Context norm1;
    private final LayerNorm.Context norm2;
    private final LayerNorm.Context norm3;
    private final Tensor feedForwardInput;
    /** What the activation's derivative reads: its input, or for ReLU its output. */
    private final Tensor hidden;
    private final Tensor activated;
    private final long seed;
    private final boolean dropped;
    private Autograd.Recording recording;

    private Context(TransformerDecoderLayer owner, Tensor target, MultiHeadAttention.Context self,
        MultiHeadAttention.Context cross, LayerNorm.Context norm1, LayerNorm.Context norm2,
        LayerNorm.Context norm3, Tensor feedForwardInput, Tensor hidden, Tensor activated,
        long seed, boolean dropped) {
      this.dropped = dropped;
      this.owner = owner;
      this.target = target;
      this.self = self;
      this.cross = cross;
      this.norm1 = norm1;
      this.norm2 = norm2;
      this.norm3 = norm3;
      this.feedForwardInput = feedForwardInput;
      this.hidden = hidden;
      this.activated = activated;
      this.seed = seed;
    }
  }

  /** The output and, after a training forward, the context of its backward. */
  public record Result(Tensor output, Context context) {}

  /** Gradients of the target and of the memory. */
  public record Gradients(Tensor target, Tensor memory) {}

  /** A builder of a layer over embeddings of size {@code dModel} with {@code heads} heads. */
  public static Builder builder(long dModel, int heads) {
    return new Builder(dModel, heads);
  }

  /** Builds a {@link TransformerDecoderLayer}; see {@link TransformerBuilder} for the options. */
  public static final class Builder extends TransformerBuilder<Builder> {
    private Builder(long dModel, int heads) {
      super(dModel, heads);
    }

    @Override
    Builder self() {
      return this;
    }

    /** The layer. */
    public TransformerDecoderLayer build() {
      return new TransformerDecoderLayer(this);
    }
  }

  private TransformerDecoderLayer(Builder options) {
    options.checkOptions(); // every option first: a bad one allocates nothing
    this.dropout = options.dropout;
    this.normFirst = options.normFirst;
    this.activation = options.activation;
    this.dropoutSeeds = new Seeds.DropoutSeeds(options.seed);
    Parts parts = new Parts(); // and a part that fails frees those made before it
    try {
      this.selfAttention = parts.add(options.attention(0));
      this.crossAttention = parts.add(options.attention(1));
      this.linear1 = parts.add(
          new Linear(options.dModel, options.dimFeedforward, true, options.seed + 2));
      this.linear2 = parts.add(
          new Linear(options.dimFeedforward, options.dModel, true, options.seed + 3));
      this.norm1 = parts.add(new LayerNorm(options.dModel));
      this.norm2 = parts.add(new LayerNorm(options.dModel));
      this.norm3 = parts.add(new LayerNorm(options.dModel));
    } catch (RuntimeException | Error e) {
      parts.closeAfterFailure(e);
      throw e;
    }
    // PyTorch's attribute names and order; the tree closes them (the last first)
    register("self_attn", selfAttention);
    register("multihead_attn", crossAttention);
    register("linear1", linear1);
    register("linear2", linear2);
    register("norm1", norm1);
    register("norm2", norm2);
    register("norm3", norm3);
  }

  /** The target, the memory and every parameter's data: the inputs of a recorded forward. */
  private List<Tensor> recordedInputs(Tensor target, Tensor memory) {
    List<Tensor> inputs = new ArrayList<>();
    inputs.add(target);
    inputs.add(memory);
    for (Parameter p : namedParameters().values()) {
      inputs.add(p.data());
    }
    return inputs;
  }

  /**
   * Decodes {@code target} against {@code memory}.
   *
   * @param targetOptions masks of the self-attention ({@code tgt_mask}, causal for training a
   *     decoder, {@code tgt_key_padding_mask})
   * @param memoryOptions masks of the cross-attention ({@code memory_key_padding_mask}, ...)
   */
  public Result forward(Arena arena, Tensor target, Tensor memory,
      ScaledDotProductAttention.Options targetOptions,
      ScaledDotProductAttention.Options memoryOptions, Mode mode) {
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    return forward(arena, target, memory, targetOptions, memoryOptions, mode == Mode.TRAINING,
        mode == Mode.TRAINING && isTraining());
  }

  /** The forward of every entry: {@code keepContext} saves (and records), {@code training} drops. */
  Result forward(Arena arena, Tensor target, Tensor memory,
      ScaledDotProductAttention.Options targetOptions,
      ScaledDotProductAttention.Options memoryOptions, boolean keepContext, boolean training) {
    enter();
    try {
      List<Tensor> inputs = recordedInputs(target, memory);
      Result result;
      try (var off = Autograd.noGrad()) {
        result = forwardUnguarded(arena, target, memory, targetOptions, memoryOptions,
            keepContext, training);
      }
      Context context = result.context();
      String call = "TransformerDecoderLayer.forward";
      if (context == null) {
        Autograd.recordUnsupported(call + " in Mode.INFERENCE", "run it in Mode.TRAINING to"
            + " compute gradients, or under Autograd.noGrad() when none are wanted", inputs,
            List.of(result.output()));
      } else {
        context.recording = Autograd.recordConsumable(call, inputs, List.of(result.output()),
            inputs, (scratch, g) -> {
              Gradients grads = backwardInternal(scratch, context, g[0]);
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
    checkSequences(target, "target", memory);
    if (targetOptions == null) {
      throw new NullPointerException("targetOptions");
    }
    if (memoryOptions == null) {
      throw new NullPointerException("memoryOptions");
    }
    long callSeed = dropoutSeeds.next();
    // block 1: self-attention
    LayerNorm.Result n1 = normFirst ? norm1.forward(arena, target) : null;
    Tensor selfInput = normFirst ? n1.output() : target;
    MultiHeadAttention.Result self = selfAttention.forward(arena, selfInput, selfInput,
        selfInput, targetOptions, false, true, keepContext, training,
        "TransformerDecoderLayer.forward");
    Tensor r1 = add(arena, target, drop(arena, self.output(), callSeed, training));
    if (!normFirst) {
      n1 = norm1.forward(arena, r1);
    }
    Tensor x1 = normFirst ? r1 : n1.output();
    // block 2: cross-attention to the memory
    LayerNorm.Result n2 = normFirst ? norm2.forward(arena, x1) : null;
    Tensor crossInput = normFirst ? n2.output() : x1;
    MultiHeadAttention.Result cross = crossAttention.forward(arena, crossInput, memory, memory,
        memoryOptions, false, true, keepContext, training, "TransformerDecoderLayer.forward");
    Tensor r2 = add(arena, x1, drop(arena, cross.output(), callSeed + 1, training));
    if (!normFirst) {
      n2 = norm2.forward(arena, r2);
    }
    Tensor x2 = normFirst ? r2 : n2.output();
    // block 3: feed-forward
    LayerNorm.Result n3 = normFirst ? norm3.forward(arena, x2) : null;
    Tensor feedForwardInput = normFirst ? n3.output() : x2;
    // hidden: what the activation's backward reads f' from; for ReLU its output, computed over
    // linear1's (one tensor of (rows, ff) kept instead of two; after dropout the same gradient,
    // as dropped entries get none either way)
    Tensor[] forwardAndSaved = activation.forwardForLayer(arena, linear1.forward(arena,
        feedForwardInput));
    Tensor activated = drop(arena, forwardAndSaved[0], callSeed + 2, training);
    Tensor hidden = activation.derivativeFromOutput() ? activated : forwardAndSaved[1];
    Tensor feedForward = drop(arena, linear2.forward(arena, activated), callSeed + 3, training);
    Tensor r3 = add(arena, x2, feedForward);
    if (!normFirst) {
      n3 = norm3.forward(arena, r3);
    }
    Tensor output = normFirst ? r3 : n3.output();
    Context context = keepContext ? new Context(this, target, self.context(), cross.context(),
        n1.context(), n2.context(), n3.context(), feedForwardInput, hidden, activated, callSeed,
        training) : null;
    return new Result(output, context);
  }

  /** The self-attention cache of incremental decoding; see {@link #forwardStep}. */
  public MultiHeadAttention.Cache newCache(Arena arena, long batch, long capacity) {
    enter();
    try {
      return newCacheUnguarded(arena, batch, capacity);
    } catch (IllegalStateException e) {
      throw closedDuring(e);
    } finally {
      guard.exit();
    }
  }

  private MultiHeadAttention.Cache newCacheUnguarded(Arena arena, long batch, long capacity) {
    return selfAttention.newCache(arena, batch, capacity);
  }

  /**
   * Decodes new target positions (inference) given the cache of the earlier ones: equal to a
   * {@link #forward} with causal self-attention over the whole target, position by position, at
   * O(t) work for position t in the self-attention. The memory's keys and values are projected
   * again at each call (constant in t).
   */
  public Tensor forwardStep(Arena arena, Tensor targetStep, Tensor memory,
      ScaledDotProductAttention.Options memoryOptions, MultiHeadAttention.Cache cache) {
    enter();
    try {
      List<Tensor> inputs = recordedInputs(targetStep, memory);
      Tensor out;
      try (var off = Autograd.noGrad()) {
        out = forwardStepUnguarded(arena, targetStep, memory, memoryOptions, cache);
      }
      Autograd.recordUnsupported("TransformerDecoderLayer.forwardStep", "incremental decoding"
          + " is for inference: run it under Autograd.noGrad(), or train with forward in"
          + " Mode.TRAINING", inputs, List.of(out));
      return out;
    } catch (IllegalStateException e) {
      throw closedDuring(e);
    } finally {
      guard.exit();
    }
  }

  private Tensor forwardStepUnguarded(Arena arena, Tensor targetStep, Tensor memory,
      ScaledDotProductAttention.Options memoryOptions, MultiHeadAttention.Cache cache) {
    checkSequences(targetStep, "targetStep", memory);
    LayerNorm.Result n1 = normFirst ? norm1.forward(arena, targetStep) : null;
    Tensor selfInput = normFirst ? n1.output() : targetStep;
    Tensor r1 = add(arena, targetStep, selfAttention.forwardStep(arena, selfInput, cache));
    Tensor x1 = normFirst ? r1 : norm1.forward(arena, r1).output();
    Tensor crossInput = normFirst ? norm2.forward(arena, x1).output() : x1;
    Tensor r2 = add(arena, x1, crossAttention.forward(arena, crossInput, memory, memory,
        memoryOptions, Mode.INFERENCE).output());
    Tensor x2 = normFirst ? r2 : norm2.forward(arena, r2).output();
    Tensor feedForwardInput = normFirst ? norm3.forward(arena, x2).output() : x2;
    Tensor feedForward = linear2.forward(arena,
        activation.forward(arena, linear1.forward(arena, feedForwardInput)));
    Tensor r3 = add(arena, x2, feedForward);
    return normFirst ? r3 : norm3.forward(arena, r3).output();
  }

  /**
   * Gradients of the target and the memory; adds into every parameter's gradient.
   *
   * @throws IllegalStateException if the graph's backward already ran through this forward
   */
  public Gradients backward(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner == this && context.recording != null) {
      context.recording.consumeExplicitly("TransformerDecoderLayer.backward");
    }
    return backwardInternal(arena, context, gradOutput);
  }

  /** The backward without claiming the forward's recording (the graph's backward calls this). */
  Gradients backwardInternal(Arena arena, Context context, Tensor gradOutput) {
    enter();
    try (var off = Autograd.noGrad()) {
      return backwardUnguarded(arena, context, gradOutput);
    } catch (IllegalStateException e) {
      throw closedDuring(e);
    } finally {
      guard.exit();
    }
  }

  private Gradients backwardUnguarded(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another"
          + " TransformerDecoderLayer; pass the context of this layer's forward");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (!gradOutput.shape().equals(context.target.shape())) {
      throw new IllegalArgumentException("gradOutput: expected shape " + context.target.shape()
          + " (the target's), got " + gradOutput.shape());
    }
    // block 3
    Tensor gr3 = normFirst ? gradOutput : norm3.backward(arena, context.norm3, gradOutput);
    Tensor gradActivated = linear2.backward(arena, context.activated,
        drop(arena, gr3, context.seed + 3, context.dropped));
    Tensor gradHidden = activation.backward(arena, context.hidden,
        drop(arena, gradActivated, context.seed + 2, context.dropped));
    Tensor gradFeedForwardInput = linear1.backward(arena, context.feedForwardInput, gradHidden);
    Tensor gx2 = normFirst
        ? add(arena, gr3, norm3.backward(arena, context.norm3, gradFeedForwardInput))
        : add(arena, gr3, gradFeedForwardInput);
    // block 2
    Tensor gr2 = normFirst ? gx2 : norm2.backward(arena, context.norm2, gx2);
    MultiHeadAttention.Gradients cross = crossAttention.backwardInternal(arena, context.cross,
        drop(arena, gr2, context.seed + 1, context.dropped), null);
    Tensor gradMemory = add(arena, cross.key(), cross.value());
    Tensor gx1 = normFirst
        ? add(arena, gr2, norm2.backward(arena, context.norm2, cross.query()))
        : add(arena, gr2, cross.query());
    // block 1
    Tensor gr1 = normFirst ? gx1 : norm1.backward(arena, context.norm1, gx1);
    Tensor gradSelfInput = selfAttention.backwardSelf(arena, context.self,
        drop(arena, gr1, context.seed, context.dropped));
    Tensor gradTarget = normFirst
        ? add(arena, gr1, norm1.backward(arena, context.norm1, gradSelfInput))
        : add(arena, gr1, gradSelfInput);
    return new Gradients(gradTarget, gradMemory);
  }

  /** The target and memory under their own names (not the attention's query and key). */
  private void checkSequences(Tensor target, String targetName, Tensor memory) {
    long dModel = crossAttention.embedDimension();
    boolean batchFirst = crossAttention.isBatchFirst();
    SequenceChecks.requireSequence(target, targetName, "T", dModel, batchFirst);
    SequenceChecks.requireSequence(memory, "memory", "S", dModel, batchFirst);
    SequenceChecks.requireSameBatch(target, targetName, memory, "memory", batchFirst);
  }

  private static Tensor add(Arena arena, Tensor a, Tensor b) {
    return ResidualOps.add(arena, a, b);
  }

  private Tensor drop(Arena arena, Tensor x, long dropSeed, boolean training) {
    return ResidualOps.dropout(arena, x, dropout, dropSeed, training);
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
