package org.seq4j.peers;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * The one command of the peer comparison: runs DESIGN.md's cases on seq4j, libtorch and
 * DeepLearning4j, one JVM per peer and thread setting (one after the other, never two at once),
 * and writes the report: {@code peers.md} (the table, every setting's row, peak memory, each
 * library's ISA dispatch), {@code peers.png} (the chart) and {@code peers-section.md} (what
 * {@link Readme} puts into the README), in {@code bench/results/} unless {@code out=} says
 * otherwise. Run from the repository root after building with {@code -Ppeers} (bench/README.md,
 * "Peers"); Maven's {@code peers/run} module does both.
 *
 * <p>Arguments: {@code quick} (shorter warm-up and measurement, fewer memory runs), {@code
 * cases=REGEX} (case ids, found anywhere; the GEMM peak always runs), {@code peers=seq4j,libtorch,dl4j},
 * {@code out=DIR}, {@code readme=PATH} or {@code readme=none}, {@code all-settings} (seq4j and DL4J
 * with {@code OMP_WAIT_POLICY=PASSIVE} as well), {@code idle=SECONDS} (how long to
 * wait for an idle machine before each JVM, default 60, quick 10), {@code noise=PERCENT} (flag a
 * measurement during which other processes took more than this share of the machine's CPU time,
 * default 5), {@code rounds=K} (every JVM K times, round after round, so that a slow spell of a
 * shared machine falls on one round of each peer rather than on one peer; each row is then the
 * round with the median median, default 1).
 *
 * <p>A worker JVM that dies (a crash in a peer's native code) is started again for the cases it
 * had not run; the case it died in is reported as an error. A peer whose module did not build
 * (no {@code target/peer-classpath.txt}) or whose JVM produced nothing is reported in every row
 * it would have had.
 */
public final class Compare {
  /** One JVM to start: a peer in one thread setting. */
  record Launch(String peer, String module, String mainClass, String setting,
      Map<String, String> env, List<String> jvmArgs) {}

  /** One result row: a case on a peer in one setting. */
  record Row(Case c, String peer, String setting, String status, double[] stats, String note) {
    double median() {
      return stats == null ? Double.NaN : stats[0];
    }

    double gflops() {
      return status.equals("ok") ? c.flops() / (median() * 1e6) : Double.NaN;
    }

    double foreign() {
      return stats == null ? 0 : stats[6];
    }

    double steal() {
      return stats == null ? 0 : stats[7];
    }
  }

  /** One peak-memory run. */
  record MemoryRow(String peer, long t, String status, long beforeKib, long peakKib,
      double seconds, String note) {}

  /** Everything one run produced. */
  record Run(Instant start, Instant end, String command, Map<String, Map<String, String>> info,
      List<Row> rows, List<MemoryRow> memory, List<String> machineNotes, double noise,
      int rounds) {}

  private static final String[] PEERS = {"seq4j", "libtorch", "DL4J"};

  private Compare() {}

  /**
   * Runs the comparison.
   *
   * @param args see the class comment
   */
  public static void main(String[] args) throws IOException, InterruptedException {
    boolean quick = false;
    String cases = null;
    Set<String> peers = new LinkedHashSet<>(List.of("seq4j", "libtorch", "dl4j"));
    Path out = Path.of("bench/results");
    String readme = "README.md";
    Double idle = null;
    double noise = 5;
    int rounds = 1;
    boolean allSettings = false;
    for (String arg : args) {
      if (arg.equals("quick")) {
        quick = true;
      } else if (arg.equals("all-settings")) {
        allSettings = true;
      } else if (arg.startsWith("cases=")) {
        cases = arg.substring(6);
      } else if (arg.startsWith("peers=")) {
        peers = new LinkedHashSet<>(List.of(arg.substring(6).toLowerCase(Locale.ROOT).split(",")));
      } else if (arg.startsWith("out=")) {
        out = Path.of(arg.substring(4));
      } else if (arg.startsWith("readme=")) {
        readme = arg.substring(7);
      } else if (arg.startsWith("idle=")) {
        idle = Double.parseDouble(arg.substring(5));
      } else if (arg.startsWith("noise=")) {
        noise = Double.parseDouble(arg.substring(6));
      } else if (arg.startsWith("rounds=")) {
        rounds = Integer.parseInt(arg.substring(7));
        if (rounds < 1) {
          System.err.println("rounds must be at least 1, got " + rounds);
          System.exit(2);
        }
      } else {
        System.err.println("unknown argument " + arg + "; see org.seq4j.peers.Compare's comment");
        System.exit(2);
      }
    }
    double idleSeconds = idle != null ? idle : quick ? 10 : 60;
    Files.createDirectories(out);
    Path logs = Path.of("peers/run/target/logs");
    Files.createDirectories(logs);

    List<Case> selected = new ArrayList<>();
    Pattern pattern = cases == null ? null : Pattern.compile(cases);
    for (Case c : Case.all()) {
      if (pattern == null || pattern.matcher(c.id()).find() || c.kind().equals("gemm")) {
        selected.add(c);
      }
    }

    Instant start = Instant.now();
    List<Launch> launches = launches(peers, allSettings);
    Map<String, Map<String, String>> info = new LinkedHashMap<>();
    List<Row> measured = new ArrayList<>();
    List<String> machineNotes = new ArrayList<>();
    for (int round = 1; round <= rounds; round++) {
      for (Launch launch : launches) {
        String key = launch.peer() + " (" + launch.setting() + ")";
        System.out.println("== " + key + (rounds > 1 ? ", round " + round + " of " + rounds : ""));
        machineNotes.add(waitForIdle(idleSeconds, key));
        measured.addAll(runCases(launch, selected, quick, logs, info.computeIfAbsent(key,
            k -> new LinkedHashMap<>())));
      }
    }
    List<Row> rows = medianRounds(measured);

    List<MemoryRow> memory = new ArrayList<>();
    long[] lengths = quick ? new long[] {4096} : new long[] {4096, 16384};
    for (Launch launch : launches) {
      // seq4j as shipped; libtorch with passive OpenMP threads, its fastest setting for attention
      // here (as-is it can take minutes at T = 16384 on a busy machine).
      boolean memoryRun = launch.peer().equals("seq4j") ? launch.setting().equals("as-is")
          : launch.peer().equals("libtorch") && launch.setting().equals("OMP_WAIT_POLICY=PASSIVE");
      if (!memoryRun) {
        continue;
      }
      for (long t : lengths) {
        memory.add(runMemory(launch, t, logs));
      }
    }

    String command = ("Compare " + String.join(" ", args)).strip();
    Run run = new Run(start, Instant.now(), command, info, rows, memory, machineNotes, noise,
        rounds);
    String report = Report.markdown(run);
    Files.writeString(out.resolve("peers.md"), report);
    Files.writeString(out.resolve("peers-section.md"), Report.section(run));
    Chart.write(run, out.resolve("peers.png"));
    System.out.println();
    System.out.println(Report.mainTable(run));
    System.out.println("written: " + out.resolve("peers.md") + ", " + out.resolve("peers.png")
        + ", " + out.resolve("peers-section.md") + "; worker logs in " + logs);
    if (!readme.equals("none") && Files.exists(Path.of(readme))) {
      Readme.splice(out.resolve("peers-section.md"), Path.of(readme));
      System.out.println("README section updated: " + readme);
    }
    System.out.printf(Locale.ROOT, "run time %.1f min%n",
        Duration.between(start, run.end()).toSeconds() / 60.0);
  }

  /**
   * One row per (case, peer, setting) of rows measured in rounds: the round whose median is the
   * median of the rounds' (the lower middle one for an even count), among the rounds that ran;
   * a failed row only where no round ran. In the order the rows were first measured.
   */
  static List<Row> medianRounds(List<Row> measured) {
    Map<String, List<Row>> byKey = new LinkedHashMap<>();
    for (Row row : measured) {
      byKey.computeIfAbsent(row.c().id() + "\t" + row.peer() + "\t" + row.setting(),
          k -> new ArrayList<>()).add(row);
    }
    List<Row> rows = new ArrayList<>();
    for (List<Row> same : byKey.values()) {
      List<Row> ok = same.stream().filter(r -> r.status().equals("ok"))
          .sorted(java.util.Comparator.comparingDouble(Row::median)).toList();
      rows.add(ok.isEmpty() ? same.get(0) : ok.get((ok.size() - 1) / 2));
    }
    return rows;
  }

  /**
   * The JVMs of the selected peers: seq4j once, libtorch in three settings, DL4J once; with
   * {@code all}, seq4j and DL4J with {@code OMP_WAIT_POLICY=PASSIVE} too.
   */
  static List<Launch> launches(Set<String> peers, boolean all) {
    List<Launch> launches = new ArrayList<>();
    if (peers.contains("seq4j")) {
      launches.add(new Launch("seq4j", "seq4j", "org.seq4j.peers.Seq4jWorker", "as-is",
          Map.of(), List.of()));
      if (all) {
        launches.add(new Launch("seq4j", "seq4j", "org.seq4j.peers.Seq4jWorker",
            "OMP_WAIT_POLICY=PASSIVE", Map.of("OMP_WAIT_POLICY", "PASSIVE"), List.of()));
      }
    }
    if (peers.contains("libtorch")) {
      launches.add(new Launch("libtorch", "libtorch", "org.seq4j.peers.TorchWorker", "as-is",
          Map.of(), List.of()));
      launches.add(new Launch("libtorch", "libtorch", "org.seq4j.peers.TorchWorker",
          "OPENBLAS_NUM_THREADS=1", Map.of("OPENBLAS_NUM_THREADS", "1"), List.of()));
      launches.add(new Launch("libtorch", "libtorch", "org.seq4j.peers.TorchWorker",
          "OMP_WAIT_POLICY=PASSIVE", Map.of("OMP_WAIT_POLICY", "PASSIVE"), List.of()));
    }
    if (peers.contains("dl4j")) {
      launches.add(new Launch("DL4J", "dl4j", "org.seq4j.peers.Dl4jWorker", "as-is", Map.of(),
          List.of("-Xmx4g", "-Dorg.bytedeco.javacpp.platform.extension=" + dl4jExtension(),
              "-Dorg.bytedeco.javacpp.maxbytes=16g",
              "-Dorg.bytedeco.javacpp.maxphysicalbytes=20g",
              "--add-opens=java.base/java.nio=ALL-UNNAMED",
              "--add-opens=java.base/java.lang=ALL-UNNAMED",
              "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED")));
      if (all) {
        Launch dl4j = launches.get(launches.size() - 1);
        launches.add(new Launch("DL4J", "dl4j", dl4j.mainClass(), "OMP_WAIT_POLICY=PASSIVE",
            Map.of("OMP_WAIT_POLICY", "PASSIVE"), dl4j.jvmArgs()));
      }
    }
    return launches;
  }

  /**
   * The nd4j-native build DL4J loads: {@code -onednn} (the classifier the module depends on), or
   * {@code -Ddl4j.extension=-avx512} / {@code -avx2} / empty, matching {@code -Ddl4j.classifier}.
   */
  static String dl4jExtension() {
    return System.getProperty("dl4j.extension", "-onednn");
  }

  /** Waits until the machine is idle (others below 15% of its CPU) or {@code seconds} passed. */
  static String waitForIdle(double seconds, String key) throws InterruptedException {
    long deadline = System.nanoTime() + (long) (seconds * 1e9);
    double busy = CpuClock.machineBusyPercent(1000);
    double first = busy;
    while (busy > 15 && System.nanoTime() < deadline) {
      busy = CpuClock.machineBusyPercent(2000);
    }
    String note = String.format(Locale.ROOT, "%s: machine %.0f%% busy before the start%s", key,
        busy, busy > 15 ? String.format(Locale.ROOT, " (still busy after waiting %.0f s; was %.0f%%)",
            seconds, first) : first > 15 ? " (after waiting for it to go idle)" : "");
    System.out.println(note);
    return note;
  }

  /** The java launcher that runs this JVM, so workers run on the same JDK. */
  static String javaCommand() {
    return ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
  }

  /** A worker's class path: its classes and its dependencies, or null when it did not build. */
  static String classPath(String module) throws IOException {
    Path file = Path.of("peers", module, "target", "peer-classpath.txt");
    Path classes = Path.of("peers", module, "target", "classes");
    if (!Files.exists(file) || !Files.isDirectory(classes)) {
      return null;
    }
    return classes + java.io.File.pathSeparator + Files.readString(file).trim();
  }

  private static List<String> command(Launch launch, String classPath, List<String> args) {
    List<String> command = new ArrayList<>();
    command.add(javaCommand());
    command.add("--enable-native-access=ALL-UNNAMED");
    command.addAll(launch.jvmArgs());
    command.add("-cp");
    command.add(classPath);
    command.add(launch.mainClass());
    command.addAll(args);
    return command;
  }

  /**
   * Runs the cases on one launch, starting the JVM again after a crash, and returns one row per
   * case and variant (the seq4j worker has two backends for the recurrent cases).
   */
  static List<Row> runCases(Launch launch, List<Case> cases, boolean quick, Path logs,
      Map<String, String> info) throws IOException, InterruptedException {
    List<Row> rows = new ArrayList<>();
    String classPath = classPath(launch.module());
    if (classPath == null) {
      for (Case c : cases) {
        rows.add(new Row(c, launch.peer(), launch.setting(), "failed",
            null, "not built: peers/" + launch.module() + " has no target/peer-classpath.txt"
                + " (did its dependencies resolve? see the Maven log)"));
      }
      info.put("error", "not built");
      return rows;
    }
    List<Case> remaining = new ArrayList<>(cases);
    int attempt = 0;
    while (!remaining.isEmpty()) {
      attempt++;
      String regex = remaining.stream().map(c -> Pattern.quote(c.id()))
          .collect(Collectors.joining("|", "^(", ")$"));
      List<String> args = new ArrayList<>();
      if (quick) {
        args.add("quick");
      }
      args.add("cases=" + regex);
      ProcessBuilder builder = new ProcessBuilder(command(launch, classPath, args));
      builder.environment().putAll(launch.env());
      String logName = (launch.peer() + "-" + launch.setting() + "-" + attempt)
          .replaceAll("[^A-Za-z0-9._-]", "_") + ".log";
      Path log = logs.resolve(logName);
      builder.redirectError(log.toFile());
      Process process = builder.start();
      String started = null;
      Set<String> done = new LinkedHashSet<>();
      try (BufferedReader reader = new BufferedReader(
          new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
        String line;
        while ((line = reader.readLine()) != null) {
          String[] f = line.split("\t", -1);
          switch (f[0]) {
            case "@@info" -> info.put(f[1], f.length > 2 ? f[2] : "");
            case "@@start" -> {
              started = f[1];
              System.out.println("  " + f[1] + (f[2].isEmpty() ? "" : " [" + f[2] + "]"));
            }
            case "@@result" -> {
              Case c = Case.byId(f[1]);
              String setting = f[2].isEmpty() ? launch.setting()
                  : f[2] + " backend" + (launch.setting().equals("as-is") ? ""
                      : ", " + launch.setting());
              done.add(f[1]);
              if (f[3].equals("ok")) {
                double[] stats = new double[8];
                for (int k = 0; k < 8; k++) {
                  stats[k] = Double.parseDouble(f[4 + k]);
                }
                rows.add(new Row(c, launch.peer(), setting, "ok", stats, ""));
                System.out.printf(Locale.ROOT, "    %.3f ms (%.1f%% CPU by others)%n", stats[0],
                    stats[6]);
              } else {
                rows.add(new Row(c, launch.peer(), setting, f[3], null,
                    f.length > 4 ? f[4] : ""));
                System.out.println("    " + f[3] + ": " + (f.length > 4 ? f[4] : ""));
              }
            }
            default -> { }
          }
        }
      }
      if (!process.waitFor(30, TimeUnit.MINUTES)) {
        process.destroyForcibly();
      }
      int exit = process.exitValue();
      List<Case> next = new ArrayList<>();
      for (Case c : remaining) {
        if (done.contains(c.id())) {
          continue;
        }
        if (c.id().equals(started) || started == null) {
          String why = exit == 0 ? "no result" : "JVM died (exit " + exit + ") " + (started == null
              ? "before any case: " + lastLines(log) : "in this case") + "; log " + log;
          rows.add(new Row(c, launch.peer(), launch.setting(), started == null ? "failed"
              : "error", null, why));
          if (started == null) {
            info.putIfAbsent("error", why);
          }
        } else {
          next.add(c);
        }
      }
      remaining = started == null ? List.of() : next;
    }
    return rows;
  }

  /** The last lines of a log that say what went wrong, joined. */
  static String lastLines(Path log) {
    try {
      List<String> lines = Files.readAllLines(log);
      return lines.stream().filter(l -> l.contains("Exception") || l.contains("Error")
          || l.contains("error")).limit(3).collect(Collectors.joining(" | "));
    } catch (IOException e) {
      return "";
    }
  }

  /** One peak-memory run in a fresh JVM. */
  static MemoryRow runMemory(Launch launch, long t, Path logs)
      throws IOException, InterruptedException {
    String label = launch.peer() + (launch.setting().equals("as-is") ? ""
        : " (" + launch.setting() + ")");
    String classPath = classPath(launch.module());
    if (classPath == null) {
      return new MemoryRow(label, t, "failed", -1, -1, 0, "not built");
    }
    ProcessBuilder builder =
        new ProcessBuilder(command(launch, classPath, List.of("memory=" + t)));
    builder.environment().putAll(launch.env());
    Path log = logs.resolve(launch.peer() + "-memory-" + t + ".log");
    builder.redirectError(log.toFile());
    System.out.println("== peak memory: " + launch.peer() + " T=" + t);
    Process process = builder.start();
    // At most ten minutes: a watchdog ends the JVM, and the row says so.
    Thread watchdog = Thread.ofVirtual().start(() -> {
      try {
        if (!process.waitFor(10, TimeUnit.MINUTES)) {
          process.destroyForcibly();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    });
    MemoryRow row = null;
    try (BufferedReader reader = new BufferedReader(
        new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = reader.readLine()) != null) {
        String[] f = line.split("\t", -1);
        if (f[0].equals("@@memory")) {
          row = f[2].equals("ok")
              ? new MemoryRow(label, t, "ok", Long.parseLong(f[3]), Long.parseLong(f[4]),
                  Double.parseDouble(f[5]), "")
              : new MemoryRow(label, t, "error", -1, -1, 0, f.length > 3 ? f[3] : "");
        }
      }
    }
    process.waitFor();
    watchdog.interrupt();
    if (row == null) {
      row = new MemoryRow(label, t, "error", -1, -1, 0,
          "JVM died or was stopped after 10 min (exit " + process.exitValue() + "): "
              + lastLines(log));
    }
    System.out.println("  " + row);
    return row;
  }

  /** The report's time stamp. */
  static String timestamp(Instant instant) {
    return DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'").withZone(ZoneOffset.UTC)
        .format(instant);
  }

  /** Writes {@code text} to {@code file}. */
  static void write(Path file, String text) throws IOException {
    try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file))) {
      w.print(text);
    }
  }

  /** The peer names in the table's order. */
  static String[] peerOrder() {
    return PEERS.clone();
  }
}
