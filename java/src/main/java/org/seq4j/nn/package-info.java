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
 * <p>Every layer is a {@link org.seq4j.nn.Module}: parameters under PyTorch's dotted names,
 * shapes and gate orders, so {@code stateDict()} and safetensors checkpoints move between seq4j
 * and PyTorch unchanged; {@link org.seq4j.nn.Sequential}, {@link org.seq4j.nn.ModuleList}, {@link
 * org.seq4j.nn.Nonlinearity} and {@link org.seq4j.nn.Dropout} compose them. While gradients are
 * recorded ({@link org.seq4j.Autograd}), every forward records its backward, so {@code
 * loss.backward()} differentiates a whole model. The explicit {@code backward} of each layer (on
 * the context of a {@link org.seq4j.nn.Mode#TRAINING} forward) stays for expert use; it and the
 * graph's backward cannot both run for one forward.
 */
package org.seq4j.nn;
