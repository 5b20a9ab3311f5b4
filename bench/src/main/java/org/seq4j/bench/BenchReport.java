package org.seq4j.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.CommandLineOptionException;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.seq4j.RuntimeInfo;
import org.seq4j.Seq4j;

/**
 * Runs seq4j's JMH benchmarks and prints one Markdown table: each result's score, its GFLOP/s where
 * the work is known, that figure as a share of the GEMM peak (the highest GFLOP/s of {@link
 * MatmulBenchmark} in the same run) and, for {@link RecurrentBenchmark}, the time of oneDNN's own
 * primitives called from C++ ({@code seq4j_onednn_rnn_baseline}) as a share of seq4j's.
 *
 * <p>It takes JMH's own command line ({@code -f}, {@code -wi}, {@code -i}, {@code -p}, include
 * patterns, ...). Without patterns it runs every benchmark of this package; {@link
 * MatmulBenchmark} is always added, since the peak must come from the same run:
 *
 * <pre>{@code
 * java --enable-native-access=ALL-UNNAMED -cp bench/target/seq4j-benchmarks.jar \
 *     org.seq4j.bench.BenchReport 'Matmul|Downcall' -f 1 -wi 3 -w 1s -i 5 -r 1s
 * }</pre>
 *
 * <p>System properties: {@code bench.quick=true} shortens the iterations (1 warm-up, 2 measured,
 * 1 s each) where the command line does not set them; {@code bench.report} is the Markdown file
 * the report is also written to (default {@code bench/target/bench-report.md}, skipped when its
 * folder does not exist); {@code seq4j.baseline} is the C++ baseline program (default {@code
 * java/target/cmake/seq4j_onednn_rnn_baseline}).
 *
 * <p>The report starts with {@link Seq4j#runtimeInfo()} and whether {@code OPENBLAS_CORETYPE} was
 * set, because OpenBLAS picks its kernels from it and figures are not comparable without it.
 */
public final class BenchReport {
  private static final String PACKAGE = "org\\.seq4j\\.bench\\.";
  private static final String PEAK_BENCHMARK = "MatmulBenchmark.matmul";
  private static final Pattern BASELINE_LINE =
      Pattern.compile("(forward\\+backward|forward): mean ([0-9.]+) ms");

  private BenchReport() {}

  /**
   * Runs the selected benchmarks and prints the report on standard output.
   *
   * @param args JMH's command line
   */
  public static void main(String[] args)
      throws IOException, InterruptedException, RunnerException, CommandLineOptionException {
    CommandLineOptions commandLine = new CommandLineOptions(args);
    if (commandLine.shouldHelp()) {
      commandLine.showHelp();
      return;
    }
    OptionsBuilder builder = new OptionsBuilder();
    builder.parent(commandLine);
    if (commandLine.getIncludes().isEmpty()) {
      builder.include(PACKAGE + ".*Benchmark.*");
    }
    builder.include(PACKAGE + "MatmulBenchmark\\.");
    if (Boolean.getBoolean("bench.quick")) {
      if (!commandLine.getWarmupIterations().hasValue()) builder.warmupIterations(1);
      if (!commandLine.getMeasurementIterations().hasValue()) builder.measurementIterations(2);
      if (!commandLine.getWarmupTime().hasValue()) builder.warmupTime(TimeValue.seconds(1));
      if (!commandLine.getMeasurementTime().hasValue()) {
        builder.measurementTime(TimeValue.seconds(1));
      }
    }
    Options options = builder.build();
    if (commandLine.shouldList()) {
      new Runner(options).list();
      return;
    }

    RuntimeInfo runtime = Seq4j.runtimeInfo();
    Collection<RunResult> results = new Runner(options).run();
    List<Row> rows = new ArrayList<>();
    for (RunResult result : results) {
      rows.add(Row.of(result));
    }
    rows.sort(Comparator.comparing(Row::benchmark).thenComparing(Row::sortKey));
    Map<String, double[]> baseline = runBaseline(rows);

    String report = report(runtime, rows, baseline);
    System.out.println();
    System.out.print(report);
    Path file = Path.of(System.getProperty("bench.report", "bench/target/bench-report.md"));
    if (file.getParent() != null && Files.isDirectory(file.getParent())) {
      Files.writeString(file, report);
      System.out.println("\nwritten to " + file);
    }
  }

