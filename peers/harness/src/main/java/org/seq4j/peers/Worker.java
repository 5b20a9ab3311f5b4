package org.seq4j.peers;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The main of one peer's JVM, started by {@link Compare}: runs the selected {@link Case}s on this
 * peer and prints one line per result for the orchestrator to read (the protocol: tab-separated,
 * starting with {@code @@info}, {@code @@result} or {@code @@memory}). A case the peer has no
 * layer for is reported {@code na} with the reason; one that fails, {@code error} with the
 * message; nothing is dropped.
 *
 * <p>Arguments: {@code quick}, {@code cases=REGEX} (a {@link Case#id} pattern, found anywhere),
 * {@code memory=T} (instead of the cases: one causal attention forward+backward at length T, then
 * the peak resident memory).
 */
public abstract class Worker {
  /** Thrown by {@link #create} for a case this peer does not have. */
  public static final class Unsupported extends Exception {
    private static final long serialVersionUID = 1;

    /** With the reason the table shows. */
    public Unsupported(String reason) {
      super(reason);
    }
  }

  /** Library name, version and ISA dispatch, as key and value lines for the report's header. */
  protected abstract Map<String, String> info();

  /**
   * The variants of a case this process runs, each a row of its own: seq4j's backends, say; one
   * empty variant by default.
   */
  protected List<String> variants(Case c) {
    return List.of("");
  }

  /** The work of a case, set up (weights, inputs, plans) and ready to be timed. */
  protected abstract Measurement.Work create(Case c, String variant) throws Exception;

  /**
   * One causal attention forward and backward at length {@code t} (one sequence, 8 heads of 64),
   * for the peak-memory runs.
   */
  protected abstract void attentionOnce(long t) throws Exception;

  /** Parses the arguments and runs. */
  protected final void run(String[] args) {
    boolean quick = false;
    Pattern cases = Pattern.compile(".*");
    long memory = 0;
    for (String arg : args) {
      if (arg.equals("quick")) {
        quick = true;
      } else if (arg.startsWith("cases=")) {
        cases = Pattern.compile(arg.substring(6));
      } else if (arg.startsWith("memory=")) {
        memory = Long.parseLong(arg.substring(7));
      } else {
        throw new IllegalArgumentException("argument: unknown " + arg);
      }
    }
    if (memory > 0) {
      runMemory(memory);
      return;
    }
    Map<String, String> info;
    try {
      info = info();
    } catch (Throwable e) {
      info = new LinkedHashMap<>();
      info.put("error", String.valueOf(e));
    }
    for (Map.Entry<String, String> e : info.entrySet()) {
      emit("@@info", e.getKey(), e.getValue());
    }
    Measurement measurement = quick ? Measurement.QUICK : Measurement.FULL;
    List<Case> selected = new ArrayList<>();
    for (Case c : Case.all()) {
      if (cases.matcher(c.id()).find()) {
        selected.add(c);
      }
    }
    for (Case c : selected) {
      for (String variant : variants(c)) {
        emit("@@start", c.id(), variant);
        try (Measurement.Work work = create(c, variant)) {
          Measurement.Sample sample = measurement.run(work);
          emit("@@result", c.id(), variant, "ok", sample.toLine());
        } catch (Unsupported e) {
          emit("@@result", c.id(), variant, "na", e.getMessage());
        } catch (Throwable e) {
          e.printStackTrace();
          emit("@@result", c.id(), variant, "error", e.getClass().getSimpleName() + ": "
              + e.getMessage());
        }
      }
    }
  }

  private void runMemory(long t) {
    long before = CpuClock.peakResidentKib();
    long start = System.nanoTime();
    try {
      attentionOnce(t);
      emit("@@memory", Long.toString(t), "ok", Long.toString(before),
          Long.toString(CpuClock.peakResidentKib()),
          Double.toString((System.nanoTime() - start) / 1e9));
    } catch (Throwable e) {
      e.printStackTrace();
      emit("@@memory", Long.toString(t), "error", e.getClass().getSimpleName() + ": "
          + e.getMessage());
    }
  }

  /** The version in a JAR's {@code META-INF/maven/GROUP/ARTIFACT/pom.properties}, or "?". */
  public static String mavenVersion(String group, String artifact) {
    String path = "META-INF/maven/" + group + "/" + artifact + "/pom.properties";
    try (var in = Worker.class.getClassLoader().getResourceAsStream(path)) {
      if (in == null) {
        return "?";
      }
      java.util.Properties p = new java.util.Properties();
      p.load(in);
      return p.getProperty("version", "?");
    } catch (java.io.IOException e) {
      return "?";
    }
  }

  /** Prints one protocol line; tabs and line breaks in the values become spaces and " | ". */
  static void emit(String... fields) {
    StringBuilder b = new StringBuilder();
    for (int k = 0; k < fields.length; k++) {
      String v = fields[k] == null ? "" : fields[k];
      if (k == fields.length - 1 && fields[0].equals("@@result") && v.contains("\t")) {
        b.append(v); // the sample's own tab-separated line
      } else {
        b.append(v.replace("\t", " ").replace("\r", "").replace("\n", " | "));
      }
      if (k < fields.length - 1) {
        b.append('\t');
      }
    }
    System.out.println(b);
    System.out.flush();
  }
}
