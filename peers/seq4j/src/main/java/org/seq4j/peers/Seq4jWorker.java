package org.seq4j.peers;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.RuntimeInfo;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.nn.Activation;
import org.seq4j.nn.Gru;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;
import org.seq4j.nn.StepWeights;
import org.seq4j.nn.ScaledDotProductAttention;
import org.seq4j.nn.TransformerEncoderLayer;

/**
 * seq4j through its public API, the way {@code bench/}'s JMH benchmarks call it: recurrent layers
 * on each backend (pinned on the layer, one row each), attention, the encoder layer (batch-first,
 * as the peers run it), and the GEMM peak on each backend. Training calls compute the input's and
 * every parameter's gradient; {@code zeroGrad} runs untimed before each.
 */
public final class Seq4jWorker extends Worker {
  private Seq4jWorker() {}

  /**
   * Runs the cases; see {@link Worker}.
   *
   * @param args the worker's arguments
   */
  public static void main(String[] args) {
    new Seq4jWorker().run(args);
  }

  @Override
  protected Map<String, String> info() {
    RuntimeInfo runtime = Seq4j.runtimeInfo();
    Map<String, String> info = new LinkedHashMap<>();
    info.put("library", "seq4j " + Seq4j.version());
    info.put("runtime", runtime.toString());
    info.put("openblas core", runtime.openblasCore());
    info.put("threads", Integer.toString(Seq4j.threads()));
    return info;
  }

  @Override
  protected List<String> variants(Case c) {
    return switch (c.kind()) {
      case "lstm", "lstm-bi2", "lstm-peephole", "gru", "stream-lstm", "stream-gru", "gemm" ->
          List.of("ONEDNN", "BLAS");
      case "stream-lstm-bf16" -> List.of("BLAS");
      default -> List.of("");
    };
  }

  @Override
  protected Measurement.Work create(Case c, String variant) {
    return switch (c.kind()) {
      case "lstm", "lstm-bi2", "lstm-peephole", "gru" -> recurrent(c, Backend.valueOf(variant));
      case "stream-lstm", "stream-gru", "stream-lstm-bf16" -> stream(c, Backend.valueOf(variant));
      case "attention" -> attention(c);
      case "encoder" -> encoder(c);
      case "gemm" -> gemm(c, Backend.valueOf(variant));
      default -> throw new IllegalArgumentException("case: unknown kind " + c.kind());
    };
  }

  private static Measurement.Work recurrent(Case c, Backend backend) {
    RecurrentLayer layer = c.kind().equals("gru")
        ? Gru.builder(c.i(), c.h()).backend(backend).seed(1).build()
        : Lstm.builder(c.i(), c.h()).peepholes(c.kind().equals("lstm-peephole"))
            .numLayers(c.kind().equals("lstm-bi2") ? 2 : 1)
            .bidirectional(c.kind().equals("lstm-bi2")).backend(backend).seed(1).build();
    Arena arena = Arena.ofShared();
    Tensor input = Tensor.randomNormal(arena, 1, c.t(), c.n(), c.i()); // (T, N, I)
    Tensor gradOutput = Tensor.randomNormal(arena, 2, c.t(), c.n(),
        c.h() * layer.directions()); // (T, N, D·H)
    return new Measurement.Work() {
      @Override
      public void prepare() {
        layer.zeroGrad();
      }

      @Override
      public void call() {
        try (Arena call = Arena.ofConfined()) {
          if (!c.training()) {
            // the twin of libtorch's NoGradGuard: without it the parameters' gradients make
            // the call a recorded training forward (a workspace, the weights converted afresh)
            layer.forward(call, input, null, null, Mode.INFERENCE);
            return;
          }
          RecurrentLayer.Result result = layer.forward(call, input, null, null, Mode.TRAINING);
          layer.backward(call, result.context(), gradOutput, null);
        }
      }

      @Override
      public void close() {
        arena.close();
        layer.close();
      }
    };
  }

