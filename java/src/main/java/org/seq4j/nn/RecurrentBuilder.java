package org.seq4j.nn;

import org.seq4j.Backend;
import org.seq4j.Seq4j;

/** The settings every recurrent builder shares ({@link Lstm}, {@link Gru}, {@link SimpleRnn}). */
abstract class RecurrentBuilder<B extends RecurrentBuilder<B>> {
  final long inputSize;
  final long hiddenSize;
  int numLayers = 1;
  boolean bidirectional;
  boolean bias = true;
  float dropout;
  boolean batchFirst;
  long seed = Seeds.DEFAULT_SEED;
  Backend backend;
  StepWeights stepWeights = StepWeights.FLOAT32;

  RecurrentBuilder(long inputSize, long hiddenSize) {
    this.inputSize = inputSize;
    this.hiddenSize = hiddenSize;
  }

  abstract B self();

  /** Stacked layers (default 1). */
  public B numLayers(int numLayers) {
    this.numLayers = numLayers;
    return self();
  }

  /** Whether to run a second, backward direction and concatenate (default false). */
  public B bidirectional(boolean bidirectional) {
    this.bidirectional = bidirectional;
    return self();
  }

  /** Whether the cells have biases (default true). */
  public B bias(boolean bias) {
    this.bias = bias;
    return self();
  }

  /** Dropout probability on the outputs of every layer but the last, in training (default 0). */
  public B dropout(float probability) {
    this.dropout = probability;
    return self();
  }

  /** Whether inputs and outputs are {@code (N, T, C)} (default false: {@code (T, N, C)}). */
  public B batchFirst(boolean batchFirst) {
    this.batchFirst = batchFirst;
    return self();
  }

  /** The seed of the initial parameters and of dropout (default fixed, so runs repeat). */
  public B seed(long seed) {
    this.seed = seed;
    return self();
  }

  /**
   * Pins this layer's backend (default: none, so {@link Seq4j#recurrentBackend()} decides at each
   * call). {@link Backend#AUTO} picks per call from the measured table.
   */
  public B backend(Backend backend) {
    if (backend == null) {
      throw new NullPointerException("backend");
    }
    this.backend = backend;
    return self();
  }

  /**
   * How the weights packed for the streaming step and small-batch inference are stored (default
   * {@link StepWeights#FLOAT32}); see {@link StepWeights} and {@link
   * RecurrentLayer#stepWeights(StepWeights)}, which changes it later.
   */
  public B stepWeights(StepWeights stepWeights) {
    if (stepWeights == null) {
      throw new NullPointerException("stepWeights");
    }
    this.stepWeights = stepWeights;
    return self();
  }

  RecurrentConfig config(RecurrentConfig.Cell cell, boolean peephole, long projSize) {
    return new RecurrentConfig(cell, inputSize, hiddenSize, numLayers, bidirectional, bias,
        peephole, projSize, dropout, batchFirst, seed, backend, stepWeights);
  }
}
