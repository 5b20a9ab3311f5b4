package org.seq4j.bench;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import org.seq4j.Tensor;
import org.seq4j.nn.Mode;
import org.seq4j.nn.ScaledDotProductAttention;

/**
 * Peak resident memory of one attention forward+backward (8 heads of 64, one sequence) at a given
 * length, read from the kernel's {@code VmHWM}: run once per length in a fresh JVM, {@code java
 * -cp seq4j-benchmarks.jar org.seq4j.bench.AttentionMemory 4096}. The tensors themselves (q, k, v,
 * output, their gradients: 8·T·64 floats each) grow linearly; a T×T score matrix would be 8·T²
 * floats (8 GiB at T = 16384).
 */
public final class AttentionMemory {
  private AttentionMemory() {}

  static long peakKilobytes() throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (line.startsWith("VmHWM:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    }
    return -1;
  }

  /**
   * Runs one forward and backward at length {@code args[0]} and prints the peak memory.
   *
   * @param args the sequence length
   */
  public static void main(String[] args) throws IOException {
    int length = Integer.parseInt(args[0]);
    long before = peakKilobytes();
    long start = System.nanoTime();
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.randomNormal(arena, 1, 1, 8, length, 64);
      Tensor k = Tensor.randomNormal(arena, 2, 1, 8, length, 64);
      Tensor v = Tensor.randomNormal(arena, 3, 1, 8, length, 64);
      var result = ScaledDotProductAttention.forward(arena, q, k, v,
          ScaledDotProductAttention.Options.DEFAULT.causal(true), Mode.TRAINING);
      ScaledDotProductAttention.backward(arena, result.context(), result.output());
    }
    long after = peakKilobytes();
    double tensorsMiB = 8.0 * length * 64 * 4 * 8 / (1 << 20); // q, k, v, out, dout, dq, dk, dv
    System.out.printf("T=%d: peak RSS %.1f MiB (%.1f MiB before the call; the tensors are %.1f MiB;"
        + " a T×T matrix per head would be %.1f MiB), %.1f s%n", length, after / 1024.0,
        before / 1024.0, tensorsMiB, 8.0 * length * length * 4 / (1 << 20),
        (System.nanoTime() - start) / 1e9);
  }
}
