package org.seq4j.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.seq4j.Tensor;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.SimpleRnn;
import org.seq4j.train.Adam;
import org.seq4j.train.Checkpoints;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.GradientFlow;
import org.seq4j.train.LearningRateSchedule;
import org.seq4j.train.Losses;

/**
 * Many-to-one: forecast tomorrow's maximum temperature in Seattle from the previous 14 days of
 * weather (NOAA data bundled from the vega-datasets package). An LSTM and a simple RNN, each with
 * a linear read-out of its last step predicting the change from today, are trained on 2012–2014
 * and tested on 2015 against the naive forecast "tomorrow is like today". Writes PNG plots of the loss curves and of the gradient
 * reaching the hidden state at each of the 14 steps (vanishing in the RNN, alive in the LSTM).
 */
public final class WeatherForecast {
  static final int WINDOW = 14;
  static final int FEATURES = 6;
  static final int HIDDEN = 32;

  /** One day: the features of the table. */
  record Day(LocalDate date, double precipitation, double tempMax, double tempMin, double wind) {}

  /** Windows of normalised features and their next-day target, in °C and normalised. */
  record Windows(float[][] inputs, double[] targetCelsius, double[] todayCelsius) {
    int size() {
      return inputs.length;
    }
  }

  /** Per-feature mean and standard deviation of the training years. */
  record Normalization(double[] mean, double[] std) {
    double[] features(Day day) {
      double dayOfYear = 2 * Math.PI * day.date().getDayOfYear() / 365.25;
      double[] raw = {day.tempMax(), day.tempMin(), Math.log1p(day.precipitation()), day.wind()};
      double[] out = new double[FEATURES];
      for (int i = 0; i < 4; i++) {
        out[i] = (raw[i] - mean[i]) / std[i];
      }
      out[4] = Math.sin(dayOfYear);
      out[5] = Math.cos(dayOfYear);
      return out;
    }

    /** The network predicts tomorrow's change from today in units of this many °C. */
    double targetScale() {
      return std[0];
    }

    static Normalization of(List<Day> days) {
      double[] mean = new double[4];
      double[] square = new double[4];
      for (Day d : days) {
        double[] raw = {d.tempMax(), d.tempMin(), Math.log1p(d.precipitation()), d.wind()};
        for (int i = 0; i < 4; i++) {
          mean[i] += raw[i];
          square[i] += raw[i] * raw[i];
        }
      }
      double[] std = new double[4];
      for (int i = 0; i < 4; i++) {
        mean[i] /= days.size();
        std[i] = Math.sqrt(square[i] / days.size() - mean[i] * mean[i]);
      }
      return new Normalization(mean, std);
    }
  }

