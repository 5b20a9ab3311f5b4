package org.seq4j.bench;

import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;

/**
 * The GEMM peak: {@code out (n, n) = a (n, n) · b (n, n)} in float32 on each backend, in
 * milliseconds per product.
 *
 * <p>One product is {@code 2 n³} floating-point operations, so {@code GFLOP/s = 2 n³ / (time in
 * ms · 10⁶)}; {@link BenchReport} prints that figure, and the largest one of a run is the "GEMM
 * peak" the other benchmarks of the same run are compared with. {@code ONEDNN} is oneDNN's
 * {@code dnnl_sgemm} on its OpenMP pool; {@code BLAS} is OpenBLAS's single-threaded {@code sgemm}
 * with the output split by seq4j across the same OpenMP pool.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class MatmulBenchmark {
  /** The side of the three square matrices. */
  @Param({"256", "1024", "2048"})
  public int n;

  /** The backend the product is pinned to. */
  @Param({"ONEDNN", "BLAS"})
  public Backend backend;

  private Arena arena;
  private Tensor a; // (n, n)
  private Tensor b; // (n, n)
  private Tensor out; // (n, n)
  private MatmulOptions options;

  /** Seeded random inputs and a zeroed output, and one product to create oneDNN's plan. */
  @Setup
  public void setUp() {
    arena = Arena.ofShared();
    a = Tensor.randomNormal(arena, 1, n, n);
    b = Tensor.randomNormal(arena, 2, n, n);
    out = Tensor.zeros(arena, n, n);
    options = MatmulOptions.DEFAULT.backend(backend);
    TensorOps.matmul(a, b, out, options);
  }

  /** Frees the tensors. */
  @TearDown
  public void tearDown() {
    arena.close();
  }

  /** One product; its result stays in native memory, which the JIT cannot remove. */
  @Benchmark
  public void matmul() {
    TensorOps.matmul(a, b, out, options);
  }

  /** Floating-point operations of one product of side {@code n}: {@code 2 n³}. */
  public static double flops(long n) {
    return 2.0 * n * n * n;
  }
}
