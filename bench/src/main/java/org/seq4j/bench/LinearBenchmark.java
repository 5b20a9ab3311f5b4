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
import org.seq4j.Tensor;
import org.seq4j.nn.Linear;

/**
 * {@code Linear.forward} with its bias at the encoder layer's shapes (4096 rows: T = 128 by N =
 * 32), one native {@code seq4j_linear} each: the projections (512 → 512), the feed-forward's first
 * layer (512 → 2048) and its second (2048 → 512). Flops {@code 2 · rows · in · out}; the bias is
 * added in the product's epilogue, so the result is the product's speed.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class LinearBenchmark {
  static final int ROWS = 4096;

  /** {@code in x out}. */
  @Param({"512x512", "512x2048", "2048x512"})
  public String features;

  private Arena arena;
  private Linear linear;
  private Tensor x;

  /** The layer and a seeded input. */
  @Setup
  public void setUp() {
    long[] sizes = sizes(features);
    arena = Arena.ofShared();
    linear = new Linear(sizes[0], sizes[1], true, 1);
    x = Tensor.randomNormal(arena, 2, ROWS, sizes[0]);
  }

  /** Frees everything. */
  @TearDown
  public void tearDown() {
    arena.close();
    linear.close();
  }

  static long[] sizes(String features) {
    String[] parts = features.split("x");
    return new long[] {Long.parseLong(parts[0]), Long.parseLong(parts[1])};
  }

  /** Floating-point operations of one forward. */
  public static double flops(String features) {
    long[] sizes = sizes(features);
    return 2.0 * ROWS * sizes[0] * sizes[1];
  }

  /** One forward: x · Wᵀ + b. */
  @Benchmark
  public float forward() {
    try (Arena call = Arena.ofConfined()) {
      return linear.forward(call, x).get(0, 0);
    }
  }
}