  /** One step, N = 1: BLAS through {@code step} (the streaming path), ONEDNN one-step forward. */
  private static Measurement.Work stream(Case c, Backend backend) {
    boolean lstm = c.kind().startsWith("stream-lstm");
    StepWeights storage = c.kind().endsWith("-bf16") ? StepWeights.BFLOAT16 : StepWeights.FLOAT32;
    RecurrentLayer layer = lstm
        ? Lstm.builder(c.i(), c.h()).backend(backend).stepWeights(storage).seed(1).build()
        : Gru.builder(c.i(), c.h()).backend(backend).stepWeights(storage).seed(1).build();
    Arena arena = Arena.ofShared();
    Tensor input = Tensor.randomNormal(arena, 1, 1, 1, c.i());
    Tensor output = Tensor.zeros(arena, 1, 1, c.h());
    RecurrentState even = new RecurrentState(Tensor.zeros(arena, 1, 1, c.h()),
        lstm ? Tensor.zeros(arena, 1, 1, c.h()) : null);
    RecurrentState odd = new RecurrentState(Tensor.zeros(arena, 1, 1, c.h()),
        lstm ? Tensor.zeros(arena, 1, 1, c.h()) : null);
    Tensor stepInput = input.reshape(1, c.i());
    Tensor stepOutput = Tensor.zeros(arena, 1, c.h());
    return new Measurement.Work() {
      private long steps;

      @Override
      public void call() {
        try (var inference = org.seq4j.Autograd.noGrad()) { // a service's streaming path
          if (backend == Backend.BLAS) {
            layer.step(stepInput, even, stepOutput);
            return;
          }
          boolean flip = (steps++ & 1) == 0;
          layer.forward(input, flip ? even : odd, output, flip ? odd : even);
        }
      }

      @Override
      public void close() {
        arena.close();
        layer.close();
      }
    };
  }

  private static Measurement.Work attention(Case c) {
    Arena arena = Arena.ofShared();
    Tensor q = Tensor.randomNormal(arena, 1, c.n(), c.i(), c.t(), c.h()); // (N, heads, T, d)
    Tensor k = Tensor.randomNormal(arena, 2, c.n(), c.i(), c.t(), c.h());
    Tensor v = Tensor.randomNormal(arena, 3, c.n(), c.i(), c.t(), c.h());
    Tensor gradOutput = Tensor.randomNormal(arena, 4, c.n(), c.i(), c.t(), c.h());
    ScaledDotProductAttention.Options options =
        ScaledDotProductAttention.Options.DEFAULT.causal(c.causal());
    return new Measurement.Work() {
      @Override
      public void call() {
        try (Arena call = Arena.ofConfined()) {
          if (!c.training()) {
            ScaledDotProductAttention.forward(call, q, k, v, options, Mode.INFERENCE);
            return;
          }
          var result = ScaledDotProductAttention.forward(call, q, k, v, options, Mode.TRAINING);
          ScaledDotProductAttention.backward(call, result.context(), gradOutput);
        }
      }

      @Override
      public void close() {
        arena.close();
      }
    };
  }

  private static Measurement.Work encoder(Case c) {
    TransformerEncoderLayer layer = TransformerEncoderLayer.builder(c.i(), (int) c.h())
        .dimFeedforward(Case.ENCODER_FF).dropout(0f).activation(Activation.RELU).batchFirst(true)
        .seed(1).build();
    Arena arena = Arena.ofShared();
    Tensor x = Tensor.randomNormal(arena, 1, c.n(), c.t(), c.i()); // (N, T, d), batch-first
    Tensor gradOutput = Tensor.randomNormal(arena, 2, c.n(), c.t(), c.i());
    return new Measurement.Work() {
      @Override
      public void prepare() {
        for (Parameter p : layer.parameters()) {
          p.zeroGrad();
        }
      }

      @Override
      public void call() {
        try (Arena call = Arena.ofConfined()) {
          if (!c.training()) {
            layer.forward(call, x, ScaledDotProductAttention.Options.DEFAULT, Mode.INFERENCE);
            return;
          }
          var result =
              layer.forward(call, x, ScaledDotProductAttention.Options.DEFAULT, Mode.TRAINING);
          layer.backward(call, result.context(), gradOutput);
        }
      }

      @Override
      public void close() {
        arena.close();
        layer.close();
      }
    };
  }

  private static Measurement.Work gemm(Case c, Backend backend) {
    Arena arena = Arena.ofShared();
    Tensor a = Tensor.randomNormal(arena, 1, c.t(), c.t());
    Tensor b = Tensor.randomNormal(arena, 2, c.t(), c.t());
    Tensor out = Tensor.zeros(arena, c.t(), c.t());
    MatmulOptions options = MatmulOptions.DEFAULT.backend(backend);
    return new Measurement.Work() {
      @Override
      public void call() {
        TensorOps.matmul(a, b, out, options);
      }

      @Override
      public void close() {
        arena.close();
      }
    };
  }

  @Override
  protected void attentionOnce(long t) {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.randomNormal(arena, 1, 1, 8, t, 64);
      Tensor k = Tensor.randomNormal(arena, 2, 1, 8, t, 64);
      Tensor v = Tensor.randomNormal(arena, 3, 1, 8, t, 64);
      Tensor gradOutput = Tensor.randomNormal(arena, 4, 1, 8, t, 64);
      var result = ScaledDotProductAttention.forward(arena, q, k, v,
          ScaledDotProductAttention.Options.DEFAULT.causal(true), Mode.TRAINING);
      ScaledDotProductAttention.backward(arena, result.context(), gradOutput);
    }
  }
}
