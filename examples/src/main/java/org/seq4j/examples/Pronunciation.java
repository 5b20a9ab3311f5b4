package org.seq4j.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Activation;
import org.seq4j.nn.Embedding;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Module;
import org.seq4j.nn.ScaledDotProductAttention;
import org.seq4j.nn.TransformerDecoder;
import org.seq4j.nn.TransformerDecoderLayer;
import org.seq4j.nn.TransformerEncoder;
import org.seq4j.nn.TransformerEncoderLayer;
import org.seq4j.train.Adam;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.LearningRateSchedule;
import org.seq4j.train.Losses;

/**
 * Many-to-many: a small Transformer encoder-decoder learns to turn spelling into pronunciation
 * (words of the CMU Pronouncing Dictionary, bundled), trained by autograd ({@code loss.backward()}) with padding masks
 * and causal self-attention, then decodes held-out words greedily, one phone at a time through the
 * decoder's key/value cache.
 */
public final class Pronunciation {
  static final String LETTERS = "_abcdefghijklmnopqrstuvwxyz"; // '_' pads
  static final List<String> PHONES = List.of("<pad>", "<s>", "</s>", "AA", "AE", "AH", "AO", "AW",
      "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH", "K", "L", "M",
      "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH");
  static final int BOS = 1;
  static final int EOS = 2;
  static final int D = 64;
  static final int MAX_PHONES = 12;

  private Pronunciation() {}

  record Word(String spelling, int[] phones) {}

