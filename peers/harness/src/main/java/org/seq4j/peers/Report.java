package org.seq4j.peers;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The Markdown of a {@link Compare.Run}: the main table (each peer at its best setting per case,
 * with seq4j's speed over the best peer's), every setting's row, peak memory, and the header that
 * makes figures comparable (date, CPU, {@code OPENBLAS_CORETYPE}, each library's ISA dispatch and
 * threads, the GEMM peak, what the machine was doing).
 */
final class Report {
  private Report() {}

  /** The highest GEMM GFLOP/s of the run (any peer), or NaN. */
  static Compare.Row peak(Compare.Run run) {
    return run.rows().stream()
        .filter(r -> r.c().kind().equals("gemm") && r.status().equals("ok"))
        .max(Comparator.comparingDouble(Compare.Row::gflops)).orElse(null);
  }

  /** Whether other processes took CPU time during the row's measurement. */
  static boolean noisy(Compare.Run run, Compare.Row row) {
    return row.status().equals("ok")
        && (row.foreign() > run.noise() || row.steal() > run.noise());
  }

  /** The best row of a peer for a case (fastest ok row), else its first row, else empty. */
  static Optional<Compare.Row> best(Compare.Run run, Case c, String peer) {
    List<Compare.Row> mine = run.rows().stream()
        .filter(r -> r.c().id().equals(c.id()) && r.peer().equals(peer)).toList();
    return mine.stream().filter(r -> r.status().equals("ok"))
        .min(Comparator.comparingDouble(Compare.Row::median))
        .or(() -> mine.stream().findFirst());
  }

  /** The cases that have rows, in the suite's order. */
  static List<Case> cases(Compare.Run run) {
    List<Case> cases = new ArrayList<>();
    for (Case c : Case.all()) {
      if (run.rows().stream().anyMatch(r -> r.c().id().equals(c.id()))) {
        cases.add(c);
      }
    }
    return cases;
  }

  /** Milliseconds with three significant digits or so. */
  static String millis(double ms) {
    if (ms >= 100) {
      return String.format(Locale.ROOT, "%.0f", ms);
    }
    if (ms >= 10) {
      return String.format(Locale.ROOT, "%.1f", ms);
    }
    if (ms >= 0.1) {
      return String.format(Locale.ROOT, "%.2f", ms);
    }
    return String.format(Locale.ROOT, "%.4f", ms);
  }

  private static String gflops(double g) {
    return g >= 10 ? String.format(Locale.ROOT, "%.0f", g)
        : g >= 0.1 ? String.format(Locale.ROOT, "%.1f", g) : String.format(Locale.ROOT, "%.3f", g);
  }

  /** One table line of a row; {@code ratio} is seq4j's column (blank on peers). */
  private static String line(Compare.Run run, Compare.Row row, Compare.Row peak, String ratio) {
    if (!row.status().equals("ok")) {
      String what = row.status().equals("na") ? "n/a: " + row.note()
          : row.status() + ": " + row.note();
      return String.format(Locale.ROOT, "| %s | %s | %s | %s | | | | %s |%n", row.c().id(),
          row.peer(), row.setting(), what.replace("|", "/"), ratio);
    }
    double[] s = row.stats();
    String spread = String.format(Locale.ROOT, "±%.0f%% (n=%d)",
        100 * (s[2] - s[1]) / (2 * s[0]), (long) s[5]);
    String noisy = noisy(run, row) ? String.format(Locale.ROOT, " ⚠ noisy: others %.0f%% CPU",
        Math.max(row.foreign(), row.steal())) : "";
    String ofPeak = peak == null ? "" : String.format(Locale.ROOT, "%.0f%%",
        100 * row.gflops() / peak.gflops());
    return String.format(Locale.ROOT, "| %s | %s | %s | %s | %s%s | %s | %s | %s |%n",
        row.c().id(), row.peer(), row.setting(), millis(row.median()), spread, noisy,
        gflops(row.gflops()), ofPeak, ratio);
  }

  private static final String HEAD = "| case | peer | setting | median ms | spread | GFLOP/s "
      + "| of GEMM peak | seq4j ÷ best peer |\n|---|---|---|---:|---|---:|---:|---:|\n";

