package org.seq4j;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.Map;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.NativeBindings;
import org.seq4j.internal.NativeLoader;

/**
 * The seq4j runtime: version, threads, and what was loaded.
 *
 * <p>Threads: oneDNN and seq4j's kernels share one OpenMP pool whose size is {@link
 * #setThreads(int)}; OpenBLAS runs single-threaded inside it, so the pools never compete for
 * cores. The initial size is {@code OMP_NUM_THREADS} or the number of cores.
 *
 * <p>Reproducibility (README, "Reproducibility"; tested bit for bit by {@code
 * ReproducibilityTest}): on one machine and build (the same CPU, hence the same kernel copies, see
 * {@link #selectKernels}), the same inputs, seeds and thread count give the same bits, run after
 * run, for every op. Across thread counts (1, 2, many):
 * <ul>
 *   <li>always the same bits: attention forward and backward (tiles fixed by the shapes, each
 *       output written by one task), layer norm, the losses and {@link
 *       org.seq4j.train.GradientClipping}'s norm (sums in chunks fixed by the length, added in
 *       order), the optimizers (elementwise), activations, embedding, dropout;
 *   <li>not in the default mode, the same bits in deterministic mode ({@link #setDeterministic}):
 *       the matrix product on {@link Backend#BLAS} (one output block per thread) and everything
 *       built on it, the recurrent layers on BLAS included;
 *   <li>the same bits in the tests but not guaranteed by oneDNN, which partitions its work by
 *       thread count: the matrix product on {@link Backend#ONEDNN} (guaranteed in deterministic
 *       mode) and recurrent layers pinned to ONEDNN (AUTO runs on BLAS in deterministic mode).
 * </ul>
 */
public final class Seq4j {
  private Seq4j() {}

  /** seq4j's version; the native library's version is checked to be the same. */
  public static String version() {
    String nativeVersion = NativeBindings.version();
    String javaVersion = NativeLoader.javaVersion();
    if (!nativeVersion.equals(javaVersion)) {
      throw new IllegalStateException(
          "libseq4j is version " + nativeVersion + " but the seq4j classes are " + javaVersion
              + "; the library loaded from " + NativeBindings.loaded().folder()
              + " does not belong to this JAR");
    }
    return javaVersion;
  }

