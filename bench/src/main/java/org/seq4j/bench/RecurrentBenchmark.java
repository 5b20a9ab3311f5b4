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
import org.seq4j.Tensor;
import org.seq4j.nn.Gru;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.SimpleRnn;

/**
 * The recurrent suite of DESIGN.md through seq4j's Java API, in milliseconds per call:
 * {@code forward} is an inference pass, {@code forwardBackward} a training forward plus the full
 * backpropagation through time (new result tensors in a fresh arena every call, as a training loop
 * does).
 *
 * <p>Shapes: LSTM S (T=35, N=20, I=H=200), M (T=50, N=64, I=H=512), L (T=100, N=64, I=H=1024);
 * GRU M; simple RNN M; LSTM M with peepholes. {@link #flops} gives the floating-point operations of
 * one call, so {@code GFLOP/s = flops / (ms · 10⁶)}; {@link BenchReport} prints it beside the GEMM
 * peak of the same run, and the C++ program {@code seq4j_onednn_rnn_baseline} gives oneDNN's own
 * figure for the same shapes.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 4, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class RecurrentBenchmark {
  /** Cell and shape: {@code cell-size}, as in DESIGN.md. */
  @Param({"lstm-S", "lstm-M", "lstm_peephole-M", "lstm-L", "gru-M", "rnn-M"})
  public String shape;

  /** The backend, pinned on the layer: ONEDNN or BLAS (both side by side in one run). */
  @Param({"ONEDNN", "BLAS"})
  public String backend;

  private Arena arena;
  private RecurrentLayer layer;
  private Tensor input; // (T, N, I)
  private Tensor gradOutput; // (T, N, H)

  /** The sizes {T, N, I, H} of a shape name. */
  static long[] sizes(String shape) {
    String size = shape.substring(shape.indexOf('-') + 1);
    return switch (size) {
      case "S" -> new long[] {35, 20, 200, 200};
      case "M" -> new long[] {50, 64, 512, 512};
      case "L" -> new long[] {100, 64, 1024, 1024};
      default -> throw new IllegalArgumentException("shape: unknown size " + size);
    };
  }

  /** Gates of the cell of a shape name. */
  static int gates(String shape) {
    return shape.startsWith("lstm") ? 4 : shape.startsWith("gru") ? 3 : 1;
  }

  /**
   * Floating-point operations of one call: the GEMMs, {@code 2·T·N·G·H·(I + H)} forward; a
   * backward does twice the forward's (gradients of the data and of the weights).
   */
  public static double flops(String shape, boolean backward) {
    long[] s = sizes(shape);
    double forward = 2.0 * s[0] * s[1] * gates(shape) * s[3] * (s[2] + s[3]);
    return backward ? 3 * forward : forward;
  }

  /** Builds the layer and seeded inputs, and runs each pass once (plans, caches, page faults). */
  @Setup
  public void setUp() {
    long[] s = sizes(shape);
    Backend pinned = Backend.valueOf(backend);
    layer = shape.startsWith("lstm")
        ? Lstm.builder(s[2], s[3]).peepholes(shape.startsWith("lstm_peephole")).backend(pinned)
            .build()
        : shape.startsWith("gru") ? Gru.builder(s[2], s[3]).backend(pinned).build()
        : SimpleRnn.builder(s[2], s[3]).backend(pinned).build();
    arena = Arena.ofShared();
    input = Tensor.randomNormal(arena, 1, s[0], s[1], s[2]);
    gradOutput = Tensor.randomNormal(arena, 2, s[0], s[1], s[3]);
    forward();
    forwardBackward();
  }

  /** Frees everything. */
  @TearDown
  public void tearDown() {
    arena.close();
    layer.close();
  }

  /** An inference pass; returns an output element so the JIT keeps the call. */
  @Benchmark
  public float forward() {
    try (Arena call = Arena.ofConfined()) {
      return layer.forward(call, input).output().get(0, 0, 0);
    }
  }

  /** A training forward and the backward through time of the whole sequence. */
  @Benchmark
  public float forwardBackward() {
    try (Arena call = Arena.ofConfined()) {
      RecurrentLayer.Result result =
          layer.forward(call, input, null, null, org.seq4j.nn.Mode.TRAINING);
      return layer.backward(call, result.context(), gradOutput, null).input().get(0, 0, 0);
    }
  }
}
