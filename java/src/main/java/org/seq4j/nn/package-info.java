/**
 * Layers with forward and backward passes: {@link org.seq4j.nn.SimpleRnn}, {@link
 * org.seq4j.nn.Lstm} (peepholes, projection) and {@link org.seq4j.nn.Gru} on oneDNN's RNN
 * primitives, and {@link org.seq4j.nn.Linear}.
 *
 * <p>Parameters carry PyTorch's names, shapes and gate orders, so weights move between seq4j and
 * PyTorch unchanged. A training forward returns a context; {@code backward} returns the gradients
 * of the inputs and adds the parameter gradients into each {@link org.seq4j.nn.Parameter#grad()}.
 */
package org.seq4j.nn;