  static List<Word> load() throws IOException {
    List<Word> words = new ArrayList<>();
    try (BufferedReader reader = new BufferedReader(new InputStreamReader(
        Pronunciation.class.getResourceAsStream("data/cmudict-subset.txt"),
        StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        String[] parts = line.split("\t");
        String[] phones = parts[1].split(" ");
        if (phones.length > MAX_PHONES - 1) {
          continue;
        }
        int[] ids = new int[phones.length];
        for (int i = 0; i < phones.length; i++) {
          ids[i] = PHONES.indexOf(phones[i]);
        }
        words.add(new Word(parts[0], ids));
      }
    }
    return words;
  }

  /** The model: letter and phone embeddings, a Transformer encoder-decoder, a read-out. */
  static final class Model extends Module {
    final Embedding letters = register("letters", new Embedding(LETTERS.length(), D, 1));
    final Embedding phones = register("phones", new Embedding(PHONES.size(), D, 2));
    final TransformerEncoder encoder = register("encoder", new TransformerEncoder(2, i ->
        TransformerEncoderLayer.builder(D, 4).dimFeedforward(2 * D).dropout(0.1f)
            .activation(Activation.RELU).seed(10 + i).build(),
        null));
    final TransformerDecoder decoder = register("decoder", new TransformerDecoder(2, i ->
        TransformerDecoderLayer.builder(D, 4).dimFeedforward(2 * D).dropout(0.1f)
            .activation(Activation.RELU).seed(20 + i).build(),
        null));
    final Linear head = register("head", new Linear(D, PHONES.size(), true, 3));

    /** Embedded, position-encoded, time-major source (S, N, D) and its padding mask (N, S). */
    Tensor[] encode(Arena arena, List<Word> batch) {
      int n = batch.size();
      int s = batch.stream().mapToInt(w -> w.spelling().length()).max().orElse(1);
      long[] ids = new long[s * n];
      float[] padding = new float[n * s];
      for (int j = 0; j < n; j++) {
        String w = batch.get(j).spelling();
        for (int t = 0; t < s; t++) {
          ids[t * n + j] = t < w.length() ? LETTERS.indexOf(w.charAt(t)) : 0;
          padding[j * s + t] = t < w.length() ? 0f : 1f;
        }
      }
      Tensor mask = Tensor.fromArray(arena, padding, n, s);
      Tensor x = embedWithPositions(arena, letters, ids, s, n);
      Tensor memory = encoder.forward(arena, x,
          ScaledDotProductAttention.Options.DEFAULT.keyPaddingMask(mask), mode()).output();
      return new Tensor[] {memory, mask};
    }

    Mode mode() {
      return isTraining() ? Mode.TRAINING : Mode.INFERENCE;
    }

    /** Embeddings (t, n, D) scaled by √D plus sinusoidal positions (t, 1, D), broadcast. */
    static Tensor embedWithPositions(Arena arena, Embedding table, long[] ids, int t, int n) {
      Tensor positions = Embedding.sinusoidalPositions(arena, t, D).reshape(t, 1, D);
      return table.forward(arena, ids, t, n).mul((float) Math.sqrt(D)).add(positions);
    }
  }

  /** Cross-entropy per phone of a batch, padding ignored (recorded for backward in grad mode). */
  static Tensor loss(Model model, Arena arena, List<Word> batch) {
    int n = batch.size();
    int t = batch.stream().mapToInt(w -> w.phones().length).max().orElse(0) + 1;
    long[] input = new long[t * n];
    long[] labels = new long[t * n];
    Arrays.fill(labels, Losses.IGNORE_INDEX);
    for (int j = 0; j < n; j++) {
      int[] phones = batch.get(j).phones();
      for (int p = 0; p < t; p++) {
        input[p * n + j] = p == 0 ? BOS : p <= phones.length ? phones[p - 1] : 0;
        if (p <= phones.length) {
          labels[p * n + j] = p < phones.length ? phones[p] : EOS;
        }
      }
    }
    Tensor[] encoded = model.encode(arena, batch);
    Tensor y = Model.embedWithPositions(arena, model.phones, input, t, n);
    Tensor decoded = model.decoder.forward(arena, y, encoded[0],
        ScaledDotProductAttention.Options.DEFAULT.causal(true),
        ScaledDotProductAttention.Options.DEFAULT.keyPaddingMask(encoded[1]), model.mode())
        .output();
    return Losses.crossEntropy(model.head.forward(arena, decoded), labels);
  }

  /** Greedy decoding of a batch through the decoder's key/value cache. */
  static List<int[]> transcribe(Model model, List<Word> batch) {
    int n = batch.size();
    model.eval();
    try (Arena arena = Arena.ofConfined(); var off = Autograd.noGrad()) {
      Tensor[] encoded = model.encode(arena, batch);
      TransformerDecoder.Cache cache = model.decoder.newCache(arena, n, MAX_PHONES + 1);
      Tensor positions = Embedding.sinusoidalPositions(arena, MAX_PHONES + 1, D);
      long[] previous = new long[n];
      Arrays.fill(previous, BOS);
      List<List<Integer>> out = new ArrayList<>();
      boolean[] done = new boolean[n];
      for (int j = 0; j < n; j++) {
        out.add(new ArrayList<>());
      }
      for (int p = 0; p <= MAX_PHONES; p++) {
        Tensor x = model.phones.forward(arena, previous, 1, n).mul((float) Math.sqrt(D))
            .add(positions.slice(p, p + 1).reshape(1, 1, D));
        Tensor h = model.decoder.forwardStep(arena, x, encoded[0],
            ScaledDotProductAttention.Options.DEFAULT.keyPaddingMask(encoded[1]), cache);
        float[] logits = model.head.forward(arena, h).toArray();
        for (int j = 0; j < n; j++) {
          int best = 3;
          for (int k = 2; k < PHONES.size(); k++) {
            if (logits[j * PHONES.size() + k] > logits[j * PHONES.size() + best]) {
              best = k;
            }
          }
          previous[j] = best;
          if (!done[j]) {
            if (best == EOS) {
              done[j] = true;
            } else {
              out.get(j).add(best);
            }
          }
        }
      }
      List<int[]> result = new ArrayList<>();
      for (List<Integer> phones : out) {
        result.add(phones.stream().mapToInt(Integer::intValue).toArray());
      }
      return result;
    }
  }

  static int editDistance(int[] a, int[] b) {
    int[][] d = new int[a.length + 1][b.length + 1];
    for (int i = 0; i <= a.length; i++) {
      d[i][0] = i;
    }
    for (int j = 0; j <= b.length; j++) {
      d[0][j] = j;
    }
    for (int i = 1; i <= a.length; i++) {
      for (int j = 1; j <= b.length; j++) {
        d[i][j] = Math.min(Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1),
            d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
      }
    }
    return d[a.length][b.length];
  }

  static String spell(int[] phones) {
    StringBuilder text = new StringBuilder();
    for (int p : phones) {
      text.append(text.isEmpty() ? "" : " ").append(PHONES.get(p));
    }
    return text.toString();
  }

  /** Trains; returns {training loss per epoch..., word accuracy, phone error rate}. */
  static double[] train(Model model, List<Word> train, List<Word> test, int epochs,
      boolean quiet) {
    int batchSize = 64;
    List<Word> order = new ArrayList<>(train);
    Random random = new Random(4);
    double[] result = new double[epochs + 2];
    int batches = order.size() / batchSize;
    LearningRateSchedule schedule = LearningRateSchedule.linearWarmup(100,
        LearningRateSchedule.cosine(3e-3, (long) epochs * batches, 1e-4));
    Progress progress = quiet ? null : new Progress("g2p", epochs, "words");
    long samples = 0;
    model.train();
    try (Adam adam = Adam.adamW(model.parameters()).weightDecay(1e-4).build()) {
      for (int epoch = 0; epoch < epochs; epoch++) {
        Collections.shuffle(order, random);
        double sum = 0;
        for (int b = 0; b < batches; b++) {
          try (Arena arena = Arena.ofConfined()) {
            adam.zeroGrad();
            Tensor loss = loss(model, arena, order.subList(b * batchSize, (b + 1) * batchSize));
            loss.backward();
            sum += loss.get();
            GradientClipping.clipByGlobalNorm(model.parameters(), 1.0);
            adam.setLearningRate(schedule.rate(adam.steps()));
            adam.step();
          }
          samples += batchSize;
        }
        result[epoch] = sum / batches;
        if (progress != null) {
          progress.update(epoch + 1, result[epoch], samples);
        }
      }
    }
    List<int[]> predicted = transcribe(model, test);
    int correct = 0;
    int errors = 0;
    int length = 0;
    for (int i = 0; i < test.size(); i++) {
      int[] truth = test.get(i).phones();
      correct += Arrays.equals(truth, predicted.get(i)) ? 1 : 0;
      errors += editDistance(truth, predicted.get(i));
      length += truth.length;
    }
    result[epochs] = (double) correct / test.size();
    result[epochs + 1] = (double) errors / length;
    return result;
  }

  /** {@code pronounce [epochs] [folder]}: trains, reports held-out accuracy, plots the loss. */
  static void run(int epochs, Path output) throws IOException {
    List<Word> words = new ArrayList<>(load());
    Collections.shuffle(words, new Random(1));
    List<Word> test = words.subList(0, 500);
    List<Word> train = words.subList(500, words.size());
    System.out.printf("%d words of the CMU Pronouncing Dictionary: %d to learn from, %d held out;"
        + " a Transformer (2+2 layers, d=%d, 4 heads) spells them out in phones%n", words.size(),
        train.size(), test.size(), D);
    try (Model model = new Model()) {
      double[] result = train(model, train, test, epochs, false);
      System.out.printf("held-out words: %.1f %% exactly right, phone error rate %.1f %%%n",
          100 * result[epochs], 100 * result[epochs + 1]);
      List<int[]> examples = transcribe(model, test.subList(0, 8));
      for (int i = 0; i < 8; i++) {
        System.out.printf("  %-10s %-24s (dictionary: %s)%n", test.get(i).spelling(),
            spell(examples.get(i)), spell(test.get(i).phones()));
      }
      new Plot("Spelling to pronunciation: training loss", "epoch", "cross-entropy per phone",
          false).line("transformer", Arrays.copyOf(result, epochs))
          .write(output.resolve("pronunciation-loss.png"));
      System.out.println("plot: " + output.resolve("pronunciation-loss.png"));
    }
  }
}
