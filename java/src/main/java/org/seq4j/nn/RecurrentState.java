package org.seq4j.nn;

import org.seq4j.Tensor;

/**
 * The state of a recurrent network between calls: {@code hidden} of shape {@code (layers *
 * directions, N, Hout)} and, for an LSTM, {@code cell} of shape {@code (layers * directions, N,
 * hidden)}; {@code cell} is null for other layers. Index {@code layer * directions + direction},
 * as in PyTorch.
 *
 * @param hidden the hidden states h
 * @param cell the LSTM cell states c, or null
 */
public record RecurrentState(Tensor hidden, Tensor cell) {
  /** A state without a cell (simple RNN, GRU). */
  public static RecurrentState of(Tensor hidden) {
    return new RecurrentState(hidden, null);
  }
}
