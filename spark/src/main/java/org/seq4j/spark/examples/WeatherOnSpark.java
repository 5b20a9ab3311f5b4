package org.seq4j.spark.examples;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.seq4j.Tensor;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Module;
import org.seq4j.spark.DataParallelTrainer;
import org.seq4j.spark.Example;
import org.seq4j.spark.ModelFactory;
import org.seq4j.spark.OptimizerFactory;
import org.seq4j.spark.SequenceScorer;
import org.seq4j.spark.SparkModel;
import org.seq4j.spark.TrainingResult;
import org.seq4j.train.Adam;

/**
 * Trains an LSTM forecaster of tomorrow's maximum temperature in Seattle (the weather data bundled
 * with seq4j's examples) data-parallel on Spark, then scores the test year with the distributed
 * scorer and compares it with the naive forecast "tomorrow is like today".
 *
 * <p>Arguments: {@code [csv] [epochs] [workers] [RING|ALL_GATHER]} (defaults: bundled data, or {@code -}, 8, 2,
 * RING). Without a CSV path it reads {@code
 * org/seq4j/examples/data/seattle-weather.csv} from the class path (the seq4j-examples JAR). The
 * master is {@code spark.master} when set (spark-submit), else {@code local[2]}.
 */
public final class WeatherOnSpark {
  static final int WINDOW = 14;
  static final int FEATURES = 6;
  static final int HIDDEN = 32;

  private WeatherOnSpark() {}

  /** An LSTM and a linear read-out of its last step: (T, N, 6) to (N, 1). */
  public static final class Forecaster extends Module implements Layer {
    private final Lstm lstm = register("lstm", Lstm.builder(FEATURES, HIDDEN).seed(1).build());
    private final Linear head = register("head", new Linear(HIDDEN, 1, true, 2));

    @Override
    public Tensor forward(Tensor x) {
      long steps = x.dim(0);
      Tensor out = lstm.forward(x).output();
      return head.forward(out.slice(steps - 1, steps).reshape(x.dim(1), HIDDEN));
    }
  }

  record Day(LocalDate date, double precipitation, double tempMax, double tempMin, double wind) {}

