package org.seq4j.peers;

import java.util.Arrays;
import java.util.Locale;

/**
 * The timing loop every peer shares. A {@link Work} is prepared outside the timed region
 * ({@link Work#prepare}: clearing gradients, resetting state), then one {@link Work#call} is timed
 * with {@link System#nanoTime}. Warm-up: at least {@code warmupCalls} calls and {@code
 * warmupSeconds}; measurement: at least {@code calls} calls and {@code seconds}, at most {@code
 * maxCalls}. A slow case (seconds per call, or a machine that others are using) is cut short at
 * {@code capSeconds} of warm-up or of measurement, once it has one warm-up call and three
 * measured calls. The machine's CPU time and this process's are read around the measured calls, so
 * that time other processes took is reported (and flagged by {@link Compare}).
 *
 * @param warmupCalls fewest warm-up calls
 * @param warmupSeconds shortest warm-up
 * @param calls fewest measured calls
 * @param seconds shortest measurement
 * @param maxCalls most measured calls
 * @param capSeconds longest warm-up, and longest measurement, once the fewest calls are done
 */
public record Measurement(int warmupCalls, double warmupSeconds, int calls, double seconds,
    int maxCalls, double capSeconds) {

  /** The full run's settings. */
  public static final Measurement FULL = new Measurement(2, 1.0, 5, 2.0, 2000, 10);
  /** The quick run's settings. */
  public static final Measurement QUICK = new Measurement(1, 0.3, 3, 0.5, 500, 4);

  /** One call of the work, and what precedes it untimed. */
  public interface Work extends AutoCloseable {
    /** Untimed, before each call: clear gradients, reset state. */
    default void prepare() {}

    /** The timed call. */
    void call();

    /** Frees what the work holds. */
    @Override
    default void close() {}
  }

  /**
   * What a measurement gives.
   *
   * @param millis the measured calls' times, ms, sorted
   * @param foreignPercent other processes' CPU time during the measured calls, percent of all
   *     cores
   * @param stealPercent steal time, percent of all cores
   */
  public record Sample(double[] millis, double foreignPercent, double stealPercent) {
    /** The median, ms. */
    public double median() {
      return quantile(0.5);
    }

    /** A quantile of the sorted times (linear interpolation). */
    public double quantile(double q) {
      double pos = q * (millis.length - 1);
      int lo = (int) Math.floor(pos);
      int hi = Math.min(millis.length - 1, lo + 1);
      return millis[lo] + (pos - lo) * (millis[hi] - millis[lo]);
    }

    /** The line {@link Compare} reads. */
    public String toLine() {
      return String.format(Locale.ROOT, "%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%d\t%.1f\t%.1f", median(),
          quantile(0.25), quantile(0.75), millis[0], millis[millis.length - 1], millis.length,
          foreignPercent, stealPercent);
    }
  }

  /** Warms up and measures {@code work}. */
  public Sample run(Work work) {
    long start = System.nanoTime();
    for (int k = 0; (k < warmupCalls || (System.nanoTime() - start) < warmupSeconds * 1e9)
        && !(k >= 1 && (System.nanoTime() - start) > capSeconds * 1e9); k++) {
      work.prepare();
      work.call();
    }
    long pid = ProcessHandle.current().pid();
    double[] times = new double[maxCalls];
    int count = 0;
    long[] before = CpuClock.read(pid);
    long begin = System.nanoTime();
    while (count < maxCalls && (count < calls || (System.nanoTime() - begin) < seconds * 1e9)
        && !(count >= 3 && (System.nanoTime() - begin) > capSeconds * 1e9)) {
      work.prepare();
      long t0 = System.nanoTime();
      work.call();
      times[count++] = (System.nanoTime() - t0) / 1e6;
    }
    double elapsed = (System.nanoTime() - begin) / 1e9;
    long[] after = CpuClock.read(pid);
    double[] millis = Arrays.copyOf(times, count);
    Arrays.sort(millis);
    return new Sample(millis, CpuClock.foreignPercent(before, after, elapsed),
        CpuClock.stealPercent(before, after, elapsed));
  }
}
