package org.seq4j.nn;

/**
 * The simple (Elman) recurrent network of PyTorch's {@code nn.RNN}: {@code h' = act(W_ih x + b_ih
 * + W_hh h + b_hh)} with {@code act} tanh (default) or relu. Unfolded over time and trained by
 * backpropagation through time, its parameters are shared by every step and their gradients are
 * summed over the steps.
 *
 * <p>Parameters per layer {@code k} and direction: {@code weight_ih_lk (H, in)}, {@code
 * weight_hh_lk (H, H)}, {@code bias_ih_lk}, {@code bias_hh_lk (H)}. See {@link RecurrentLayer} for
 * shapes, training and threads.
 */
public final class SimpleRnn extends RecurrentLayer {
  /** The activation of a simple RNN. */
  public enum Nonlinearity {
    /** The hyperbolic tangent (PyTorch's default). */
    TANH,
    /**
     * The rectified linear unit. NaN propagates as in PyTorch ({@code relu(NaN) = NaN}) on the
     * BLAS backend; oneDNN's relu gives 0 for NaN (its vectorized max drops it).
     */
    RELU
  }

  private SimpleRnn(RecurrentConfig config) {
    super("SimpleRnn", config);
  }

  /** A builder for a simple RNN with these input and hidden sizes. */
  public static Builder builder(long inputSize, long hiddenSize) {
    return new Builder(inputSize, hiddenSize);
  }

  /** The activation. */
  public Nonlinearity nonlinearity() {
    return config.cell() == RecurrentConfig.Cell.RNN_RELU ? Nonlinearity.RELU
        : Nonlinearity.TANH;
  }

  /** Builds a {@link SimpleRnn}. */
  public static final class Builder extends RecurrentBuilder<Builder> {
    private Nonlinearity nonlinearity = Nonlinearity.TANH;

    private Builder(long inputSize, long hiddenSize) {
      super(inputSize, hiddenSize);
    }

    @Override
    Builder self() {
      return this;
    }

    /** The activation (default tanh). */
    public Builder nonlinearity(Nonlinearity nonlinearity) {
      this.nonlinearity = java.util.Objects.requireNonNull(nonlinearity, "nonlinearity");
      return this;
    }

    /** The simple RNN. */
    public SimpleRnn build() {
      return new SimpleRnn(config(
          nonlinearity == Nonlinearity.RELU ? RecurrentConfig.Cell.RNN_RELU
              : RecurrentConfig.Cell.RNN_TANH, false, 0));
    }
  }
}
