package org.seq4j.examples;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Random;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Embedding;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Module;
import org.seq4j.nn.RecurrentState;
import org.seq4j.train.Adam;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.Losses;
import org.seq4j.train.Scheduler;

/**
 * A character-level LSTM language model over the bundled first names, read as one stream of text:
 * Adam with warm-up and a cosine schedule, gradient clipping, validation, a safetensors
 * checkpoint, reload and sampling. Line for line the twin of {@code src/main/python/char_lm.py}.
 */
public final class CharLanguageModel {
  static final int T = 64, N = 32, HIDDEN = 256, WARMUP = 50;

  record Step(Tensor logits, RecurrentState state) {}

  static final class CharLM extends Module {
    final Embedding embed;
    final Lstm lstm;
    final Linear head;

    CharLM(int vocabulary, int hidden) {
      embed = register("embed", new Embedding(vocabulary, 64));
      lstm = register("lstm", Lstm.builder(64, hidden).numLayers(2).batchFirst(true).build());
      head = register("head", new Linear(hidden, vocabulary));
    }

    Step forward(Arena arena, long[] tokens, int batch, RecurrentState state) {
      var out = lstm.forward(embed.forward(arena, tokens, batch, tokens.length / batch), state);
      return new Step(head.forward(out.output()), out.finalState());
    }
  }

  static long[][] batch(long[] source, Random random) {
    long[] x = new long[N * T], y = new long[N * T];
    for (int n = 0; n < N; n++) {
      int start = random.nextInt(source.length - T - 1);
      System.arraycopy(source, start, x, n * T, T);
      System.arraycopy(source, start + 1, y, n * T, T);
    }
    return new long[][] {x, y};
  }

  static Tensor loss(CharLM model, Arena arena, long[][] batch, int vocabulary) {
    return Losses.crossEntropy(model.forward(arena, batch[0], N, null).logits()
        .reshape(-1, vocabulary), batch[1]);
  }

  /** Trains for {@code steps}, saves into {@code folder}, reloads and returns 200 sampled chars. */
  public static String run(int steps, Path folder) throws IOException {
    String text;
    try (InputStream in = CharLanguageModel.class.getResourceAsStream("data/female-first-names.txt")) {
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8).toLowerCase();
    }
    String chars = text.chars().distinct().sorted().collect(StringBuilder::new,
        StringBuilder::appendCodePoint, StringBuilder::append).toString();
    long[] data = text.chars().mapToLong(chars::indexOf).toArray();
    int split = (int) (0.9 * data.length), vocabulary = chars.length();
    long[] train = java.util.Arrays.copyOf(data, split);
    long[] val = java.util.Arrays.copyOfRange(data, split, data.length);
    Random random = new Random(0);
    Path checkpoint = folder.resolve("char-lm.safetensors");
    try (CharLM model = new CharLM(vocabulary, HIDDEN);
        Adam optimizer = Adam.builder(model.parameters()).learningRate(3e-3).build()) {
      Scheduler schedule = Scheduler.of(optimizer,
          Scheduler.Rule.warmupCosine(Math.min(WARMUP, steps - 1), steps, 0));
      for (int step = 0; step < steps; step++) {
        try (Arena arena = Arena.ofConfined()) {
          Tensor loss = loss(model, arena, batch(train, random), vocabulary);
          optimizer.zeroGrad();
          loss.backward();
          GradientClipping.clipByGlobalNorm(model.parameters(), 1.0);
          optimizer.step();
          schedule.step();
          if (step % 100 == 0 || step == steps - 1) {
            model.eval();
            try (var noGrad = Autograd.noGrad()) {
              Tensor valLoss = loss(model, arena, batch(val, random), vocabulary);
              System.out.printf("step %d  loss %.3f  validation %.3f%n", step, loss.get(),
                  valLoss.get());
            }
            model.train();
          }
        }
      }
      model.save(checkpoint);
    }
    StringBuilder sampled = new StringBuilder();
    try (CharLM restored = new CharLM(vocabulary, HIDDEN); Arena arena = Arena.ofConfined();
        var noGrad = Autograd.noGrad()) {
      restored.load(checkpoint, true);
      restored.eval();
      long[] x = {chars.indexOf('\n')};
      RecurrentState state = null;
      for (int i = 0; i < 200; i++) {
        Step out = restored.forward(arena, x, 1, state);
        state = out.state();
        x[0] = (long) out.logits().reshape(-1).div(0.8f).softmax(-1)
            .multinomial(1, false, random).get(0);
        sampled.append(chars.charAt((int) x[0]));
      }
    }
    System.out.println(sampled);
    return sampled.toString();
  }

  /** {@code [steps] [folder]}: 600 steps into target/demo by default. */
  public static void main(String[] args) throws IOException {
    Path folder = Path.of(args.length > 1 ? args[1] : "target/demo");
    java.nio.file.Files.createDirectories(folder);
    run(args.length > 0 ? Integer.parseInt(args[0]) : 600, folder);
  }
}
