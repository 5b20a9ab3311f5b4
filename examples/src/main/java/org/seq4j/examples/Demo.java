package org.seq4j.examples;

import java.lang.foreign.Arena;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;

/**
 * The README's main demo. {@code weather} (the default) trains an LSTM and a simple RNN to
 * forecast tomorrow's temperature; {@code weather-predict FILE} uses a saved model; {@code names}
 * trains a character-level LSTM that writes new first names; {@code info} shows the runtime, a
 * matrix product on both backends and an LSTM's speed.
 */
public final class Demo {
  private Demo() {}

  /**
   * Runs a demo: {@code [weather [epochs] [folder] | weather-predict FILE | names [epochs]
   * [folder] | info]}.
   *
   * @param args the demo and its arguments
   */
  public static void main(String[] args) throws java.io.IOException {
    String demo = args.length > 0 ? args[0] : "weather";
    switch (demo) {
      case "weather" -> WeatherForecast.run(args.length > 1 ? Integer.parseInt(args[1]) : 15,
          java.nio.file.Path.of(args.length > 2 ? args[2] : "target/demo"));
      case "weather-predict" -> {
        if (args.length < 2) {
          System.err.println("usage: weather-predict <checkpoint.safetensors>");
          System.exit(2);
        }
        WeatherForecast.predict(java.nio.file.Path.of(args[1]));
      }
      case "names" -> NameGenerator.run(args.length > 1 ? Integer.parseInt(args[1]) : 12,
          java.nio.file.Path.of(args.length > 2 ? args[2] : "target/demo"));
      case "pronounce" -> Pronunciation.run(args.length > 1 ? Integer.parseInt(args[1]) : 12,
          java.nio.file.Path.of(args.length > 2 ? args[2] : "target/demo"));
      case "charlm" -> CharLanguageModel.main(java.util.Arrays.copyOfRange(args, 1, args.length));
      case "info" -> info();
      default -> {
        System.err.println("unknown demo '" + demo + "'; try: weather [epochs] [folder],"
            + " weather-predict FILE, names [epochs] [folder], pronounce [epochs] [folder],"
            + " charlm [steps] [folder], info");
        System.exit(2);
      }
    }
  }

  /** The UTF-8 text of a resource beside the demos (under {@code org/seq4j/examples}). */
  static String resourceText(String name) throws java.io.IOException {
    try (java.io.InputStream in = Demo.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new java.io.FileNotFoundException("resource org/seq4j/examples/" + name);
      }
      return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  /** The runtime, a matrix product on both backends, and an LSTM's speed. */
  static void info() {
    System.out.println(Seq4j.runtimeInfo());
    try (Arena arena = Arena.ofConfined()) {
      int n = 512;
      Tensor a = Tensor.randomNormal(arena, 1, n, n);
      Tensor b = Tensor.randomNormal(arena, 2, n, n);
      Tensor onednn = Tensor.zeros(arena, n, n);
      Tensor blas = Tensor.zeros(arena, n, n);
      long start = System.nanoTime();
      TensorOps.matmul(a, b, onednn, MatmulOptions.DEFAULT.backend(Backend.ONEDNN));
      long middle = System.nanoTime();
      TensorOps.matmul(a, b, blas, MatmulOptions.DEFAULT.backend(Backend.BLAS));
      long end = System.nanoTime();
      float[] x = onednn.toArray();
      float[] y = blas.toArray();
      double worst = 0;
      for (int i = 0; i < x.length; i++) {
        worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
      System.out.printf(
          "%d x %d product: oneDNN %.2f ms, OpenBLAS %.2f ms (first calls, including warm-up);"
              + " largest difference %.2e%n",
          n, n, (middle - start) / 1e6, (end - middle) / 1e6, worst);
      System.out.printf("c[0][0..3] = %.4f %.4f %.4f %.4f%n",
          onednn.get(0, 0), onednn.get(0, 1), onednn.get(0, 2), onednn.get(0, 3));
    }
    recurrent();
  }

  /** An LSTM of DESIGN.md's shape S on both backends: a training step, then a stream of steps. */
  private static void recurrent() {
    int steps = 35;
    int batch = 20;
    int size = 200;
    for (Backend backend : new Backend[] {Backend.ONEDNN, Backend.BLAS}) {
      try (Lstm lstm = Lstm.builder(size, size).peepholes(true).backend(backend).build();
          Arena arena = Arena.ofConfined()) {
        Tensor x = Tensor.randomNormal(arena, 3, steps, batch, size);
        Tensor gradOutput = Tensor.randomNormal(arena, 4, steps, batch, size);
        double flops = 3 * 2.0 * steps * batch * 4 * size * (2 * size);
        long best = Long.MAX_VALUE;
        for (int repeat = 0; repeat < 20; repeat++) {
          lstm.zeroGrad();
          try (Arena step = Arena.ofConfined()) {
            long start = System.nanoTime();
            RecurrentLayer.Result result = lstm.forward(step, x, null, null, Mode.TRAINING);
            lstm.backward(step, result.context(), gradOutput, null);
            best = Math.min(best, System.nanoTime() - start);
          }
        }
        System.out.printf("%s on %s, T=%d N=%d: forward+backward through time %.2f ms"
            + " (%.1f GFLOP/s)%n", lstm, backend, steps, batch, best / 1e6, flops / best);
        System.out.printf("  gradient of weight_ci_l0 (peephole), first values: %.5f %.5f%n",
            lstm.parameter("weight_ci_l0").grad().get(0),
            lstm.parameter("weight_ci_l0").grad().get(1));

        Tensor event = Tensor.randomNormal(arena, 5, 1, size);
        Tensor output = Tensor.zeros(arena, 1, size);
        RecurrentState state =
            new RecurrentState(Tensor.zeros(arena, 1, 1, size), Tensor.zeros(arena, 1, 1, size));
        int events = 20_000;
        long start = System.nanoTime();
        for (int i = 0; i < events; i++) {
          lstm.step(event, state, output);
        }
        System.out.printf("  streaming, one event per step(): %.1f us per step (N=1, H=%d)%n",
            (System.nanoTime() - start) / 1e3 / events, size);
      }
    }
  }
}
