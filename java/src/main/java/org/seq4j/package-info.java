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
 * libraries come from the JAR {@code org.seq4j:seq4j-native} of the platform (classifier {@code
 * linux-x86_64}, {@code linux-aarch64}, {@code macosx-arm64} or {@code windows-x86_64}), on the
 * class path or the module path, and are extracted once into a cache folder; the lookup order
 * is: a folder named by {@code -Dseq4j.library.path}, then extraction into {@code
 * -Dseq4j.cache.dir}, or by default the user cache ({@code ~/.cache/seq4j}) with the per-user
 * temp folder as fallback. {@link org.seq4j.Seq4j#runtimeInfo()} says which was used.
 *
 * <h2>Errors</h2>
 *
 * <p>A wrong shape, size or option is an {@link IllegalArgumentException} naming the argument, its
 * expected and its actual value; a tensor of a closed arena an {@link IllegalStateException}; one
 * of another thread's confined arena a {@link WrongThreadException}; a failure inside native code a
 * {@link org.seq4j.Seq4jException} with the native message.
 */
package org.seq4j;
