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
import org.seq4j.nn.ScaledDotProductAttention;

/**
 * Scaled dot-product attention of DESIGN.md's shapes: one sequence of T = 512 or 4096, 8 heads of
 * 64, causal or not; milliseconds per forward and per forward+backward. Flops: {@code 4·H·Tq·Tk·d}
 * forward (the two products), halved when causal; the backward recomputes the scores and does four
 * products, 2.5 times the forward's.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class AttentionBenchmark {
  /** Sequence length. */
  @Param({"512", "4096"})
  public int length;

  /** Whether queries see only earlier keys. */
  @Param({"false", "true"})
  public boolean causal;

  private Arena arena;
  private Tensor q;
  private Tensor k;
  private Tensor v;
  private Tensor gradOutput;
  private ScaledDotProductAttention.Options options;

  /** Seeded inputs. */
  @Setup
  public void setUp() {
    arena = Arena.ofShared();
    q = Tensor.randomNormal(arena, 1, 1, 8, length, 64);
    k = Tensor.randomNormal(arena, 2, 1, 8, length, 64);
    v = Tensor.randomNormal(arena, 3, 1, 8, length, 64);
    gradOutput = Tensor.randomNormal(arena, 4, 1, 8, length, 64);
    options = ScaledDotProductAttention.Options.DEFAULT.causal(causal);
  }

  /** Frees the tensors. */
  @TearDown
  public void tearDown() {
    arena.close();
  }

  /** Floating-point operations of one call of the given kind at this shape. */
  public static double flops(int length, boolean causal, boolean backward) {
    double forward = 4.0 * 8 * length * (double) length * 64 * (causal ? 0.5 : 1);
    return backward ? 3.5 * forward : forward;
  }

  /** One inference forward. */
  @Benchmark
  public float forward() {
    try (Arena call = Arena.ofConfined()) {
      return ScaledDotProductAttention.forward(call, q, k, v, options,
          org.seq4j.nn.Mode.INFERENCE).output().get(0, 0, 0, 0);
    }
  }

  /** A training forward and its backward. */
  @Benchmark
  public float forwardBackward() {
    try (Arena call = Arena.ofConfined()) {
      var result = ScaledDotProductAttention.forward(call, q, k, v, options,
          org.seq4j.nn.Mode.TRAINING);
      return ScaledDotProductAttention.backward(call, result.context(), gradOutput).query()
          .get(0, 0, 0, 0);
    }
  }
}
