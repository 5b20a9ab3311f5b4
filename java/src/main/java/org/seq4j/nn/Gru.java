package org.seq4j.nn;

/**
 * A gated recurrent unit network in PyTorch's form ({@code nn.GRU}): the reset gate multiplies the
 * recurrent product <em>including its bias</em> (oneDNN's linear-before-reset GRU).
 *
 * <pre>
 * r  = σ(W_ir x + b_ir + W_hr h + b_hr)
 * z  = σ(W_iz x + b_iz + W_hz h + b_hz)
 * n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
 * h' = (1 − z) ⊙ n + z ⊙ h
 * </pre>
 *
 * <p>Parameters per layer {@code k} and direction: {@code weight_ih_lk (3H, in)}, {@code
 * weight_hh_lk (3H, H)}, {@code bias_ih_lk}, {@code bias_hh_lk (3H)}, gates in PyTorch's order r,
 * z, n. See {@link RecurrentLayer} for shapes, training and threads.
 */
public final class Gru extends RecurrentLayer {
  private Gru(RecurrentConfig config) {
    super("Gru", config);
  }

  /** A builder for a GRU with these input and hidden sizes. */
  public static Builder builder(long inputSize, long hiddenSize) {
    return new Builder(inputSize, hiddenSize);
  }

  /** Builds a {@link Gru}. */
  public static final class Builder extends RecurrentBuilder<Builder> {
    private Builder(long inputSize, long hiddenSize) {
      super(inputSize, hiddenSize);
    }

    @Override
    Builder self() {
      return this;
    }

    /** The GRU. */
    public Gru build() {
      return new Gru(config(RecurrentConfig.Cell.GRU, false, 0));
    }
  }
}
