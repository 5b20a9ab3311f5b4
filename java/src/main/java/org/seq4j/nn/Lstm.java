package org.seq4j.nn;

/**
 * A long short-term memory network in the "vanilla LSTM" form of Greff et al. (2017), PyTorch's
 * {@code nn.LSTM} extended with optional peephole connections.
 *
 * <pre>
 * i  = σ(W_ii x + b_ii + W_hi h + b_hi + w_ci ⊙ c)      input gate
 * f  = σ(W_if x + b_if + W_hf h + b_hf + w_cf ⊙ c)      forget gate
 * g  = tanh(W_ig x + b_ig + W_hg h + b_hg)              block input
 * c' = f ⊙ c + i ⊙ g                                    the cell "highway"
 * o  = σ(W_io x + b_io + W_ho h + b_ho + w_co ⊙ c')     output gate, sees the new cell
 * h' = o ⊙ tanh(c')        (with projection: h' = W_hr (o ⊙ tanh(c')))
 * </pre>
 *
 * <p>Parameters, per layer {@code k} and direction (suffix {@code _reverse} for the backward one):
 * {@code weight_ih_lk (4H, in)}, {@code weight_hh_lk (4H, Hout)}, {@code bias_ih_lk},
 * {@code bias_hh_lk (4H)} with gates in PyTorch's order i, f, g, o; {@code weight_hr_lk (P, H)}
 * with projection; {@code weight_ci_lk}, {@code weight_cf_lk}, {@code weight_co_lk (H)} with
 * peepholes. All start uniform in ±1/√H, as in PyTorch.
 *
 * <pre>{@code
 * try (Lstm lstm = Lstm.builder(200, 200).numLayers(2).peepholes(true).build();
 *      Arena arena = Arena.ofConfined()) {
 *   Lstm.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
 *   Lstm.Gradients grads = lstm.backward(arena, result.context(), gradOutput, null);
 * }
 * }</pre>
 *
 * <p>See {@link RecurrentLayer} for shapes, training and threads.
 */
public final class Lstm extends RecurrentLayer {
  private Lstm(RecurrentConfig config) {
    super("Lstm", config);
  }

  /** A builder for an LSTM with these input and hidden sizes. */
  public static Builder builder(long inputSize, long hiddenSize) {
    return new Builder(inputSize, hiddenSize);
  }

  /** Whether this LSTM has peephole connections. */
  public boolean peepholes() {
    return config.peephole();
  }

  /** The projection size, 0 when there is none. */
  public long projSize() {
    return config.projSize();
  }

  /** Builds an {@link Lstm}. */
  public static final class Builder extends RecurrentBuilder<Builder> {
    private boolean peepholes;
    private long projSize;

    private Builder(long inputSize, long hiddenSize) {
      super(inputSize, hiddenSize);
    }

    @Override
    Builder self() {
      return this;
    }

    /** Peephole connections from the cell into the gates (default false). */
    public Builder peepholes(boolean peepholes) {
      this.peepholes = peepholes;
      return this;
    }

    /** Projects the hidden state to this size, as PyTorch's {@code proj_size} (default 0: none). */
    public Builder projSize(long projSize) {
      this.projSize = projSize;
      return this;
    }

    /** The LSTM. */
    public Lstm build() {
      return new Lstm(config(RecurrentConfig.Cell.LSTM, peepholes, projSize));
    }
  }
}