  static List<Day> load(String csv) throws IOException {
    InputStream in = csv != null ? Files.newInputStream(Path.of(csv))
        : WeatherOnSpark.class.getResourceAsStream("/org/seq4j/examples/data/seattle-weather.csv");
    if (in == null) {
      throw new IOException("no seattle-weather.csv on the class path: pass its path as the"
          + " first argument (examples/src/main/resources/org/seq4j/examples/data/)");
    }
    List<Day> days = new ArrayList<>();
    try (BufferedReader reader =
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

  /** Per-feature normalisation of the training years; the target is tomorrow's change. */
  static final class Features {
    final double[] mean = new double[4];
    final double[] std = new double[4];

    Features(List<Day> train) {
      double[] square = new double[4];
      for (Day d : train) {
        double[] raw = raw(d);
        for (int i = 0; i < 4; i++) {
          mean[i] += raw[i];
          square[i] += raw[i] * raw[i];
        }
      }
      for (int i = 0; i < 4; i++) {
        mean[i] /= train.size();
        std[i] = Math.sqrt(square[i] / train.size() - mean[i] * mean[i]);
      }
    }

    static double[] raw(Day d) {
      return new double[] {d.tempMax(), d.tempMin(), Math.log1p(d.precipitation()), d.wind()};
    }

    float[] of(Day d) {
      double[] raw = raw(d);
      double angle = 2 * Math.PI * d.date().getDayOfYear() / 365.25;
      return new float[] {(float) ((raw[0] - mean[0]) / std[0]),
          (float) ((raw[1] - mean[1]) / std[1]), (float) ((raw[2] - mean[2]) / std[2]),
          (float) ((raw[3] - mean[3]) / std[3]), (float) Math.sin(angle), (float) Math.cos(angle)};
    }
  }

  /** The windows whose target day is in [from, to): input, and change from today / std. */
  static List<Example> windows(List<Day> days, Features f, LocalDate from, LocalDate to) {
    List<Example> out = new ArrayList<>();
    for (int end = WINDOW; end < days.size(); end++) {
      Day target = days.get(end);
      if (target.date().isBefore(from) || !target.date().isBefore(to)) {
        continue;
      }
      float[] input = new float[WINDOW * FEATURES];
      for (int t = 0; t < WINDOW; t++) {
        System.arraycopy(f.of(days.get(end - WINDOW + t)), 0, input, t * FEATURES, FEATURES);
      }
      double change = (target.tempMax() - days.get(end - 1).tempMax()) / f.std[0];
      out.add(new Example(input, new float[] {(float) change}));
    }
    return out;
  }

  /**
   * Runs the example.
   *
   * @param args {@code [csv] [epochs] [workers] [RING|ALL_GATHER]}
   */
  public static void main(String[] args) throws IOException {
    String csv = args.length > 0 && !args[0].isBlank() && !args[0].equals("-") ? args[0] : null;
    int epochs = args.length > 1 ? Integer.parseInt(args[1]) : 8;
    List<Day> days = load(csv);
    List<Day> trainYears = days.stream().filter(d -> d.date().getYear() < 2015).toList();
    Features features = new Features(trainYears);
    List<Example> train = windows(days, features, LocalDate.of(2012, 1, 1),
        LocalDate.of(2015, 1, 1));
    List<Example> test = windows(days, features, LocalDate.of(2015, 1, 1),
        LocalDate.of(2016, 1, 1));

    SparkSession.Builder builder = SparkSession.builder().appName("seq4j weather on Spark");
    if (!new org.apache.spark.SparkConf().contains("spark.master")) {
      builder.master("local[2]");
    }
    SparkSession spark = builder.getOrCreate();
    spark.sparkContext().setLogLevel("WARN");
    try {
      JavaSparkContext sc = JavaSparkContext.fromSparkContext(spark.sparkContext());
      ModelFactory factory = Forecaster::new;
      OptimizerFactory adam = ps -> Adam.builder(ps).learningRate(5e-3).build();
      int workers = args.length > 2 ? Integer.parseInt(args[2])
          : Math.min(2, sc.defaultParallelism());
      DataParallelTrainer.Reduction reduction = args.length > 3
          ? DataParallelTrainer.Reduction.valueOf(args[3]) : DataParallelTrainer.Reduction.RING;
      DataParallelTrainer trainer = DataParallelTrainer.builder(factory, adam, FEATURES)
          .workers(workers).globalBatch(32).epochs(epochs).reduction(reduction).build();
      System.out.printf("training on %d windows (2012-2014), %d workers, global batch 32,"
          + " %d epochs of %d steps, %s%n", train.size(), workers, epochs,
          trainer.stepsPerEpoch(train.size()), reduction);
      TrainingResult result = trainer.fit(sc, sc.parallelize(train, workers));
      List<Float> losses = result.losses();
      System.out.printf("loss (mean squared error of the normalised change): first step %.4f,"
          + " last step %.4f%n", losses.get(0), losses.get(losses.size() - 1));
      System.out.printf("per step %s ms, of which all-reduce %s ms (per worker)%n",
          result.stepMillis(), result.allReduceMillis());

      try (Forecaster trained = new Forecaster()) {
        result.loadInto(trained);
        SparkModel model = SparkModel.broadcast(sc, factory, trained);
        StructType schema = new StructType().add("day", DataTypes.IntegerType)
            .add("sequence", DataTypes.createArrayType(DataTypes.createArrayType(
                DataTypes.FloatType, false), false))
            .add("change", DataTypes.FloatType);
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < test.size(); i++) {
          float[][] sequence = new float[WINDOW][];
          for (int t = 0; t < WINDOW; t++) {
            sequence[t] = java.util.Arrays.copyOfRange(test.get(i).input(), t * FEATURES,
                (t + 1) * FEATURES);
          }
          rows.add(RowFactory.create(i, sequence, test.get(i).target()[0]));
        }
        Dataset<Row> frame = spark.createDataFrame(sc.parallelize(rows, workers), schema);
        List<Row> scored = new SequenceScorer(model, FEATURES).setBatchSize(64)
            .transform(frame).select("change", "prediction").collectAsList();
        double model2 = 0;
        double naive2 = 0;
        for (Row r : scored) {
          double truth = r.getFloat(0) * features.std[0];
          double predicted = ((Number) r.getList(1).get(0)).doubleValue() * features.std[0];
          model2 += (predicted - truth) * (predicted - truth);
          naive2 += truth * truth;
        }
        System.out.printf("2015, %d days: RMSE of tomorrow's maximum %.2f °C (LSTM on Spark),"
            + " %.2f °C (naive: like today)%n", scored.size(), Math.sqrt(model2 / scored.size()),
            Math.sqrt(naive2 / scored.size()));
        model.destroy();
      }
    } finally {
      spark.stop();
    }
  }
}
