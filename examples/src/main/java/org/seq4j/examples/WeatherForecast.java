package org.seq4j.examples;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.IntToDoubleFunction;
import java.util.stream.IntStream;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Module;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;
import org.seq4j.nn.SimpleRnn;
import org.seq4j.train.Adam;
import org.seq4j.train.GradientClipping;
import org.seq4j.train.LearningRateSchedule;
import org.seq4j.train.Losses;
import org.seq4j.train.Scheduler;

/**
 * Many-to-one: forecast tomorrow's maximum temperature in Seattle from the previous 14 days of
 * weather (NOAA data bundled from the vega-datasets package). An LSTM and a simple RNN, each with
 * a linear read-out of its last step predicting the change from today, are trained on 2012–2014
 * and tested on 2015 against the naive forecast "tomorrow is like today". The models are {@link
 * Module}s trained through autograd. Writes PNG plots of the loss curves, of the gradient norm
 * before and after clipping, and of the gradient reaching the hidden state at each of the 14 steps.
 */
public final class WeatherForecast {
  static final int WINDOW = 14;
  static final int FEATURES = 6;
  static final int HIDDEN = 32;
  static final int BATCH = 32;
  static final LocalDate TEST_START = LocalDate.of(2015, 1, 1);

  private WeatherForecast() {}

  /** One day: the features of the table. */
  record Day(LocalDate date, double precipitation, double tempMax, double tempMin, double wind) {
    double[] raw() {
      return new double[] {tempMax, tempMin, Math.log1p(precipitation), wind};
    }
  }

  /** Windows of normalised features, with the next day's and today's maximum in °C. */
  record Windows(float[][] inputs, double[] targetCelsius, double[] todayCelsius) {
    int size() {
      return inputs.length;
    }
  }

  /** Per-feature mean and standard deviation of the training years. */
  record Normalization(double[] mean, double[] std) {
    /** The inputs for one day: the four measures standardised, then the season. */
    float[] features(Day day) {
      double[] raw = day.raw();
      double season = 2 * Math.PI * day.date().getDayOfYear() / 365.25;
      float[] f = {0, 0, 0, 0, (float) Math.sin(season), (float) Math.cos(season)};
      for (int i = 0; i < raw.length; i++) {
        f[i] = (float) ((raw[i] - mean[i]) / std[i]);
      }
      return f;
    }

    /** The network predicts tomorrow's change from today in units of this many °C. */
    double targetScale() {
      return std[0];
    }

    static Normalization of(List<Day> days) {
      double[] mean = new double[4];
      double[] std = new double[4];
      for (int i = 0; i < 4; i++) {
        int k = i;
        mean[k] = days.stream().mapToDouble(d -> d.raw()[k]).average().orElseThrow();
        std[k] = Math.sqrt(days.stream().mapToDouble(d -> Math.pow(d.raw()[k] - mean[k], 2))
            .average().orElseThrow());
      }
      return new Normalization(mean, std);
    }

    /**
     * The statistics of 2012–2014. The bundled table never changes, so {@link #predict} derives
     * them again instead of storing them in the checkpoint.
     */
    static Normalization ofTrainingYears(List<Day> days) {
      return of(days.stream().filter(d -> d.date().isBefore(TEST_START)).toList());
    }
  }

  static List<Day> load() throws IOException {
    try (InputStream in = WeatherForecast.class.getResourceAsStream("data/seattle-weather.csv")) {
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines()
          .skip(1) // date,precipitation,temp_max,temp_min,wind,weather
          .map(line -> line.split(","))
          .map(f -> new Day(LocalDate.parse(f[0]), Double.parseDouble(f[1]),
              Double.parseDouble(f[2]), Double.parseDouble(f[3]), Double.parseDouble(f[4])))
          .toList();
    }
  }

  /** The normalised features of days {@code [end - WINDOW, end)}, step by step. */
  static float[] window(List<Day> days, Normalization norm, int end) {
    float[] window = new float[WINDOW * FEATURES];
    for (int t = 0; t < WINDOW; t++) {
      System.arraycopy(norm.features(days.get(end - WINDOW + t)), 0, window, t * FEATURES,
          FEATURES);
    }
    return window;
  }

  /** The windows whose target day falls in [from, to). */
  static Windows windows(List<Day> days, Normalization norm, LocalDate from, LocalDate to) {
    int[] ends = IntStream.range(WINDOW, days.size()).filter(e ->
        !days.get(e).date().isBefore(from) && days.get(e).date().isBefore(to)).toArray();
    return new Windows(
        IntStream.of(ends).mapToObj(e -> window(days, norm, e)).toArray(float[][]::new),
        IntStream.of(ends).mapToDouble(e -> days.get(e).tempMax()).toArray(),
        IntStream.of(ends).mapToDouble(e -> days.get(e - 1).tempMax()).toArray());
  }

  /** A recurrent network and its linear read-out of the last hidden state. */
  static final class Model extends Module {
    final String name;
    final RecurrentLayer rnn;
    final Linear head;

