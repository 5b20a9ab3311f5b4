package org.seq4j.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.Set;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Module;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;
import org.seq4j.train.Adam;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.Losses;

/**
 * One-to-many: a character-level LSTM learns 4951 English first names (Moby Word II, bundled from
 * the stdlib datasets package) and then writes new ones, one character per step, feeding each
 * sampled character back in through the allocation-free single-step call.
 *
 * <p>Training is many-to-many over padded batches: every step predicts the next character, names
 * of different lengths share a batch through per-sample lengths, and the padded steps are ignored
 * by the cross-entropy. The model is a {@link Module}; {@code loss.backward()} reaches the LSTM and
 * its read-out through autograd.
 */
public final class NameGenerator {
  /** '.' starts and ends every name. */
  static final String ALPHABET = ".-abcdefghijklmnopqrstuvwxyz";
  static final int VOCABULARY = ALPHABET.length();
  static final int HIDDEN = 128;
  static final int MAX_STEPS = 16; // the longest name (15) plus the end mark

  private NameGenerator() {}

  static List<String> load() throws IOException {
    List<String> names = new ArrayList<>();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(
        NameGenerator.class.getResourceAsStream("data/female-first-names.txt"),
        StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        String name = line.strip().toLowerCase(Locale.ROOT);
        if (!name.isEmpty() && name.length() < MAX_STEPS
            && name.chars().allMatch(c -> ALPHABET.indexOf(c) > 0)) {
          names.add(name);
        }
      }
    }
    return names;
  }

  /** The model: an LSTM over one-hot characters and a linear read-out to the next character. */
  static final class Model extends Module {
    final Lstm lstm = register("lstm", Lstm.builder(VOCABULARY, HIDDEN).seed(5).build());
    final Linear head = register("head", new Linear(HIDDEN, VOCABULARY, true, 6));

    /** Logits (T, N, VOCABULARY) for one-hot input (T, N, VOCABULARY) of the given lengths. */
    Tensor forward(Arena arena, Tensor x, long[] lengths) {
      Mode mode = isTraining() ? Mode.TRAINING : Mode.INFERENCE;
      return head.forward(arena, lstm.forward(arena, x, null, lengths, mode).output());
    }
  }

  /** The mean cross-entropy per character of a batch (recorded for backward in grad mode). */
  static Tensor loss(Model model, Arena arena, List<String> batch) {
    int n = batch.size();
    float[] oneHot = new float[MAX_STEPS * n * VOCABULARY];
    long[] labels = new long[MAX_STEPS * n];
    long[] lengths = new long[n];
    java.util.Arrays.fill(labels, Losses.IGNORE_INDEX);
    for (int j = 0; j < n; j++) {
      String name = batch.get(j);
      lengths[j] = name.length() + 1;
      for (int t = 0; t <= name.length(); t++) {
        int previous = t == 0 ? 0 : ALPHABET.indexOf(name.charAt(t - 1));
        int next = t == name.length() ? 0 : ALPHABET.indexOf(name.charAt(t));
        oneHot[(t * n + j) * VOCABULARY + previous] = 1f;
        labels[t * n + j] = next;
      }
    }
    Tensor x = Tensor.fromArray(arena, oneHot, MAX_STEPS, n, VOCABULARY);
    return Losses.crossEntropy(model.forward(arena, x, lengths), labels);
  }

  /** Trains; returns the training loss per epoch and the held-out loss at the end. */
  static double[] train(Model model, List<String> train, List<String> heldOut, int epochs,
      boolean quiet) {
    int batchSize = 64;
    Random random = new Random(11);
    List<String> order = new ArrayList<>(train);
    double[] losses = new double[epochs + 1];
    Progress progress = quiet ? null : new Progress("names", epochs, "names");
    long samples = 0;
    model.train();
    try (Adam adam = Adam.builder(model.parameters()).learningRate(0.005).build()) {
      for (int epoch = 0; epoch < epochs; epoch++) {
        java.util.Collections.shuffle(order, random);
        double sum = 0;
        int batches = order.size() / batchSize;
        for (int b = 0; b < batches; b++) {
          try (Arena arena = Arena.ofConfined()) {
            adam.zeroGrad();
            Tensor loss = loss(model, arena, order.subList(b * batchSize, (b + 1) * batchSize));
            loss.backward();
            sum += loss.get();
            GradientClipping.clipByGlobalNorm(model.parameters(), 5.0);
            adam.step();
          }
          samples += batchSize;
        }
        losses[epoch] = sum / batches;
        if (progress != null) {
          progress.update(epoch + 1, losses[epoch], samples);
        }
      }
    }
    model.eval();
    try (Arena arena = Arena.ofConfined(); var off = Autograd.noGrad()) {
      losses[epochs] = loss(model, arena, heldOut).get();
    }
    return losses;
  }

  /** Writes a name character by character, sampling with the given temperature. */
  static String sample(Model model, Random random, double temperature) {
    try (Arena arena = Arena.ofConfined(); var off = Autograd.noGrad()) {
      Tensor input = Tensor.zeros(arena, 1, 1, VOCABULARY);
      Tensor output = Tensor.zeros(arena, 1, 1, HIDDEN);
      RecurrentState[] states = {
        new RecurrentState(Tensor.zeros(arena, 1, 1, HIDDEN), Tensor.zeros(arena, 1, 1, HIDDEN)),
        new RecurrentState(Tensor.zeros(arena, 1, 1, HIDDEN), Tensor.zeros(arena, 1, 1, HIDDEN))
      };
      StringBuilder name = new StringBuilder();
      int previous = 0;
      for (int t = 0; t < 2 * MAX_STEPS; t++) {
        input.fill(0f);
        input.set(1f, 0, 0, previous);
        // one step: the state moves from one buffer to the other, nothing else is allocated
        model.lstm.forward(input, t == 0 ? null : states[t & 1], output, states[(t + 1) & 1]);
        Tensor logits = model.head.forward(arena, output.reshape(1, HIDDEN));
        int next = (int) logits.div((float) temperature).softmax(-1)
            .multinomial(1, false, random).get(0, 0);
        if (next == 0) {
          break;
        }
        name.append(ALPHABET.charAt(next));
        previous = next;
      }
      return name.toString();
    }
  }

  /** {@code names [epochs] [folder]}: trains, reports, plots the loss, writes 12 new names. */
  static void run(int epochs, Path output) throws IOException {
    List<String> names = load();
    List<String> shuffled = new ArrayList<>(names);
    java.util.Collections.shuffle(shuffled, new Random(3));
    int held = names.size() / 10;
    List<String> heldOut = shuffled.subList(0, held);
    List<String> train = shuffled.subList(held, shuffled.size());
    System.out.printf("%d first names (Moby Word II): %d to learn from, %d held out; a"
        + " character-level LSTM(%d) writes new ones%n", names.size(), train.size(), held, HIDDEN);
    try (Model model = new Model()) {
      double[] losses = train(model, train, heldOut, epochs, false);
      System.out.printf("cross-entropy per character: training %.3f, held-out names %.3f"
          + " (uniform guess: %.3f)%n", losses[epochs - 1], losses[epochs],
          Math.log(VOCABULARY));
      Set<String> known = new HashSet<>(names);
      Random random = new Random(2026);
      List<String> written = new ArrayList<>();
      for (int i = 0; i < 12; i++) {
        String name = sample(model, random, 0.8);
        String shown = name.isEmpty() ? "(empty)"
            : Character.toUpperCase(name.charAt(0)) + name.substring(1);
        written.add(shown + (known.contains(name) ? " (in the list)" : ""));
      }
      System.out.println("new names: " + String.join(", ", written));
      new Plot("Name generator: training loss", "epoch", "cross-entropy per character", false)
          .line("lstm", java.util.Arrays.copyOf(losses, epochs))
          .write(output.resolve("names-loss.png"));
      System.out.println("plot: " + output.resolve("names-loss.png"));
    }
  }
}
