package org.seq4j.examples;

import java.lang.foreign.Arena;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;

/**
 * The README's main demo. Until the recurrent and attention layers exist it shows the runtime:
 * what was loaded, and a matrix product on both backends checked against each other.
 */
public final class Demo {
  private Demo() {}

  /**
   * Runs the demo.
   *
   * @param args ignored for now
   */
  public static void main(String[] args) {
    System.out.println(Seq4j.runtimeInfo());
    try (Arena arena = Arena.ofConfined()) {
      int n = 512;
      Tensor a = Tensor.randomNormal(arena, 1, n, n);
      Tensor b = Tensor.randomNormal(arena, 2, n, n);
      Tensor onednn = Tensor.zeros(arena, n, n);
      Tensor blas = Tensor.zeros(arena, n, n);
      long start = System.nanoTime();
      TensorOps.matmul(a, b, onednn, MatmulOptions.DEFAULT.backend(Backend.ONEDNN));
      long middle = System.nanoTime();
      TensorOps.matmul(a, b, blas, MatmulOptions.DEFAULT.backend(Backend.BLAS));
      long end = System.nanoTime();
      float[] x = onednn.toArray();
      float[] y = blas.toArray();
      double worst = 0;
      for (int i = 0; i < x.length; i++) {
        worst = Math.max(worst, Math.abs(x[i] - y[i]));
      }
      System.out.printf(
          "%d x %d product: oneDNN %.2f ms, OpenBLAS %.2f ms (first calls, including warm-up);"
              + " largest difference %.2e%n",
          n, n, (middle - start) / 1e6, (end - middle) / 1e6, worst);
      System.out.printf("c[0][0..3] = %.4f %.4f %.4f %.4f%n",
          onednn.get(0, 0), onednn.get(0, 1), onednn.get(0, 2), onednn.get(0, 3));
    }
  }
}
