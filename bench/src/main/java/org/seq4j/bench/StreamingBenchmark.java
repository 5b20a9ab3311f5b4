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
import org.seq4j.nn.RecurrentState;
import org.seq4j.nn.StepWeights;

/**
 * Latency of one recurrent step for one sample (N=1, I=H=256), as a JVM service calling once per
 * event, on each backend: BLAS runs {@code step(input, state, output)}, the streaming path (one
 * native call, weights packed for matrix-vector work, state in place); ONEDNN runs the
 * allocation-free {@code forward(input, initial, output, finalState)} of one step on oneDNN's
 * primitive, the state ping-ponged between two preallocated states. With {@code weights=BFLOAT16}
 * the BLAS path streams bfloat16 weights. Microseconds per step.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class StreamingBenchmark {
  /** The cell. */
  @Param({"lstm", "gru"})
  public String cell;

  /** The backend: BLAS (the streaming step) or ONEDNN. */
  @Param({"BLAS", "ONEDNN"})
  public String backend;

  /**
   * How the step's packed weights are stored ({@code StepWeights}): FLOAT32, or BFLOAT16 (half
   * the bytes streamed per step; the BLAS path only, so ONEDNN runs FLOAT32 whatever this says).
   */
  @Param({"FLOAT32", "BFLOAT16"})
  public String weights;

  private Tensor stepInput; // (1, 256)
  private Tensor stepOutput; // (1, 256)
  private Arena arena;
  private RecurrentLayer layer;
  private Tensor input; // (1, 1, 256)
  private Tensor output; // (1, 1, 256)
  private RecurrentState even;
  private RecurrentState odd;
  private long steps;

  /** A one-layer network of hidden size 256 and its buffers. */
  @Setup
  public void setUp() {
    boolean lstm = cell.equals("lstm");
    Backend pinned = Backend.valueOf(backend);
    StepWeights storage = StepWeights.valueOf(weights);
    layer = lstm ? Lstm.builder(256, 256).backend(pinned).stepWeights(storage).build()
        : Gru.builder(256, 256).backend(pinned).stepWeights(storage).build();
    arena = Arena.ofConfined();
    input = Tensor.randomNormal(arena, 1, 1, 1, 256);
    output = Tensor.zeros(arena, 1, 1, 256);
    even = new RecurrentState(Tensor.zeros(arena, 1, 1, 256),
        lstm ? Tensor.zeros(arena, 1, 1, 256) : null);
    odd = new RecurrentState(Tensor.zeros(arena, 1, 1, 256),
        lstm ? Tensor.zeros(arena, 1, 1, 256) : null);
    stepInput = input.reshape(1, 256);
    stepOutput = Tensor.zeros(arena, 1, 256);
  }

  /** Frees everything. */
  @TearDown
  public void tearDown() {
    arena.close();
    layer.close();
  }

  /** One step: the state moves from one buffer to the other. */
  @Benchmark
  public void step() {
    try (var inference = org.seq4j.Autograd.noGrad()) { // a service's streaming path
      if (backend.equals("BLAS")) {
        layer.step(stepInput, even, stepOutput);
        return;
      }
      boolean flip = (steps++ & 1) == 0;
      layer.forward(input, flip ? even : odd, output, flip ? odd : even);
    }
  }
}