  static List<Day> load() throws IOException {
    List<Day> days = new ArrayList<>();
    try (InputStream in = WeatherForecast.class.getResourceAsStream("data/seattle-weather.csv");
        BufferedReader reader =
            new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      reader.readLine(); // date,precipitation,temp_max,temp_min,wind,weather
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        String[] f = line.split(",");
        days.add(new Day(LocalDate.parse(f[0]), Double.parseDouble(f[1]),
            Double.parseDouble(f[2]), Double.parseDouble(f[3]), Double.parseDouble(f[4])));
      }
    }
    return days;
  }

  /** The windows whose target day falls in [from, to). */
  static Windows windows(List<Day> days, Normalization norm, LocalDate from, LocalDate to) {
    List<float[]> inputs = new ArrayList<>();
    List<double[]> targets = new ArrayList<>();
    for (int end = WINDOW; end < days.size(); end++) {
      Day target = days.get(end);
      if (target.date().isBefore(from) || !target.date().isBefore(to)) {
        continue;
      }
      float[] window = new float[WINDOW * FEATURES];
      for (int t = 0; t < WINDOW; t++) {
        double[] f = norm.features(days.get(end - WINDOW + t));
        for (int k = 0; k < FEATURES; k++) {
          window[t * FEATURES + k] = (float) f[k];
        }
      }
      inputs.add(window);
      targets.add(new double[] {target.tempMax(), days.get(end - 1).tempMax()});
    }
    return new Windows(inputs.toArray(float[][]::new),
        targets.stream().mapToDouble(v -> v[0]).toArray(),
        targets.stream().mapToDouble(v -> v[1]).toArray());
  }

  /** A recurrent network and its linear read-out of the last step. */
  static final class Model implements AutoCloseable {
    final String name;
    final RecurrentLayer rnn;
    final Linear head;

    Model(String name, long seed) {
      this.name = name;
      this.rnn = name.equals("lstm") ? Lstm.builder(FEATURES, HIDDEN).seed(seed).build()
          : SimpleRnn.builder(FEATURES, HIDDEN).seed(seed).build();
      this.head = new Linear(HIDDEN, 1, true, seed + 1);
    }

    /** All parameters, with the read-out's under {@code head.}. */
    List<Parameter> parameters() {
      List<Parameter> all = new ArrayList<>(rnn.parameters());
      all.addAll(Parameter.prefixed("head.", head.parameters()));
      return all;
    }

    /** (T, N, F) time-major input from windows [from, from + n) in the given order. */
    static Tensor batch(Arena arena, Windows data, int[] order, int from, int n) {
      float[] values = new float[WINDOW * n * FEATURES];
      for (int j = 0; j < n; j++) {
        float[] window = data.inputs()[order[from + j]];
        for (int t = 0; t < WINDOW; t++) {
          System.arraycopy(window, t * FEATURES, values, (t * n + j) * FEATURES, FEATURES);
        }
      }
      return Tensor.fromArray(arena, values, WINDOW, n, FEATURES);
    }

    /** Normalised predictions (N, 1) for a batch. */
    Tensor predict(Arena arena, Tensor input) {
      RecurrentLayer.Result result = rnn.forward(arena, input);
      Tensor last = result.output().slice(WINDOW - 1, WINDOW).reshape(input.dim(1), HIDDEN);
      return head.forward(arena, last);
    }

    @Override
    public void close() {
      rnn.close();
      head.close();
    }
  }

  /** What a training run produced. */
  record Run(String name, double[] lossPerEpoch, double[] gradientNormPerStep,
      double[] gradientNormPerEpoch, double[] clippedNormPerEpoch, double testErrorCelsius) {}

  /**
   * Trains a model; returns its loss curve, its gradient flow on a training batch after the last
   * epoch, and its mean absolute error in °C on the test windows.
   */
  static Run train(Model model, Windows train, Windows test, Normalization norm, int epochs,
      boolean quiet) {
    int batchSize = 32;
    Random random = new Random(7);
    int[] order = new int[train.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    List<Parameter> parameters = model.parameters();
    double[] losses = new double[epochs];
    double[] norms = new double[epochs];
    double[] clipped = new double[epochs];
    int batches = train.size() / batchSize;
    LearningRateSchedule schedule =
        LearningRateSchedule.linearWarmup(batches, LearningRateSchedule.cosine(0.01,
            (long) epochs * batches, 0.0005));
    Progress progress = quiet ? null : new Progress(model.name, epochs, "windows");
    long samples = 0;
    try (Adam adam = Adam.builder(parameters).build()) {
      for (int epoch = 0; epoch < epochs; epoch++) {
        for (int i = order.length - 1; i > 0; i--) { // shuffle
          int j = random.nextInt(i + 1);
          int swap = order[i];
          order[i] = order[j];
          order[j] = swap;
        }
        double epochLoss = 0;
        double epochNorm = 0;
        double epochClipped = 0;
        for (int b = 0; b < batches; b++) {
          try (Arena arena = Arena.ofConfined()) {
            Tensor x = Model.batch(arena, train, order, b * batchSize, batchSize);
            float[] y = new float[batchSize];
            for (int j = 0; j < batchSize; j++) {
              int w = order[b * batchSize + j];
              y[j] = (float) ((train.targetCelsius()[w] - train.todayCelsius()[w])
                  / norm.targetScale());
            }
            RecurrentLayer.Result result = model.rnn.forward(arena, x, null, null, Mode.TRAINING);
            Tensor last = result.output().slice(WINDOW - 1, WINDOW).reshape(batchSize, HIDDEN);
            Tensor prediction = model.head.forward(arena, last);
            Tensor gradPrediction = Tensor.zeros(arena, batchSize, 1);
            epochLoss += Losses.meanSquaredError(prediction,
                Tensor.fromArray(arena, y, batchSize, 1), gradPrediction);
            adam.zeroGrad();
            Tensor gradLast = model.head.backward(arena, last, gradPrediction);
            // many-to-one: the loss sees only the last step's output
            Tensor gradOutput = Tensor.zeros(arena, WINDOW, batchSize, HIDDEN);
            gradOutput.slice(WINDOW - 1, WINDOW).copyFrom(gradLast.reshape(1, batchSize, HIDDEN));
            model.rnn.backward(arena, result.context(), gradOutput, null);
            epochNorm += GradientClipping.clipByGlobalNorm(parameters, 1.0);
            epochClipped += GradientClipping.globalNorm(parameters);
            adam.setLearningRate(schedule.rate(adam.steps()));
            adam.step();
          }
          samples += batchSize;
        }
        losses[epoch] = epochLoss / batches;
        norms[epoch] = epochNorm / batches;
        clipped[epoch] = epochClipped / batches;
        if (progress != null) {
          progress.update(epoch + 1, losses[epoch], samples);
        }
      }
    }
    double[] flow = gradientFlow(model, train, norm);
    return new Run(model.name, losses, flow, norms, clipped, testError(model, test, norm));
  }

  /** ‖∂L/∂h(t)‖ for t = 0..13 on the first 64 training windows. */
  static double[] gradientFlow(Model model, Windows train, Normalization norm) {
    int n = Math.min(64, train.size());
    int[] order = new int[n];
    for (int i = 0; i < n; i++) {
      order[i] = i;
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Model.batch(arena, train, order, 0, n);
      RecurrentLayer.Result result = model.rnn.forward(arena, x);
      Tensor last = result.output().slice(WINDOW - 1, WINDOW).reshape(n, HIDDEN);
      Tensor prediction = model.head.forward(arena, last);
      float[] y = new float[n];
      for (int j = 0; j < n; j++) {
        y[j] = (float) ((train.targetCelsius()[j] - train.todayCelsius()[j]) / norm.targetScale());
      }
      Tensor gradPrediction = Tensor.zeros(arena, n, 1);
      Losses.meanSquaredError(prediction, Tensor.fromArray(arena, y, n, 1), gradPrediction);
      Tensor gradOutput = Tensor.zeros(arena, WINDOW, n, HIDDEN);
      // d(prediction)/d(last) is the read-out's weight; backward without touching its gradients
      Tensor weightGradient = model.head.weight().grad().copy(arena);
      Tensor biasGradient = model.head.bias().grad().copy(arena);
      Tensor gradLast = model.head.backward(arena, last, gradPrediction);
      model.head.weight().grad().copyFrom(weightGradient);
      model.head.bias().grad().copyFrom(biasGradient);
      gradOutput.slice(WINDOW - 1, WINDOW).copyFrom(gradLast.reshape(1, n, HIDDEN));
      return GradientFlow.hiddenStateGradientNorms(model.rnn, x, null, gradOutput);
    }
  }

  /** Mean absolute error in °C over the test windows. */
  static double testError(Model model, Windows test, Normalization norm) {
    int[] order = new int[test.size()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor prediction = model.predict(arena, Model.batch(arena, test, order, 0, test.size()));
      double sum = 0;
      for (int i = 0; i < test.size(); i++) {
        double celsius = test.todayCelsius()[i] + prediction.get(i, 0) * norm.targetScale();
        sum += Math.abs(celsius - test.targetCelsius()[i]);
      }
      return sum / test.size();
    }
  }

  static double naiveError(Windows test) {
    double sum = 0;
    for (int i = 0; i < test.size(); i++) {
      sum += Math.abs(test.todayCelsius()[i] - test.targetCelsius()[i]);
    }
    return sum / test.size();
  }

  /**
   * {@code weather [epochs] [output folder]}: trains both models, prints the test errors, writes
   * the plots and saves the LSTM to {@code weather-lstm.safetensors} in the output folder.
   */
  static void run(int epochs, Path output) throws IOException {
    List<Day> days = load();
    LocalDate testStart = LocalDate.of(2015, 1, 1);
    Normalization norm =
        Normalization.of(days.stream().filter(d -> d.date().isBefore(testStart)).toList());
    Windows train = windows(days, norm, LocalDate.MIN, testStart);
    Windows test = windows(days, norm, testStart, LocalDate.MAX);
    System.out.printf("Seattle daily weather (NOAA): %d training windows (2012-2014), %d test"
        + " windows (2015); %d days in, tomorrow's maximum temperature out%n", train.size(),
        test.size(), WINDOW);
    Map<String, Run> runs = new LinkedHashMap<>();
    for (String name : List.of("lstm", "simple-rnn")) {
      try (Model model = new Model(name.equals("lstm") ? "lstm" : "rnn", 42)) {
        Run run = train(model, train, test, norm, epochs, false);
        runs.put(name, run);
        if (name.equals("lstm")) {
          Map<String, String> metadata = new LinkedHashMap<>();
          metadata.put("model", "lstm");
          for (int i = 0; i < 4; i++) {
            metadata.put("mean." + i, Double.toString(norm.mean()[i]));
            metadata.put("std." + i, Double.toString(norm.std()[i]));
          }
          Checkpoints.save(output.resolve("weather-lstm.safetensors"), model.parameters(), null,
              metadata);
        }
      }
    }
    System.out.printf("%nTest error, mean absolute, 2015 (°C):%n");
    System.out.printf("  LSTM          %.2f%n", runs.get("lstm").testErrorCelsius());
    System.out.printf("  simple RNN    %.2f%n", runs.get("simple-rnn").testErrorCelsius());
    System.out.printf("  naive (tomorrow = today)  %.2f%n", naiveError(test));
    System.out.printf("%nGradient reaching the hidden state, ‖∂L/∂h(t)‖, step 0 (oldest) vs 13:%n");
    for (Run run : runs.values()) {
      double[] flow = run.gradientNormPerStep();
      System.out.printf("  %-10s %.2e ... %.2e  (ratio %.1e)%n", run.name(), flow[0],
          flow[WINDOW - 1], flow[0] / flow[WINDOW - 1]);
    }
    Plot loss = new Plot("Training loss (MSE, normalised temperature)", "epoch", "loss", true);
    Plot flow = new Plot("Gradient reaching h(t) after training", "time step t (13 = last)",
        "||dL/dh(t)||", true);
    Plot norms = new Plot("Global gradient norm before and after clipping at 1 (mean per epoch; equal"
        + " lines: no clipping)",
        "epoch", "norm", true);
    for (Run run : runs.values()) {
      loss.line(run.name(), run.lossPerEpoch());
      flow.line(run.name(), run.gradientNormPerStep());
      norms.line(run.name() + " before", run.gradientNormPerEpoch());
      norms.line(run.name() + " after", run.clippedNormPerEpoch());
    }
    loss.write(output.resolve("weather-loss.png"));
    flow.write(output.resolve("weather-gradient-flow.png"));
    norms.write(output.resolve("weather-gradient-norm.png"));
    System.out.printf("%nPlots: %s, %s, %s%nModel: %s (predict with: weather-predict <file>)%n",
        output.resolve("weather-loss.png"), output.resolve("weather-gradient-flow.png"),
        output.resolve("weather-gradient-norm.png"),
        output.resolve("weather-lstm.safetensors"));
  }

  /** {@code weather-predict <checkpoint>}: tomorrow's maximum after the last 14 days of data. */
  static double predict(Path checkpoint) throws IOException {
    List<Day> days = load();
    try (Model model = new Model("lstm", 0); Arena arena = Arena.ofConfined()) {
      Map<String, String> metadata = Checkpoints.load(checkpoint, model.parameters(), null);
      double[] mean = new double[4];
      double[] std = new double[4];
      for (int i = 0; i < 4; i++) {
        mean[i] = Double.parseDouble(metadata.get("mean." + i));
        std[i] = Double.parseDouble(metadata.get("std." + i));
      }
      Normalization norm = new Normalization(mean, std);
      float[] window = new float[WINDOW * FEATURES];
      for (int t = 0; t < WINDOW; t++) {
        double[] f = norm.features(days.get(days.size() - WINDOW + t));
        for (int k = 0; k < FEATURES; k++) {
          window[t * FEATURES + k] = (float) f[k];
        }
      }
      Tensor x = Tensor.fromArray(arena, window, WINDOW, 1, FEATURES);
      Day last = days.get(days.size() - 1);
      double celsius = last.tempMax() + model.predict(arena, x).get(0, 0) * norm.targetScale();
      System.out.printf("After %s (max %.1f °C), the LSTM forecasts %s: max %.1f °C%n",
          last.date(), last.tempMax(), last.date().plusDays(1), celsius);
      return celsius;
    }
  }

  private WeatherForecast() {}
}