  /** The header and the table of {@code rows}, in Markdown. */
  static String report(RuntimeInfo runtime, List<Row> rows, Map<String, double[]> baseline) {
    Row peak = rows.stream()
        .filter(row -> row.benchmark().equals(PEAK_BENCHMARK) && !Double.isNaN(row.gflops()))
        .max(Comparator.comparingDouble(Row::gflops))
        .orElse(null);
    StringBuilder out = new StringBuilder();
    out.append("seq4j benchmark report, ").append(Instant.now()).append("\n\n");
    out.append("```\n").append(runtime).append('\n');
    String coreType = System.getenv("OPENBLAS_CORETYPE");
    out.append(coreType == null || coreType.isEmpty()
        ? "OPENBLAS_CORETYPE: not set (OpenBLAS chose core " + runtime.openblasCore() + " itself)"
        : "OPENBLAS_CORETYPE: set to " + coreType + " (OpenBLAS core " + runtime.openblasCore()
            + ")").append('\n');
    out.append("OpenBLAS threading: ")
        .append(runtime.details().getOrDefault("openblas.parallel", "?"))
        .append("; OpenMP max threads ")
        .append(runtime.details().getOrDefault("openmp.max_threads", "?"))
        .append(" of ").append(runtime.details().getOrDefault("openmp.procs", "?"))
        .append(" processors\n");
    out.append("CPU: ").append(cpuModel()).append(", ")
        .append(Runtime.getRuntime().availableProcessors()).append(" cores; JVM ")
        .append(System.getProperty("java.vm.name")).append(' ')
        .append(System.getProperty("java.runtime.version")).append('\n');
    out.append("```\n\n");
    out.append(peak == null
        ? "GEMM peak of this run: none measured\n\n"
        : String.format(Locale.ROOT, "GEMM peak of this run: %.1f GFLOP/s (%s %s)%n%n",
            peak.gflops(), peak.benchmark(), peak.params()));

    out.append("| benchmark | parameters | score | GFLOP/s | of GEMM peak | of oneDNN C++ |\n");
    out.append("|---|---|---:|---:|---:|---:|\n");
    for (Row row : rows) {
      boolean known = !Double.isNaN(row.gflops());
      String ofPeak = known && peak != null
          ? String.format(Locale.ROOT, "%.0f%%", 100 * row.gflops() / peak.gflops())
          : "";
      String ofBaseline = "";
      if (row.benchmark().startsWith("RecurrentBenchmark.")) {
        double[] times = baseline.get(row.param("shape"));
        double milliseconds = times == null ? Double.NaN
            : times[row.benchmark().endsWith("forwardBackward") ? 1 : 0];
        if (!Double.isNaN(milliseconds) && row.unit().equals("ms/op")) {
          ofBaseline = String.format(Locale.ROOT, "%.0f%% (%.1f ms)",
              100 * milliseconds / row.score(), milliseconds);
        }
      }
      out.append(String.format(Locale.ROOT, "| %s | %s | %s %s | %s | %s | %s |%n",
          row.benchmark(), row.params(), score(row.score(), row.error()), row.unit(),
          known ? String.format(Locale.ROOT, "%.1f", row.gflops()) : "",
          ofPeak, ofBaseline));
    }
    return out.toString();
  }

  /**
   * Runs oneDNN's own RNN primitives from C++ once for each recurrent shape in {@code rows}: shape
   * to {forward, forward+backward} mean milliseconds (NaN where not reported). Empty when the
   * program is missing.
   */
  static Map<String, double[]> runBaseline(List<Row> rows)
      throws IOException, InterruptedException {
    Map<String, double[]> times = new LinkedHashMap<>();
    Path program =
        Path.of(System.getProperty("seq4j.baseline", "java/target/cmake/seq4j_onednn_rnn_baseline"));
    boolean recurrent = rows.stream().anyMatch(r -> r.benchmark().startsWith("RecurrentBenchmark."));
    if (!recurrent) {
      return times;
    }
    if (!Files.isExecutable(program)) {
      System.out.println("no oneDNN C++ baseline at " + program + " (set -Dseq4j.baseline)");
      return times;
    }
    for (Row row : rows) {
      String shape = row.param("shape");
      if (!row.benchmark().startsWith("RecurrentBenchmark.") || shape == null
          || times.containsKey(shape)) {
        continue;
      }
      long[] sizes = RecurrentBenchmark.sizes(shape); // T, N, I, H
      String cell = shape.substring(0, shape.indexOf('-'));
      int repetitions = sizes[3] >= 1024 ? 2 : 8;
      Process process = new ProcessBuilder(program.toString(), cell,
          Long.toString(sizes[0]), Long.toString(sizes[1]), Long.toString(sizes[2]),
          Long.toString(sizes[3]), Integer.toString(repetitions))
          .redirectErrorStream(true)
          .start();
      double[] milliseconds = {Double.NaN, Double.NaN};
      try (BufferedReader reader = new BufferedReader(
          new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line = reader.readLine(); line != null; line = reader.readLine()) {
          System.out.println("baseline: " + line);
          Matcher matcher = BASELINE_LINE.matcher(line);
          if (matcher.find()) {
            milliseconds[matcher.group(1).equals("forward") ? 0 : 1] =
                Double.parseDouble(matcher.group(2));
          }
        }
      }
      process.waitFor();
      times.put(shape, milliseconds);
    }
    return times;
  }

