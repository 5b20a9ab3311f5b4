/**
 * Layers with forward and backward passes.
 *
 * <ul>
 *   <li>Recurrent: {@link org.seq4j.nn.SimpleRnn}, {@link org.seq4j.nn.Lstm} (peepholes,
 *       projection) and {@link org.seq4j.nn.Gru}, multi-layer and bidirectional, with per-sample
 *       lengths and a streaming {@code step}. Each call runs on oneDNN's RNN primitives or on
 *       seq4j's own BLAS backend, pinned or chosen per call ({@link org.seq4j.Backend}).
 *   <li>Attention: {@link org.seq4j.nn.ScaledDotProductAttention} (memory-efficient, with masks,
 *       grouped-query heads and dropout) and {@link org.seq4j.nn.MultiHeadAttention} (with a cache
 *       for incremental decoding).
 *   <li>Transformer: {@link org.seq4j.nn.TransformerEncoderLayer}, {@link
 *       org.seq4j.nn.TransformerDecoderLayer} and their stacks {@link
 *       org.seq4j.nn.TransformerEncoder} and {@link org.seq4j.nn.TransformerDecoder}.
 *   <li>Building blocks: {@link org.seq4j.nn.Linear}, {@link org.seq4j.nn.LayerNorm}, {@link
 *       org.seq4j.nn.Embedding} (and sinusoidal positions) and the {@link
 *       org.seq4j.nn.Activation}s.
 * </ul>
 *
 * <p>Parameters carry PyTorch's names, shapes and gate orders, so weights move between seq4j and
 * PyTorch unchanged. A forward in {@link org.seq4j.nn.Mode#TRAINING} keeps what its backward needs
 * (a context in its result); {@code backward} returns the gradients of the inputs and adds the
 * parameter gradients into each {@link org.seq4j.nn.Parameter#grad()}. While a {@link
 * org.seq4j.Tape} is active, every training forward also records itself on it, so a model
 * composed of these layers is differentiated by one {@code tape.backward} instead of each backward
 * by hand.
 */
package org.seq4j.nn;
