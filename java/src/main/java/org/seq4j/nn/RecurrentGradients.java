package org.seq4j.nn;

import org.seq4j.Tensor;

/**
 * Gradients of the loss with respect to a recurrent layer's inputs; parameter gradients are added
 * into each {@link Parameter#grad()} instead.
 *
 * @param input the gradient of the input, in the input's layout
 * @param initialState the gradient of the initial state (also when the forward started from zeros)
 */
public record RecurrentGradients(Tensor input, RecurrentState initialState) {}
