package org.seq4j.nn;

import org.seq4j.Tensor;

/**
 * What a recurrent forward pass returns.
 *
 * @param output every time step's output of the last layer: {@code (T, N, directions * Hout)}, or
 *     {@code (N, T, directions * Hout)} for a batch-first layer; zero past each sample's length
 * @param finalState the state after each sample's last step, to feed into the next call
 * @param context what {@code backward} needs, or null after an inference pass
 */
public record RecurrentResult(Tensor output, RecurrentState finalState, RecurrentContext context) {}
