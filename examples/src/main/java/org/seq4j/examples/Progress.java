package org.seq4j.examples;

import java.io.Console;
import java.io.PrintStream;

/**
 * Training progress with the loss and the speed. On a terminal: one bar redrawn in place (carriage
 * return). Otherwise (output redirected to a file or a pipe, a CI log): one plain line per update,
 * with no carriage returns or escape codes.
 */
final class Progress {
  private static final int BAR = 24;

  private final String label;
  private final int total;
  private final String unit;
  private final PrintStream out;
  private final boolean terminal;
  private final long start = System.nanoTime();

  /** Progress written to {@code System.out}, in place only where it is a terminal. */
  Progress(String label, int total, String unit) {
    this(label, total, unit, System.out, isTerminal());
  }

  /**
   * Progress written to {@code out}.
   *
   * @param terminal whether {@code out} is a terminal: if so the line is redrawn in place, if not
   *     each update is written as a line of its own
   */
  Progress(String label, int total, String unit, PrintStream out, boolean terminal) {
    this.label = label;
    this.total = total;
    this.unit = unit;
    this.out = out;
    this.terminal = terminal;
  }

  /**
   * Whether standard output is an interactive terminal: there is a console
   * ({@code System.console() != null}) and, from JDK 22 on, it reports
   * {@link Console#isTerminal()}; false when output is redirected.
   */
  static boolean isTerminal() {
    Console console = System.console();
    return console != null && console.isTerminal();
  }

  /**
   * Reports {@code done} of {@code total} epochs, the loss and {@code samples} processed so far (for
   * the speed); on a terminal the line is finished with a newline once {@code done == total}.
   */
  void update(int done, double loss, long samples) {
    double seconds = (System.nanoTime() - start) / 1e9;
    double speed = seconds > 0 ? samples / seconds : 0;
    if (terminal) {
      int filled = total > 0 ? (int) Math.max(0, Math.min(BAR, (long) BAR * done / total)) : BAR;
      out.printf("\r  %-10s epoch %3d/%d [%s%s] loss %.4f  %,.0f %s/s ", label, done, total,
          "#".repeat(filled), ".".repeat(BAR - filled), loss, speed, unit);
      if (done == total) {
        out.println();
      }
    } else {
      out.printf("  %-10s epoch %3d/%d  loss %.4f  %,.0f %s/s%n", label, done, total, loss, speed,
          unit);
    }
    out.flush();
  }
}