  /**
   * The main table: per case, each peer's best setting; on seq4j's row, seq4j's speed divided by
   * the fastest peer's (above 1: seq4j is faster).
   */
  static String mainTable(Compare.Run run) {
    Compare.Row peak = peak(run);
    StringBuilder out = new StringBuilder(HEAD);
    for (Case c : cases(run)) {
      Map<String, Compare.Row> best = new LinkedHashMap<>();
      for (String peer : Compare.peerOrder()) {
        best(run, c, peer).ifPresent(r -> best.put(peer, r));
      }
      Compare.Row mine = best.get("seq4j");
      Compare.Row fastestPeer = best.values().stream()
          .filter(r -> !r.peer().equals("seq4j") && r.status().equals("ok"))
          .min(Comparator.comparingDouble(Compare.Row::median)).orElse(null);
      for (Compare.Row row : best.values()) {
        String ratio = "";
        if (row == mine && mine.status().equals("ok") && fastestPeer != null) {
          ratio = String.format(Locale.ROOT, "**%.2f×** (vs %s)",
              fastestPeer.median() / mine.median(), fastestPeer.peer());
        }
        out.append(line(run, row, peak, ratio));
      }
    }
    return out.toString();
  }

  /** Every row of every setting. */
  static String allSettings(Compare.Run run) {
    Compare.Row peak = peak(run);
    StringBuilder out = new StringBuilder(HEAD);
    for (Case c : cases(run)) {
      for (String peer : Compare.peerOrder()) {
        for (Compare.Row row : run.rows()) {
          if (row.c().id().equals(c.id()) && row.peer().equals(peer)) {
            out.append(line(run, row, peak, ""));
          }
        }
      }
    }
    return out.toString();
  }

  /** libtorch's time in each thread setting relative to its as-is run, per case. */
  static String torchSettings(Compare.Run run) {
    StringBuilder out = new StringBuilder();
    List<String> settings = run.rows().stream().filter(r -> r.peer().equals("libtorch"))
        .map(Compare.Row::setting).distinct().toList();
    if (settings.size() < 2) {
      return "";
    }
    out.append("| case |");
    settings.forEach(s -> out.append(' ').append(s).append(" ms |"));
    out.append(" best |\n|---|");
    settings.forEach(s -> out.append("---:|"));
    out.append("---|\n");
    for (Case c : cases(run)) {
      List<Compare.Row> rows = run.rows().stream()
          .filter(r -> r.c().id().equals(c.id()) && r.peer().equals("libtorch")).toList();
      if (rows.stream().noneMatch(r -> r.status().equals("ok"))) {
        continue;
      }
      out.append("| ").append(c.id()).append(" |");
      for (String s : settings) {
        Compare.Row r = rows.stream().filter(x -> x.setting().equals(s)).findFirst().orElse(null);
        out.append(' ').append(r == null || !r.status().equals("ok") ? "—"
            : millis(r.median()) + (noisy(run, r) ? " ⚠" : "")).append(" |");
      }
      out.append(' ').append(best(run, c, "libtorch").map(Compare.Row::setting).orElse(""))
          .append(" |\n");
    }
    return out.toString();
  }

  /** Peak resident memory of the attention runs. */
  static String memoryTable(Compare.Run run) {
    if (run.memory().isEmpty()) {
      return "";
    }
    StringBuilder out = new StringBuilder("| peer | T | peak RSS (VmHWM) | before the call | "
        + "growth | time |\n|---|---:|---:|---:|---:|---:|\n");
    for (Compare.MemoryRow m : run.memory()) {
      if (!m.status().equals("ok")) {
        out.append(String.format(Locale.ROOT, "| %s | %d | %s: %s | | | |%n", m.peer(), m.t(),
            m.status(), m.note().replace("|", "/")));
        continue;
      }
      out.append(String.format(Locale.ROOT, "| %s | %d | %.0f MiB | %.0f MiB | %.0f MiB | %.1f s |%n",
          m.peer(), m.t(), m.peakKib() / 1024.0, m.beforeKib() / 1024.0,
          (m.peakKib() - m.beforeKib()) / 1024.0, m.seconds()));
    }
    return out.toString();
  }

  /** The machine and settings, in a few lines. */
  static String machine(Compare.Run run) {
    String coreType = System.getenv("OPENBLAS_CORETYPE");
    String seq4jCore = run.info().values().stream().map(m -> m.get("openblas core"))
        .filter(v -> v != null).findFirst().orElse("?");
    return String.format(Locale.ROOT, "%s, %d cores; JVM %s %s; OPENBLAS_CORETYPE %s",
        CpuClock.cpuModel(), Runtime.getRuntime().availableProcessors(),
        System.getProperty("java.vm.name"), System.getProperty("java.runtime.version"),
        coreType == null || coreType.isEmpty()
            ? "not set (seq4j's OpenBLAS chose " + seq4jCore + ")" : "set to " + coreType);
  }