    Model(String name, long seed) {
      this.name = name;
      rnn = register("rnn", name.equals("lstm") ? Lstm.builder(FEATURES, HIDDEN).seed(seed).build()
          : SimpleRnn.builder(FEATURES, HIDDEN).seed(seed).build());
      head = register("head", new Linear(HIDDEN, 1, true, seed + 1));
    }

    /** The normalised change from today (N, 1) for time-major input (T, N, FEATURES). */
    Tensor forward(Tensor x) {
      return head.forward(rnn.forward(x).finalState().hidden().reshape(x.dim(1), HIDDEN));
    }
  }

  /** Time-major input (T, N, FEATURES) and normalised target (N, 1) of some windows. */
  record Batch(Tensor x, Tensor y) {
    static Batch of(Arena arena, Windows data, Normalization norm, List<Integer> windows) {
      int n = windows.size();
      float[] x = new float[WINDOW * n * FEATURES];
      float[] y = new float[n];
      for (int j = 0; j < n; j++) {
        int w = windows.get(j);
        for (int t = 0; t < WINDOW; t++) {
          System.arraycopy(data.inputs()[w], t * FEATURES, x, (t * n + j) * FEATURES, FEATURES);
        }
        y[j] = (float) ((data.targetCelsius()[w] - data.todayCelsius()[w]) / norm.targetScale());
      }
      return new Batch(Tensor.fromArray(arena, x, WINDOW, n, FEATURES),
          Tensor.fromArray(arena, y, n, 1));
    }
  }

  static List<Integer> first(int n) {
    return IntStream.range(0, n).boxed().toList();
  }

  /** What a training run produced. */
  record Run(String name, double[] lossPerEpoch, double[] gradientNormPerStep,
      double[] gradientNormPerEpoch, double[] clippedNormPerEpoch, double testErrorCelsius) {}

  /** Trains a model, then measures its gradient flow and its error on the test windows. */
  static Run train(Model model, Windows train, Windows test, Normalization norm, int epochs,
      boolean quiet) {
    int batches = train.size() / BATCH;
    long steps = (long) epochs * batches;
    Random random = new Random(7);
    List<Integer> order = new ArrayList<>(first(train.size()));
    double[] losses = new double[epochs];
    double[] norms = new double[epochs];
    double[] clipped = new double[epochs];
    Progress progress = quiet ? null : new Progress(model.name, epochs, "windows");
    model.train();
    try (Adam adam = Adam.builder(model.parameters()).build()) {
      // warm up over the first epoch, then anneal to 5 % of the peak
      Scheduler schedule = Scheduler.of(adam, LearningRateSchedule.linearWarmup(batches,
          LearningRateSchedule.cosine(0.01, steps, 0.0005)));
      for (int epoch = 0; epoch < epochs; epoch++) {
        Collections.shuffle(order, random);
        for (int b = 0; b < batches; b++) {
          try (Arena arena = Arena.ofConfined()) {
            Batch batch =
                Batch.of(arena, train, norm, order.subList(b * BATCH, (b + 1) * BATCH));
            Tensor loss = Losses.mseLoss(model.forward(batch.x()), batch.y());
            adam.zeroGrad();
            loss.backward();
            losses[epoch] += loss.get();
            norms[epoch] += GradientClipping.clipByGlobalNorm(model.parameters(), 1.0);
            clipped[epoch] += GradientClipping.globalNorm(model.parameters());
            adam.step();
            schedule.step();
          }
        }
        losses[epoch] /= batches;
        norms[epoch] /= batches;
        clipped[epoch] /= batches;
        if (progress != null) {
          progress.update(epoch + 1, losses[epoch], (long) (epoch + 1) * batches * BATCH);
        }
      }
    }
    return new Run(model.name, losses, gradientFlow(model, train, norm), norms, clipped,
        testError(model, test, norm));
  }

  /**
   * ‖∂L/∂h(t)‖ for t = 0..13 on the first 64 training windows. Autograd keeps the gradients of
   * leaves only, so the network runs one step at a time and a zero leaf is added to each hidden
   * state before it goes on: that leaf's gradient is all that flows back into h(t).
   */
  static double[] gradientFlow(Model model, Windows train, Normalization norm) {
    int n = Math.min(64, train.size());
    double[] flow = new double[WINDOW];
    try (Arena arena = Arena.ofConfined()) {
      Batch batch = Batch.of(arena, train, norm, first(n));
      Tensor[] probes = new Tensor[WINDOW];
      RecurrentState state = null;
      for (int t = 0; t < WINDOW; t++) {
        RecurrentState next = model.rnn.forward(batch.x().slice(t, t + 1), state).finalState();
        probes[t] = Tensor.zeros(arena, 1, n, HIDDEN).requiresGrad(true);
        state = new RecurrentState(next.hidden().add(probes[t]), next.cell());
      }
      Tensor prediction = model.head.forward(state.hidden().reshape(n, HIDDEN));
      Losses.mseLoss(prediction, batch.y()).backward();
      for (int t = 0; t < WINDOW; t++) {
        flow[t] = Math.sqrt(probes[t].grad().pow(2).sum().get());
      }
    }
    model.zeroGrad(); // that backward reached the parameters too
    return flow;
  }

