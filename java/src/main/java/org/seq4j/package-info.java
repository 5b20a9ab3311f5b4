/**
 * seq4j: fast sequence models (RNN, LSTM, GRU, attention, Transformer layers) for the JVM, on
 * native kernels. This package holds tensors and their ops ({@link org.seq4j.Tensor}, {@link
 * org.seq4j.TensorOps}) and the runtime settings ({@link org.seq4j.Seq4j}); the layers are in
 * {@link org.seq4j.nn}, training in {@link org.seq4j.train}, safetensors files in {@link
 * org.seq4j.io}.
 *
 * <h2>Tutorial</h2>
 *
 * <p>Tensors are off-heap float blocks created in an {@link java.lang.foreign.Arena} you own; they
 * die with it:
 *
 * <pre>{@code
 * try (Arena arena = Arena.ofConfined()) {
 *   Tensor a = Tensor.randomNormal(arena, 1, 64, 128);    // seed 1, shape (64, 128)
 *   Tensor b = Tensor.randomNormal(arena, 2, 128, 32);
 *   Tensor c = TensorOps.matmul(arena, a, b);             // (64, 32), on oneDNN
 *   TensorOps.matmul(a, b, c, MatmulOptions.DEFAULT.accumulate().backend(Backend.BLAS));
 *   System.out.println(Seq4j.runtimeInfo());
 * }
 * }</pre>
 *
 * <h2>Running</h2>
 *
 * <p>seq4j needs JDK 22 or later and native access: {@code --enable-native-access=ALL-UNNAMED} on
 * the class path, {@code --enable-native-access=org.seq4j} on the module path. Its native
 * libraries come from the JARs on the class path (seq4j, {@code org.bytedeco:dnnl} and {@code
 * org.bytedeco:openblas} for the platform). The lookup order is: the folder named by {@code
 * -Dseq4j.library.path}, if set (then nothing else is tried); else extraction, once, from the
 * class path into a cache folder under {@code -Dseq4j.cache.dir}, or {@code
 * $XDG_CACHE_HOME/seq4j}, or {@code ~/.cache/seq4j}, each file checked against the SHA-256 of the
 * manifest built with the library.
 *
 * <h2>Errors</h2>
 *
 * <p>A wrong shape, size or option is an {@link IllegalArgumentException} naming the argument, its
 * expected and its actual value; a tensor of a closed arena an {@link IllegalStateException}; one
 * of another thread's confined arena a {@link WrongThreadException}; a failure inside native code a
 * {@link org.seq4j.Seq4jException} with the native message.
 */
package org.seq4j;