  private static String peakLine(Compare.Run run) {
    Compare.Row peak = peak(run);
    return peak == null ? "GEMM peak: none measured"
        : String.format(Locale.ROOT, "GEMM peak of this run: %.0f GFLOP/s (%s, %s, %s)",
            peak.gflops(), peak.c().id(), peak.peer(), peak.setting());
  }

  private static long noisyRows(Compare.Run run) {
    return run.rows().stream().filter(r -> noisy(run, r)).count();
  }

  private static String summary(Compare.Run run) {
    long noisy = noisyRows(run);
    long ok = run.rows().stream().filter(r -> r.status().equals("ok")).count();
    return String.format(Locale.ROOT, "Run %s, %.1f min (`%s`). %s. %s",
        Compare.timestamp(run.start()), Duration.between(run.start(), run.end()).toSeconds() / 60.0,
        run.command(), peakLine(run), noisy == 0
            ? "No measurement was disturbed by other processes (threshold "
                + (int) run.noise() + "% of the machine's CPU)."
            : noisy + " of " + ok + " measurements ran while other processes took more than "
                + (int) run.noise() + "% of the machine's CPU (⚠): this machine was not idle, "
                + "so rerun those before believing them.");
  }

  /** The whole report. */
  static String markdown(Compare.Run run) {
    StringBuilder out = new StringBuilder();
    out.append("# seq4j beside libtorch and DeepLearning4j\n\n");
    out.append(summary(run)).append("\n\n");
    out.append("Machine: ").append(machine(run)).append("\n\n");
    out.append("Each peer at its best setting per case (libtorch: as-is, `OPENBLAS_NUM_THREADS=1`, "
        + "`OMP_WAIT_POLICY=PASSIVE`, one JVM each; seq4j: its two recurrent backends). Median of "
        + "the measured calls after warm-up; spread is half the interquartile range; GFLOP/s from "
        + "DESIGN.md's flop formulas (the same for every peer); seq4j ÷ best peer is the best peer's "
        + "time over seq4j's (above 1: seq4j is faster)."
        + (run.rounds() > 1 ? " Every JVM ran " + run.rounds() + " times, round after round; each "
            + "row is the round with the median median." : "") + "\n\n");
    out.append(mainTable(run)).append('\n');
    out.append("![chart](peers.png)\n\n");
    String torch = torchSettings(run);
    if (!torch.isEmpty()) {
      out.append("## libtorch's thread settings\n\n").append(torch).append('\n');
    }
    String memory = memoryTable(run);
    if (!memory.isEmpty()) {
      out.append("## Peak resident memory, causal attention forward+backward (one sequence, 8 "
          + "heads of 64), one fresh JVM each\n\n").append(memory).append('\n');
    }
    out.append("## Every setting\n\n").append(allSettings(run)).append('\n');
    out.append("## Machine while measuring\n\n");
    for (String note : run.machineNotes()) {
      out.append("- ").append(note).append('\n');
    }
    out.append("\n## Libraries: versions, ISA dispatch, threads\n\n");
    for (Map.Entry<String, Map<String, String>> e : run.info().entrySet()) {
      out.append("### ").append(e.getKey()).append("\n\n```\n");
      for (Map.Entry<String, String> kv : e.getValue().entrySet()) {
        out.append(kv.getKey()).append(": ").append(kv.getValue().replace(" | ", "\n  "))
            .append('\n');
      }
      out.append("```\n\n");
    }
    return out.toString();
  }

  /** The README's section: the summary, the main table, the chart, the memory table. */
  static String section(Compare.Run run) {
    StringBuilder out = new StringBuilder();
    out.append("### seq4j beside libtorch and DeepLearning4j (generated)\n\n");
    out.append("Generated by `org.seq4j.peers.Compare` (bench/README.md, \"Peers\"); the full report "
        + "with every setting and each library's ISA dispatch is "
        + "[bench/results/peers.md](bench/results/peers.md). ");
    out.append(summary(run)).append("\n\n");
    out.append("Machine: ").append(machine(run)).append("\n\n");
    out.append(mainTable(run)).append('\n');
    out.append("![seq4j, libtorch and DL4J, GFLOP/s per case](bench/results/peers.png)\n\n");
    String memory = memoryTable(run);
    if (!memory.isEmpty()) {
      out.append("Peak resident memory of a causal attention forward+backward (one sequence, 8 "
          + "heads of 64):\n\n").append(memory).append('\n');
    }
    return out.toString();
  }
}