  /**
   * One result: the benchmark as {@code Class.method}, its parameters, its primary score, and its
   * GFLOP/s (NaN when the work of one call is not known).
   */
  record Row(String benchmark, Map<String, String> parameters, String params, String sortKey,
      double score, double error, String unit, double gflops) {

    static Row of(RunResult result) {
      BenchmarkParams params = result.getParams();
      Result<?> primary = result.getPrimaryResult();
      String full = params.getBenchmark();
      String benchmark = full.substring(full.lastIndexOf('.', full.lastIndexOf('.') - 1) + 1);
      Map<String, String> parameters = new LinkedHashMap<>();
      StringBuilder text = new StringBuilder();
      StringBuilder sortKey = new StringBuilder();
      for (String key : params.getParamsKeys()) {
        String value = params.getParam(key);
        parameters.put(key, value);
        text.append(text.isEmpty() ? "" : " ").append(key).append('=').append(value);
        // Numbers sort by value: pad them to a fixed width.
        sortKey.append(value.matches("\\d+") ? String.format("%012d", Long.parseLong(value)) : value)
            .append('|');
      }
      double seconds = secondsPerOperation(primary.getScore(), primary.getScoreUnit());
      double flops = flops(benchmark, parameters);
      return new Row(benchmark, parameters, text.toString(), sortKey.toString(),
          primary.getScore(), primary.getScoreError(), primary.getScoreUnit(),
          flops / seconds / 1e9);
    }

    /** The value of parameter {@code key}, null when this benchmark has none. */
    String param(String key) {
      return parameters.get(key);
    }
  }

  /**
   * Floating-point operations of one call of {@code benchmark} ({@code Class.method}), NaN where
   * they are not known.
   */
  static double flops(String benchmark, Map<String, String> parameters) {
    String method = benchmark.substring(benchmark.indexOf('.') + 1);
    if (benchmark.startsWith("MatmulBenchmark.")) {
      return MatmulBenchmark.flops(Long.parseLong(parameters.get("n")));
    }
    if (benchmark.startsWith("ThreadingBenchmark.")) {
      return ThreadingBenchmark.flops(method);
    }
    if (benchmark.startsWith("RecurrentBenchmark.")) {
      return RecurrentBenchmark.flops(parameters.get("shape"), method.equals("forwardBackward"));
    }
    if (benchmark.startsWith("AttentionBenchmark.")) {
      return AttentionBenchmark.flops(Integer.parseInt(parameters.get("length")),
          Boolean.parseBoolean(parameters.get("causal")), method.equals("forwardBackward"));
    }
    if (benchmark.startsWith("TransformerBenchmark.")) {
      return TransformerBenchmark.flops(method.equals("forwardBackward"));
    }
    if (benchmark.startsWith("LinearBenchmark.")) {
      return LinearBenchmark.flops(parameters.get("features"));
    }
    return Double.NaN;
  }

  /** Seconds per operation from a JMH score and its unit ({@code ms/op} or {@code ops/ms}). */
  static double secondsPerOperation(double score, String unit) {
    if (unit.endsWith("/op")) {
      return score * seconds(unit.substring(0, unit.length() - "/op".length()));
    }
    if (unit.startsWith("ops/")) {
      return seconds(unit.substring("ops/".length())) / score;
    }
    return Double.NaN;
  }

  private static double seconds(String unit) {
    return switch (unit) {
      case "ns" -> 1e-9;
      case "us" -> 1e-6;
      case "ms" -> 1e-3;
      case "s" -> 1;
      case "min" -> 60;
      case "hr" -> 3600;
      case "day" -> 86400;
      default -> Double.NaN;
    };
  }

  private static String score(double score, double error) {
    return Double.isNaN(error)
        ? String.format(Locale.ROOT, "%.3f", score)
        : String.format(Locale.ROOT, "%.3f ± %.3f", score, error);
  }

  private static String cpuModel() {
    try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
      return lines.filter(line -> line.startsWith("model name"))
          .map(line -> line.substring(line.indexOf(':') + 1).trim())
          .findFirst()
          .orElse(System.getProperty("os.arch"));
    } catch (IOException | RuntimeException e) {
      return System.getProperty("os.arch");
    }
  }
}
