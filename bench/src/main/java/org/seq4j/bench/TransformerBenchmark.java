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
import org.seq4j.Tensor;
import org.seq4j.nn.Activation;
import org.seq4j.nn.ScaledDotProductAttention;
import org.seq4j.nn.TransformerEncoderLayer;

/**
 * DESIGN.md's Transformer encoder layer: d = 512, 8 heads, feed-forward 2048, T = 128, N = 32,
 * post-norm, ReLU, no dropout; milliseconds per forward and per forward+backward. Flops per
 * forward: projections {@code 2·T·N·(4·d² + 2·d·ff)} plus attention {@code 4·N·T²·d}; the backward
 * twice the projections and 2.5 times the attention.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class TransformerBenchmark {
  static final int D = 512;
  static final int FF = 2048;
  static final int T = 128;
  static final int N = 32;

  private Arena arena;
  private TransformerEncoderLayer layer;
  private Tensor x;
  private Tensor gradOutput;

  /** The layer and seeded inputs. */
  @Setup
  public void setUp() {
    arena = Arena.ofShared();
    layer = TransformerEncoderLayer.builder(D, 8).dimFeedforward(FF).dropout(0f)
        .activation(Activation.RELU).seed(1).build();
    x = Tensor.randomNormal(arena, 1, T, N, D);
    gradOutput = Tensor.randomNormal(arena, 2, T, N, D);
  }

  /** Frees everything. */
  @TearDown
  public void tearDown() {
    arena.close();
    layer.close();
  }

  /** Floating-point operations of one forward, or of a forward and its backward. */
  public static double flops(boolean backward) {
    double projections = 2.0 * T * N * (4.0 * D * D + 2.0 * D * FF);
    double attention = 4.0 * N * (double) T * T * D;
    return backward ? 3 * projections + 3.5 * attention : projections + attention;
  }

  /** One inference forward. */
  @Benchmark
  public float forward() {
    try (Arena call = Arena.ofConfined()) {
      return layer.forward(call, x, ScaledDotProductAttention.Options.DEFAULT,
          org.seq4j.nn.Mode.INFERENCE).output().get(0, 0, 0);
    }
  }

  /** A training forward and its backward. */
  @Benchmark
  public float forwardBackward() {
    try (Arena call = Arena.ofConfined()) {
      var result = layer.forward(call, x, ScaledDotProductAttention.Options.DEFAULT,
          org.seq4j.nn.Mode.TRAINING);
      return layer.backward(call, result.context(), gradOutput).get(0, 0, 0);
    }
  }
}
