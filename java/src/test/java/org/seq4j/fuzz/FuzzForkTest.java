package org.seq4j.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The fuzz of the native-backed API (issue 12 item 2), in forked JVMs so that a case that kills
 * its JVM cannot take the suite down: each fork runs a batch of {@link FuzzCases} given by seed
 * and index ({@link FuzzChild}); this test asserts that every fork exited 0, that no case crashed
 * (a START line without its CASE line, a signal exit, an hs_err file), and that every case passed
 * {@link Fuzz#judge}: results equal to the float64 reference, or a documented exception type with
 * a message naming an argument.
 *
 * <p>Budget: {@code seq4j.fuzz.forks} forks (default 2, run side by side, one OpenMP thread
 * each) of {@code seq4j.fuzz.cases} cases (default 2500), from seed {@code seq4j.fuzz.seed}
 * (default 20261202). {@code mvn -pl java verify -Pfuzz-long} runs 100 times as many (README,
 * "Tests"). The self-checks plant a crash and wrong exceptions and check that they are caught.
 * Reports go to {@code target/fuzz/}.
 */
class FuzzForkTest {
  private static final Path DIR = Path.of(System.getProperty("seq4j.fuzz.dir", "target/fuzz"));

  /** What one fork did. */
  record Fork(String name, int exitCode, List<String> lines, List<Path> crashFiles,
      String stderr) {}

  /** What the analysis of forks found. */
  record Report(long cases, long passedValid, long passedDefect, List<String> crashes,
      Map<String, List<String>> failures, Map<String, long[]> perKind) {
    long failureCount() {
      return failures.values().stream().mapToLong(List::size).sum();
    }

    String summary() {
      StringBuilder s = new StringBuilder();
      s.append(cases).append(" cases: ").append(passedValid).append(" valid ones equal to the "
          + "reference, ").append(passedDefect).append(" defective ones rejected as documented, ")
          .append(crashes.size()).append(" crashes, ").append(failureCount())
          .append(" failures in ").append(failures.size()).append(" distinct kinds\n");
      perKind.forEach((kind, n) -> s.append(String.format("  %-28s valid %5d  defect %5d  failed %d%n",
          kind, n[0], n[1], n[2])));
      for (String crash : crashes) {
        s.append("CRASH ").append(crash).append('\n');
      }
      failures.forEach((key, lines) -> s.append("FAILURE ×").append(lines.size()).append(' ')
          .append(key).append("\n    e.g. ").append(lines.get(0)).append('\n'));
      return s.toString();
    }
  }

  static long property(String name, long fallback) {
    return Long.parseLong(System.getProperty(name, String.valueOf(fallback)));
  }

  @Test
  void theNativeBackedApiSurvivesTheFuzz() throws Exception {
    long seed = property("seq4j.fuzz.seed", 20261202);
    int forks = (int) property("seq4j.fuzz.forks", 2);
    long cases = property("seq4j.fuzz.cases", 2500);
    long start = System.nanoTime();
    List<Process> processes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (int i = 0; i < forks; i++) {
      String name = "fork-" + seed + "-" + i;
      names.add(name);
      processes.add(launch(name, seed, i * cases, cases, null));
    }
    List<Fork> done = new ArrayList<>();
    for (int i = 0; i < forks; i++) {
      done.add(await(names.get(i), processes.get(i), 120 + cases / 10));
    }
    Report report = analyse(done);
    double seconds = (System.nanoTime() - start) / 1e9;
    String summary = String.format("fuzz: seed %d, %d forks, %.1f s%n", seed, forks, seconds)
        + report.summary();
    Files.writeString(DIR.resolve("report-" + seed + ".txt"), summary, StandardCharsets.UTF_8);
    System.out.println(summary);
    for (Fork fork : done) {
      assertEquals(0, fork.exitCode(), fork.name() + " exited with " + fork.exitCode() + "\n"
          + summary + fork.stderr());
    }
    assertTrue(report.crashes().isEmpty(), "crashes:\n" + summary);
    assertEquals(0, report.failureCount(), "failures:\n" + summary);
    assertEquals(forks * cases, report.cases(), "cases judged\n" + summary);
    // not vacuous: every call family ran valid cases and rejected defective ones
    report.perKind().forEach((kind, n) -> {
      assertTrue(n[0] > 0, kind + ": no valid case passed\n" + summary);
      assertTrue(n[1] > 0, kind + ": no defective case was rejected\n" + summary);
    });
    assertEquals(FuzzCases.ALL.stream().map(FuzzCases.Generator::kind).distinct().count(),
        report.perKind().size(), "call families that ran\n" + summary);
  }

  @Test
  void theHarnessCatchesAPlantedCrash() throws Exception {
    Fork fork = await("planted-crash", launch("planted-crash", 7, 0, 6, "crash"), 120);
    Report report = analyse(List.of(fork));
    assertNotEquals(0, fork.exitCode(), "the planted crash did not end the JVM");
    assertEquals(1, report.crashes().size(), report.summary());
    assertTrue(report.crashes().get(0).contains("planted-crash"), report.summary());
    assertTrue(report.crashes().get(0).contains("hs_err"), "no hs_err file: " + report.summary());
    Fork halted = await("planted-halt", launch("planted-halt", 7, 0, 2, "halt"), 120);
    Report haltReport = analyse(List.of(halted));
    assertEquals(134, halted.exitCode());
    assertEquals(1, haltReport.crashes().size(), haltReport.summary());
    assertTrue(haltReport.crashes().get(0).contains("planted-halt"), haltReport.summary());
  }

  @Test
  void theHarnessCatchesPlantedWrongExceptionsAndVagueMessages() throws Exception {
    Fork fork = await("planted-wrong", launch("planted-wrong", 7, 0, 4,
        "wrong-exception,vague"), 120);
    Report report = analyse(List.of(fork));
    assertEquals(0, fork.exitCode(), fork.stderr());
    assertTrue(report.crashes().isEmpty(), report.summary());
    List<String> keys = new ArrayList<>(report.failures().keySet());
    assertTrue(keys.stream().anyMatch(k -> k.startsWith("planted-wrong-exception "
        + Fuzz.Failure.WRONG_EXCEPTION_TYPE + " java.lang.ClassCastException")), report.summary());
    assertTrue(keys.stream().anyMatch(k -> k.startsWith("planted-vague "
        + Fuzz.Failure.MESSAGE_NAMES_NO_ARGUMENT)), report.summary());
  }

  // ------------------------------------------------------------------ harness

  static Process launch(String name, long seed, long first, long count, String planted)
      throws IOException {
    Files.createDirectories(DIR);
    Path crashDir = DIR.resolve(name);
    if (Files.isDirectory(crashDir)) {
      try (Stream<Path> old = Files.list(crashDir)) {
        for (Path p : old.toList()) {
          Files.delete(p);
        }
      }
    }
    Files.createDirectories(crashDir);
    String java = ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> command = new ArrayList<>(List.of(java, "--enable-native-access=ALL-UNNAMED",
        "-Xss4m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
        "-XX:-CreateCoredumpOnCrash",
        "-XX:ErrorFile=" + crashDir.toAbsolutePath().resolve("hs_err_pid%p.log")));
    String cache = System.getProperty("seq4j.cache.dir");
    if (cache != null) {
      command.add("-Dseq4j.cache.dir=" + cache);
    }
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(FuzzChild.class.getName());
    command.add(String.valueOf(seed));
    command.add(String.valueOf(first));
    command.add(String.valueOf(count));
    if (planted != null) {
      command.add(planted);
    }
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectOutput(crashDir.resolve("stdout.txt").toFile())
        .redirectError(crashDir.resolve("stderr.txt").toFile());
    builder.environment().put("OMP_NUM_THREADS", "1");
    return builder.start();
  }

  static Fork await(String name, Process process, long timeoutSeconds) throws Exception {
    Path crashDir = DIR.resolve(name);
    if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      process.destroyForcibly().waitFor();
      throw new AssertionError(name + ": the forked JVM did not end within " + timeoutSeconds
          + " s; its last lines: " + tail(crashDir.resolve("stdout.txt")));
    }
    List<String> lines = Files.readAllLines(crashDir.resolve("stdout.txt"),
        StandardCharsets.UTF_8);
    List<Path> crashFiles;
    try (Stream<Path> files = Files.list(crashDir)) {
      crashFiles = files.filter(p -> p.getFileName().toString().startsWith("hs_err")).toList();
    }
    return new Fork(name, process.exitValue(), lines, crashFiles,
        Files.readString(crashDir.resolve("stderr.txt"), StandardCharsets.UTF_8));
  }

  private static String tail(Path file) throws IOException {
    List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
  }

  /** Parses the forks' lines: crashes (START without CASE), failures by distinct key, counts. */
  static Report analyse(List<Fork> forks) {
    long cases = 0;
    long passedValid = 0;
    long passedDefect = 0;
    List<String> crashes = new ArrayList<>();
    Map<String, List<String>> failures = new TreeMap<>();
    Map<String, long[]> perKind = new TreeMap<>();
    for (Fork fork : forks) {
      Map<String, String> open = new LinkedHashMap<>();
      for (String line : fork.lines()) {
        String[] parts = line.split(" ", 6);
        if (parts[0].equals("START")) {
          open.put(parts[1], parts[2]);
        } else if (parts[0].equals("CASE")) {
          open.remove(parts[1]);
          String kind = parts[2];
          String verdict = parts[3];
          String thrown = parts[4];
          if (kind.startsWith("planted-")) {
            if (!verdict.equals("PASS")) {
              failures.computeIfAbsent(kind + " " + verdict + " " + thrown, k -> new ArrayList<>())
                  .add(line);
            }
            continue;
          }
          cases++;
          long[] n = perKind.computeIfAbsent(kind, k -> new long[3]);
          if (verdict.equals("PASS")) {
            if (thrown.equals("-")) {
              passedValid++;
              n[0]++;
            } else {
              passedDefect++;
              n[1]++;
            }
          } else {
            n[2]++;
            String where = parts[5].substring(0, parts[5].indexOf(" | "));
            failures.computeIfAbsent(kind + " " + verdict + " " + thrown + " " + where,
                k -> new ArrayList<>()).add(line);
          }
        }
      }
      boolean finished = fork.lines().stream().anyMatch(l -> l.startsWith("DONE "));
      for (Map.Entry<String, String> e : open.entrySet()) {
        crashes.add(fork.name() + " case " + e.getKey() + " " + e.getValue() + ": the JVM died"
            + " (exit " + fork.exitCode() + (fork.exitCode() > 128 ? ", signal "
            + (fork.exitCode() - 128) : "") + ")" + (fork.crashFiles().isEmpty() ? ""
            : ", " + fork.crashFiles().get(0).getFileName() + " in " + DIR.resolve(fork.name())));
      }
      if (open.isEmpty() && (!finished || !fork.crashFiles().isEmpty())) {
        crashes.add(fork.name() + ": the JVM ended early (exit " + fork.exitCode() + ")"
            + (fork.crashFiles().isEmpty() ? "" : ", " + fork.crashFiles().get(0).getFileName()));
      }
    }
    return new Report(cases, passedValid, passedDefect, crashes, failures, perKind);
  }
}
