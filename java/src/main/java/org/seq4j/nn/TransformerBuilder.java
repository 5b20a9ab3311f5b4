package org.seq4j.nn;

/**
 * The options the Transformer layer builders share ({@link TransformerEncoderLayer.Builder},
 * {@link TransformerDecoderLayer.Builder}), with PyTorch's defaults: a feed-forward network of
 * 2048, dropout 0.1, ReLU, post-norm, time-major inputs.
 */
abstract class TransformerBuilder<B extends TransformerBuilder<B>> {
  final long dModel;
  final int heads;
  long dimFeedforward = 2048;
  float dropout = 0.1f;
  Activation activation = Activation.RELU;
  boolean normFirst;
  boolean batchFirst;
  long seed = Seeds.DEFAULT_SEED;

  TransformerBuilder(long dModel, int heads) {
    this.dModel = dModel;
    this.heads = heads;
  }

  abstract B self();

  /** The hidden size of the feed-forward network (default 2048). */
  public B dimFeedforward(long dimFeedforward) {
    this.dimFeedforward = dimFeedforward;
    return self();
  }

  /**
   * The dropout probability of the attention weights, the residual branches and the feed-forward
   * network, in training (default 0.1).
   */
  public B dropout(float probability) {
    this.dropout = probability;
    return self();
  }

  /** The feed-forward network's activation (default {@link Activation#RELU}). */
  public B activation(Activation activation) {
    this.activation = java.util.Objects.requireNonNull(activation, "activation");
    return self();
  }

  /** Pre-norm (normalise before each block) instead of post-norm (default false). */
  public B normFirst(boolean normFirst) {
    this.normFirst = normFirst;
    return self();
  }

  /** Whether inputs and outputs are {@code (N, T, dModel)} (default false: {@code (T, N, ...)}). */
  public B batchFirst(boolean batchFirst) {
    this.batchFirst = batchFirst;
    return self();
  }

  /** The seed of the initial weights and of dropout (default fixed, so runs repeat). */
  public B seed(long seed) {
    this.seed = seed;
    return self();
  }

  /** Checks every option before any part is made (so a bad one allocates nothing). */
  void checkOptions() {
    if (dModel < 1 || heads < 1 || dModel % heads != 0) {
      throw new IllegalArgumentException("dModel, heads: expected dModel divisible by heads,"
          + " both >= 1, got " + dModel + " and " + heads);
    }
    if (dimFeedforward < 1) {
      throw new IllegalArgumentException("dimFeedforward: expected >= 1, got " + dimFeedforward);
    }
    if (!(dropout >= 0 && dropout < 1)) {
      throw new IllegalArgumentException("dropout: expected 0 <= p < 1, got " + dropout);
    }
  }

  /** The layer's attention block; {@code offset} is added to the seed. */
  MultiHeadAttention attention(int offset) {
    return MultiHeadAttention.builder(dModel, heads).dropout(dropout).batchFirst(batchFirst)
        .seed(seed + offset).build();
  }
}