  /** The model's mean absolute error in °C over the test windows. */
  static double testError(Model model, Windows test, Normalization norm) {
    model.eval();
    try (Arena arena = Arena.ofConfined(); var noGrad = Autograd.noGrad()) {
      Tensor change = model.forward(Batch.of(arena, test, norm, first(test.size())).x());
      return meanAbsoluteError(test,
          i -> test.todayCelsius()[i] + change.get(i, 0) * norm.targetScale());
    }
  }

  static double meanAbsoluteError(Windows test, IntToDoubleFunction forecastCelsius) {
    return IntStream.range(0, test.size()).mapToDouble(i ->
        Math.abs(forecastCelsius.applyAsDouble(i) - test.targetCelsius()[i])).average()
        .orElseThrow();
  }

  /**
   * {@code weather [epochs] [output folder]}: trains both models, prints the test errors, writes
   * the plots and saves the LSTM to {@code weather-lstm.safetensors} in the output folder.
   */
  static void run(int epochs, Path output) throws IOException {
    List<Day> days = load();
    Normalization norm = Normalization.ofTrainingYears(days);
    Windows train = windows(days, norm, LocalDate.MIN, TEST_START);
    Windows test = windows(days, norm, TEST_START, LocalDate.MAX);
    System.out.printf("Seattle daily weather (NOAA): %d training windows (2012-2014), %d test"
        + " windows (2015); %d days in, tomorrow's maximum temperature out%n", train.size(),
        test.size(), WINDOW);
    Path checkpoint = output.resolve("weather-lstm.safetensors");
    List<Run> runs = new ArrayList<>();
    for (String name : List.of("lstm", "rnn")) {
      try (Model model = new Model(name, 42)) {
        runs.add(train(model, train, test, norm, epochs, false));
        if (name.equals("lstm")) {
          model.save(checkpoint);
        }
      }
    }
    System.out.printf("%nTest error, mean absolute, 2015 (°C):%n  LSTM          %.2f%n"
        + "  simple RNN    %.2f%n  naive (tomorrow = today)  %.2f%n",
        runs.get(0).testErrorCelsius(), runs.get(1).testErrorCelsius(),
        meanAbsoluteError(test, i -> test.todayCelsius()[i]));
    System.out.printf(
        "%nGradient reaching the hidden state, ‖∂L/∂h(t)‖, step 0 (oldest) vs 13:%n");
    Plot loss = new Plot("Training loss (MSE, normalised temperature)", "epoch", "loss", true);
    Plot flow = new Plot("Gradient reaching h(t) after training", "time step t (13 = last)",
        "||dL/dh(t)||", true);
    Plot norms = new Plot("Global gradient norm before and after clipping at 1 (mean per epoch;"
        + " equal lines: no clipping)", "epoch", "norm", true);
    for (Run run : runs) {
      double[] steps = run.gradientNormPerStep();
      System.out.printf("  %-10s %.2e ... %.2e  (ratio %.1e)%n", run.name(), steps[0],
          steps[WINDOW - 1], steps[0] / steps[WINDOW - 1]);
      loss.line(run.name(), run.lossPerEpoch());
      flow.line(run.name(), steps);
      norms.line(run.name() + " before", run.gradientNormPerEpoch());
      norms.line(run.name() + " after", run.clippedNormPerEpoch());
    }
    loss.write(output.resolve("weather-loss.png"));
    flow.write(output.resolve("weather-gradient-flow.png"));
    norms.write(output.resolve("weather-gradient-norm.png"));
    System.out.printf("%nPlots: %s, %s, %s%nModel: %s (predict with: weather-predict <file>)%n",
        output.resolve("weather-loss.png"), output.resolve("weather-gradient-flow.png"),
        output.resolve("weather-gradient-norm.png"), checkpoint);
  }

  /** {@code weather-predict <checkpoint>}: tomorrow's maximum after the last 14 days of data. */
  static double predict(Path checkpoint) throws IOException {
    List<Day> days = load();
    Normalization norm = Normalization.ofTrainingYears(days);
    try (Model model = new Model("lstm", 0); Arena arena = Arena.ofConfined();
        var noGrad = Autograd.noGrad()) {
      model.load(checkpoint, true);
      model.eval();
      Tensor x = Tensor.fromArray(arena, window(days, norm, days.size()), WINDOW, 1, FEATURES);
      Day last = days.getLast();
      double celsius = last.tempMax() + model.forward(x).get(0, 0) * norm.targetScale();
      System.out.printf("After %s (max %.1f °C), the LSTM forecasts %s: max %.1f °C%n",
          last.date(), last.tempMax(), last.date().plusDays(1), celsius);
      return celsius;
    }
  }
}
