package org.seq4j.peers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * CPU time from {@code /proc}: the whole machine's busy time ({@code /proc/stat}: user, nice,
 * system, irq, softirq; steal apart) and one process's own ({@code /proc/<pid>/stat}: utime +
 * stime of all its threads), in clock ticks ({@code USER_HZ}, 100 on Linux). The difference over a
 * measurement is CPU time that other processes took while it ran. Zeros where {@code /proc} is
 * not there (not Linux): nothing is then flagged.
 */
public final class CpuClock {
  /** Clock ticks per second of {@code /proc}'s figures. */
  public static final double TICKS_PER_SECOND = 100;

  private CpuClock() {}

  /** A reading: {machine busy ticks, machine steal ticks, own process ticks}. */
  public static long[] read(long pid) {
    long[] out = new long[3];
    try {
      String cpu = Files.readAllLines(Path.of("/proc/stat")).get(0);
      String[] f = cpu.trim().split("\\s+"); // cpu user nice system idle iowait irq softirq steal
      out[0] = Long.parseLong(f[1]) + Long.parseLong(f[2]) + Long.parseLong(f[3])
          + Long.parseLong(f[6]) + Long.parseLong(f[7]);
      out[1] = f.length > 8 ? Long.parseLong(f[8]) : 0;
      out[2] = processTicks(pid);
    } catch (IOException | RuntimeException e) {
      return new long[3];
    }
    return out;
  }

  /** utime + stime of a process (all its threads), in ticks; 0 when unreadable. */
  public static long processTicks(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).trim().split("\\s+");
      return Long.parseLong(f[11]) + Long.parseLong(f[12]); // fields 14 and 15 of stat
    } catch (IOException | RuntimeException e) {
      return 0;
    }
  }

  /**
   * Other processes' share of the machine between two readings, in percent of all cores over
   * {@code seconds}: (machine busy − own) / (seconds · cores · ticks per second).
   */
  public static double foreignPercent(long[] before, long[] after, double seconds) {
    int cores = Runtime.getRuntime().availableProcessors();
    long foreign = (after[0] - before[0]) - (after[2] - before[2]);
    return Math.max(0, 100.0 * foreign / (seconds * cores * TICKS_PER_SECOND));
  }

  /** Steal time (the hypervisor gave the cores to someone else), percent of all cores. */
  public static double stealPercent(long[] before, long[] after, double seconds) {
    int cores = Runtime.getRuntime().availableProcessors();
    return Math.max(0, 100.0 * (after[1] - before[1]) / (seconds * cores * TICKS_PER_SECOND));
  }

  /** The machine's busy share, percent of all cores, over the next {@code millis}. */
  public static double machineBusyPercent(long millis) throws InterruptedException {
    long[] before = read(ProcessHandle.current().pid());
    Thread.sleep(millis);
    long[] after = read(ProcessHandle.current().pid());
    int cores = Runtime.getRuntime().availableProcessors();
    return Math.min(100, 100.0 * ((after[0] - before[0]) + (after[1] - before[1]))
        / (millis / 1000.0 * cores * TICKS_PER_SECOND));
  }

  /** Peak resident memory of this process ({@code VmHWM}), KiB; -1 when unknown. */
  public static long peakResidentKib() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
        }
      }
    } catch (IOException e) {
      return -1;
    }
    return -1;
  }

  /** The CPU's model name from {@code /proc/cpuinfo} and the ISA extensions that matter here. */
  public static String cpuModel() {
    try {
      String model = "?";
      String flags = "";
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name") && model.equals("?")) {
          model = line.substring(line.indexOf(':') + 1).trim();
        }
        if (line.startsWith("flags") && flags.isEmpty()) {
          StringBuilder b = new StringBuilder();
          for (String flag : line.substring(line.indexOf(':') + 1).trim().split("\\s+")) {
            if (flag.equals("avx2") || flag.equals("fma") || flag.startsWith("avx512")
                || flag.equals("amx_bf16") || flag.equals("amx_tile")) {
              b.append(b.isEmpty() ? "" : " ").append(flag);
            }
          }
          flags = b.toString();
        }
      }
      return model + " (" + flags + ")";
    } catch (IOException e) {
      return System.getProperty("os.arch");
    }
  }
}
