package org.seq4j.examples;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.data.Sequences;
import org.seq4j.data.Sequences.TokenWindows;
import org.seq4j.data.Vocabulary;
import org.seq4j.nn.Embedding;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Module;
import org.seq4j.nn.RecurrentState;
import org.seq4j.train.Adam;
import org.seq4j.train.History;
import org.seq4j.train.Losses;
import org.seq4j.train.Scheduler;
import org.seq4j.train.Trainer;

/**
 * A character-level LSTM language model over the bundled first names, read as one stream of text:
 * Adam with warm-up and a cosine schedule, gradient clipping, validation every 100 steps, a
 * safetensors checkpoint, reload and sampling. The twin of {@code src/main/python/char_lm.py},
 * written as a PyTorch user writes that one (README, "Examples", compares their lengths).
 */
public final class CharLanguageModel {
  static final int T = 64, N = 32, HIDDEN = 256, WARMUP = 50;

  record Step(Tensor logits, RecurrentState state) {}

  /** What {@link #run} did: the training history and the sampled text. */
  record Result(History history, String sampled) {}

  static final class CharLM extends Module {
    final Embedding embed;
    final Lstm lstm;
    final Linear head;

    CharLM(int vocabulary, int hidden) {
      embed = register("embed", new Embedding(vocabulary, 64));
      lstm = register("lstm", Lstm.builder(64, hidden).numLayers(2).batchFirst(true).build());
      head = register("head", new Linear(hidden, vocabulary));
    }

    Step forward(Arena arena, long[] tokens, long[] shape, RecurrentState state) {
      var out = lstm.forward(embed.forward(arena, tokens, shape), state);
      return new Step(head.forward(out.output()), out.finalState());
    }
  }

  /** Trains for {@code steps}, saves into {@code folder}, reloads and samples 200 characters. */
  static Result run(int steps, Path folder) throws IOException {
    Random random = new Random(0);
    List<String> names = new ArrayList<>(Demo.resourceText("data/female-first-names.txt")
        .toLowerCase(Locale.ROOT).lines().toList());
    Collections.shuffle(names, random); // the file is sorted: validate on names, not on letters
    String text = String.join("\n", names);
    Vocabulary chars = Vocabulary.ofCharacters(text);
    long[] data = chars.encodeCharacters(text);
    long[] train = Arrays.copyOf(data, (int) (0.9 * data.length));
    long[] val = Arrays.copyOfRange(data, train.length, data.length);
    Path checkpoint = folder.resolve("char-lm.safetensors");
    int epochs = Math.max(1, steps / 100); // an epoch: 100 steps, then a validation line
    History history;
    try (CharLM model = new CharLM(chars.size(), HIDDEN);
        Adam optimizer = Adam.builder(model.parameters()).learningRate(3e-3).build()) {
      Iterable<TokenWindows> batches = () -> Stream.generate(() ->
          Sequences.randomWindows(train, T, N, true, random)).limit(steps / epochs).iterator();
      history = Trainer.builder(model, optimizer, (CharLM m, TokenWindows b, Arena arena) ->
              Losses.crossEntropy(m.forward(arena, b.inputs(), b.shape(), null).logits(),
                  b.targets()))
          .epochs(epochs).clipGradNorm(1.0).validation(List.of(
              Sequences.randomWindows(val, T, N, true, random)))
          .scheduler(Scheduler.of(optimizer, Scheduler.Rule.warmupCosine(
              Math.min(WARMUP, steps - 1), steps, 0))).build().fit(batches);
      model.save(checkpoint);
    }
    try (CharLM restored = new CharLM(chars.size(), HIDDEN); Arena arena = Arena.ofConfined();
        var noGrad = Autograd.noGrad()) {
      restored.load(checkpoint, true);
      restored.eval();
      long[] x = {chars.index('\n')};
      RecurrentState state = null;
      StringBuilder sampled = new StringBuilder();
      for (int i = 0; i < 200; i++) {
        Step out = restored.forward(arena, x, new long[] {1, 1}, state);
        state = out.state();
        x[0] = (long) out.logits().reshape(-1).div(0.8f).softmax(-1)
            .multinomial(1, false, random).get(0);
        sampled.append(chars.token(x[0]));
      }
      System.out.println(sampled);
      return new Result(history, sampled.toString());
    }
  }

  /** {@code [steps] [folder]}: 600 steps into target/demo by default. */
  public static void main(String[] args) throws IOException {
    Path folder = Files.createDirectories(Path.of(args.length > 1 ? args[1] : "target/demo"));
    run(args.length > 0 ? Integer.parseInt(args[0]) : 600, folder);
  }
}
