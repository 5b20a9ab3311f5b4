package org.seq4j.bench;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;

/**
 * Whether oneDNN's OpenMP pool and OpenBLAS share the cores or fight over them, in milliseconds
 * per operation, for square products of side {@value #N}.
 *
 * <ul>
 *   <li>{@code onednnOnly}: one oneDNN product.
 *   <li>{@code blasOnly}: one BLAS-backend product (OpenBLAS single-threaded, the output split by
 *       seq4j across the OpenMP pool).
 *   <li>{@code mixedSeq4j}: a oneDNN product then a BLAS-backend product, as seq4j runs them; it
 *       should cost about {@code onednnOnly + blasOnly}.
 *   <li>{@code mixedRawOpenBlasOwnPool}: the same oneDNN product then OpenBLAS's {@code
 *       cblas_sgemm} called directly after {@code openblas_set_num_threads(<seq4j's threads>)}, so
 *       OpenBLAS's own pthreads pool starts while OpenMP's workers are still spinning after the
 *       oneDNN product: the oversubscribed configuration seq4j avoids. The gap to {@code
 *       mixedSeq4j} is what that avoidance is worth.
 * </ul>
 *
 * <p>The raw variant changes OpenBLAS's global thread count; its own state object restores seq4j's
 * setting (one thread) in its tear-down, and every benchmark runs in a JVM of its own (the class's
 * {@code Fork}), so it cannot disturb the others unless JMH is run with {@code -f 0}.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ThreadingBenchmark {
  /** The side of the square matrices. */
  public static final int N = 1024;

  private static final MatmulOptions ONEDNN = MatmulOptions.DEFAULT.backend(Backend.ONEDNN);
  private static final MatmulOptions BLAS = MatmulOptions.DEFAULT.backend(Backend.BLAS);

  /** Seeded inputs and two outputs, all {@code (N, N)}, in a shared arena. */
  @State(Scope.Benchmark)
  public static class Matrices {
    Arena arena;
    Tensor a; // (N, N)
    Tensor b; // (N, N)
    Tensor first; // (N, N): the oneDNN product
    Tensor second; // (N, N): the OpenBLAS product

    /** Allocates the tensors and runs each backend once to create oneDNN's plan. */
    @Setup
    public void setUp() {
      arena = Arena.ofShared();
      a = Tensor.randomNormal(arena, 1, N, N);
      b = Tensor.randomNormal(arena, 2, N, N);
      first = Tensor.zeros(arena, N, N);
      second = Tensor.zeros(arena, N, N);
      TensorOps.matmul(a, b, first, ONEDNN);
      TensorOps.matmul(a, b, second, BLAS);
    }

    /** Frees the tensors. */
    @TearDown
    public void tearDown() {
      arena.close();
    }
  }

  /**
   * OpenBLAS's own {@code cblas_sgemm} and {@code openblas_set_num_threads}, linked directly from
   * the OpenBLAS file seq4j loaded ({@code libopenblas-seq4j-<hash>.so.0} on Linux; the same
   * instance, since the library is already open), with OpenBLAS's pool set to seq4j's thread
   * count while this state lives.
   */
  @State(Scope.Benchmark)
  public static class RawOpenBlas {
    private static final int ROW_MAJOR = 101; // CblasRowMajor
    private static final int NO_TRANSPOSE = 111; // CblasNoTrans

    MethodHandle sgemm;
    MethodHandle setNumThreads;
    MethodHandle getNumThreads;

    /** Links the OpenBLAS functions and gives OpenBLAS its own pool of seq4j's thread count. */
    @Setup
    public void linkOpenBlas() throws Throwable {
      // The OpenBLAS file of natives.list: libopenblas-seq4j-<hash>.so.0 on Linux (its own
      // soname), libopenblas.0.dylib on macOS, libopenblas.dll on Windows.
      Path library = Seq4j.runtimeInfo().libraries().stream()
          .filter(p -> p.getFileName().toString().startsWith("libopenblas"))
          .findFirst()
          .orElseThrow(() -> new IllegalStateException(
              "seq4j loaded no libopenblas: " + Seq4j.runtimeInfo().libraries()));
      SymbolLookup openblas = SymbolLookup.libraryLookup(library, Arena.global());
      Linker linker = Linker.nativeLinker();
      // void cblas_sgemm(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
      sgemm = linker.downcallHandle(
          openblas.find("cblas_sgemm").orElseThrow(),
          FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
              JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT));
      setNumThreads = linker.downcallHandle(
          openblas.find("openblas_set_num_threads").orElseThrow(),
          FunctionDescriptor.ofVoid(JAVA_INT));
      getNumThreads = linker.downcallHandle(
          openblas.find("openblas_get_num_threads").orElseThrow(),
          FunctionDescriptor.of(JAVA_INT));
      int threads = Seq4j.threads();
      setNumThreads.invokeExact(threads);
      int actual = (int) getNumThreads.invokeExact();
      if (actual != threads) {
        throw new IllegalStateException(
            "openblas_set_num_threads(" + threads + ") left " + actual + " threads");
      }
    }

    /** Restores seq4j's setting: OpenBLAS single-threaded inside the OpenMP pool. */
    @TearDown
    public void restoreOpenBlasThreads() throws Throwable {
      setNumThreads.invokeExact(1);
    }

    /** {@code m.second = m.a · m.b} by {@code cblas_sgemm} on OpenBLAS's own pool. */
    void cblasSgemm(Matrices m) throws Throwable {
      MemorySegment aData = m.a.segment();
      MemorySegment bData = m.b.segment();
      MemorySegment cData = m.second.segment();
      sgemm.invokeExact(ROW_MAJOR, NO_TRANSPOSE, NO_TRANSPOSE, N, N, N,
          1f, aData, N, bData, N, 0f, cData, N);
    }
  }

  /** One oneDNN product. */
  @Benchmark
  public void onednnOnly(Matrices m) {
    TensorOps.matmul(m.a, m.b, m.first, ONEDNN);
  }

  /** One BLAS-backend product. */
  @Benchmark
  public void blasOnly(Matrices m) {
    TensorOps.matmul(m.a, m.b, m.second, BLAS);
  }

  /** A oneDNN product, then a BLAS-backend product: both on seq4j's one OpenMP pool. */
  @Benchmark
  public void mixedSeq4j(Matrices m) {
    TensorOps.matmul(m.a, m.b, m.first, ONEDNN);
    TensorOps.matmul(m.a, m.b, m.second, BLAS);
  }

  /** A oneDNN product, then {@code cblas_sgemm} on OpenBLAS's own pthreads pool. */
  @Benchmark
  public void mixedRawOpenBlasOwnPool(Matrices m, RawOpenBlas raw) throws Throwable {
    TensorOps.matmul(m.a, m.b, m.first, ONEDNN);
    raw.cblasSgemm(m);
  }

  /** Floating-point operations of one call of {@code benchmark} (a method name of this class). */
  public static double flops(String benchmark) {
    double product = MatmulBenchmark.flops(N);
    return benchmark.startsWith("mixed") ? 2 * product : product;
  }
}