  /**
   * Sets the number of threads seq4j uses for every op, in every Java thread.
   *
   * @param threads at least 1
   */
  public static void setThreads(int threads) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads: expected >= 1, got " + threads);
    }
    NativeBindings.setThreads(threads);
  }

  private static volatile Backend recurrentBackend = Backend.AUTO;

  /**
   * Pins the backend of every recurrent layer that was not given one by its builder (the
   * builders' {@code backend(...)}): {@link Backend#ONEDNN}, {@link Backend#BLAS}, or {@link
   * Backend#AUTO} (the default), which picks per call from a small table measured in {@code
   * bench/} (README, "Recurrent backends"). All backends agree within the recurrent tolerance.
   * A training forward's backward always runs on the backend its forward ran on.
   */
  public static void setRecurrentBackend(Backend backend) {
    if (backend == null) {
      throw new NullPointerException("backend");
    }
    recurrentBackend = backend;
  }

  /** The recurrent layers' global backend: see {@link #setRecurrentBackend}. */
  public static Backend recurrentBackend() {
    return recurrentBackend;
  }

  /**
   * Forces one copy of seq4j's own vectorized kernels (the BLAS backend's cell kernels and
   * attention's tile kernels, each in an AVX-512, an AVX2 and a baseline copy), for tests of the
   * fallbacks and for comparisons; {@link KernelIsa#BEST} (the default) is the one chosen for the
   * CPU at load. Call it while no kernels run.
   *
   * @return the copy in use before ({@link KernelIsa#BASELINE}, {@link KernelIsa#AVX2} or {@link
   *     KernelIsa#AVX512}, never BEST)
   * @throws Seq4jException when the CPU lacks the instruction set
   */
  public static KernelIsa selectKernels(KernelIsa isa) {
    if (isa == null) {
      throw new NullPointerException("isa");
    }
    return AbiConstants.isa(NativeBindings.selectKernels(AbiConstants.isa(isa)));
  }

  /** The number of threads seq4j uses. */
  public static int threads() {
    return (int) NativeBindings.getThreads();
  }

  /**
   * Turns deterministic mode on or off (off by default; for the whole process): with it on, every
   * result is the same bits for any number of threads ({@link #setThreads}, {@code
   * OMP_NUM_THREADS}), not only for the same number (see "Reproducibility" in this class's
   * documentation). What it changes: the matrix product on both backends ({@link
   * TensorOps#matmul}, {@code Linear}, the attention layers' projections and the BLAS recurrent
   * backend's large products) runs as blocks of 256 output columns or rows fixed by the shape,
   * each on one thread, instead of one block per thread (oneDNN's product may also split the
   * summed dimension across threads); and recurrent layers left on {@link Backend#AUTO} run on
   * {@link Backend#BLAS}, since oneDNN's recurrent primitives split their work by thread count. A
   * layer pinned to {@link Backend#ONEDNN} is left as it is, and is then reproducible only for the
   * same thread count. The cost: products that one large block per thread served better run a
   * little slower. Call it while no ops run.
   */
  public static void setDeterministic(boolean on) {
    NativeBindings.setDeterministic(on);
  }

  /** Whether deterministic mode is on: see {@link #setDeterministic}. */
  public static boolean deterministic() {
    return NativeBindings.deterministic();
  }

  /**
   * Frees the large native blocks seq4j keeps for reuse after their arenas closed (at most 1 GiB;
   * a training loop reuses its workspaces through them). Memory of open arenas is not affected.
   *
   * @return the bytes freed
   */
  public static long releaseCachedMemory() {
    long bytes = org.seq4j.internal.NativeMemory.cachedBytes();
    org.seq4j.internal.NativeMemory.releaseCached();
    return bytes;
  }

  /** What was loaded (oneDNN version and ISA, OpenBLAS configuration and core) and from where. */
  public static RuntimeInfo runtimeInfo() {
    Map<String, String> details = new LinkedHashMap<>();
    for (String line : NativeBindings.runtimeInfo().split("\n")) {
      int equals = line.indexOf('=');
      if (equals > 0) {
        details.put(line.substring(0, equals), line.substring(equals + 1));
      }
    }
    NativeLoader.Loaded loaded = NativeBindings.loaded();
    return new RuntimeInfo(
        version(),
        Integer.parseInt(details.getOrDefault("seq4j.threads", "0")),
        details.getOrDefault("onednn.version", "?"),
        details.getOrDefault("onednn.isa", "?"),
        details.getOrDefault("openblas.config", "?"),
        details.getOrDefault("openblas.core", "?"),
        details.getOrDefault("openblas.coretype_env", ""),
        Integer.parseInt(details.getOrDefault("openblas.threads", "0")),
        loaded.folder(),
        loaded.source(),
        loaded.libraries(),
        Map.copyOf(details));
  }

  /**
   * Prints {@link #runtimeInfo()} and checks a matrix product on both backends: {@code java
   * --enable-native-access=ALL-UNNAMED -cp <seq4j and seq4j-native JARs> org.seq4j.Seq4j}.
   *
   * @param args ignored
   */
  public static void main(String[] args) {
    System.out.println(runtimeInfo());
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
      Tensor b = Tensor.fromArray(arena, new float[] {7, 8, 9, 10, 11, 12}, 3, 2);
      for (Backend backend : new Backend[] {Backend.ONEDNN, Backend.BLAS}) {
        Tensor c = Tensor.zeros(arena, 2, 2);
        TensorOps.matmul(a, b, c, MatmulOptions.DEFAULT.backend(backend));
        System.out.println("a · b on " + backend + " = " + c);
      }
    }
  }
}
