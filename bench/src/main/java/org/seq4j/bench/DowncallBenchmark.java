package org.seq4j.bench;

import java.lang.foreign.Arena;
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
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.internal.NativeBindings;

/**
 * The fixed cost of crossing from Java into seq4j's native library, in nanoseconds per call.
 *
 * <ul>
 *   <li>{@code noopCritical}: {@code seq4j_noop} through a {@code Linker.Option.critical(true)}
 *       downcall, the kind seq4j uses for O(1) calls: no thread-state transition.
 *   <li>{@code noopNonCritical}: the same C function through an ordinary downcall, the kind seq4j
 *       uses for everything that may run long.
 *   <li>{@code matmul1x1Onednn}, {@code matmul1x1Blas}: a {@code (1, 1) · (1, 1)} product through
 *       the public API, that is argument checks, one ordinary downcall, the native checks and
 *       dispatch, and the backend's smallest call: what an op costs when it does no work.
 * </ul>
 *
 * <p>{@link NativeBindings} is not exported by the {@code org.seq4j} module; the benchmarks run on
 * the class path, where it is reachable.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class DowncallBenchmark {
  private static final MatmulOptions ONEDNN = MatmulOptions.DEFAULT.backend(Backend.ONEDNN);
  private static final MatmulOptions BLAS = MatmulOptions.DEFAULT.backend(Backend.BLAS);

  private Arena arena;
  private Tensor a; // (1, 1)
  private Tensor b; // (1, 1)
  private Tensor out; // (1, 1)

  /** Seeded 1×1 inputs, and one call of each kind so that nothing is linked during measurement. */
  @Setup
  public void setUp() throws Throwable {
    arena = Arena.ofShared();
    a = Tensor.randomNormal(arena, 1, 1, 1);
    b = Tensor.randomNormal(arena, 2, 1, 1);
    out = Tensor.zeros(arena, 1, 1);
    TensorOps.matmul(a, b, out, ONEDNN);
    TensorOps.matmul(a, b, out, BLAS);
    if (noopCritical() != 0 || noopNonCritical() != 0) {
      throw new IllegalStateException("seq4j_noop did not return 0 (SEQ4J_OK)");
    }
  }

  /** Frees the tensors. */
  @TearDown
  public void tearDown() {
    arena.close();
  }

  /** {@code seq4j_noop} as a critical downcall; the returned status keeps the call alive. */
  @Benchmark
  public int noopCritical() {
    return NativeBindings.noop();
  }

  /** {@code seq4j_noop} as an ordinary downcall. */
  @Benchmark
  public int noopNonCritical() {
    return NativeBindings.noopOrdinary();
  }

  /** A 1×1×1 product on oneDNN through {@link TensorOps#matmul}. */
  @Benchmark
  public void matmul1x1Onednn() {
    TensorOps.matmul(a, b, out, ONEDNN);
  }

  /** A 1×1×1 product on OpenBLAS through {@link TensorOps#matmul}. */
  @Benchmark
  public void matmul1x1Blas() {
    TensorOps.matmul(a, b, out, BLAS);
  }
}
