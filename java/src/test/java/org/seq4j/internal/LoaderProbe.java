package org.seq4j.internal;

import java.lang.foreign.Arena;
import org.seq4j.RuntimeInfo;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;

/**
 * Run in a child JVM by {@link NativeLoaderTest}: loads seq4j, runs a product, prints {@code OK
 * <folder>} and {@code SOURCE <where from and why>}, or {@code FAILED <exception>} and exits 0 or
 * 3.
 */
public final class LoaderProbe {
  private LoaderProbe() {}

  public static void main(String[] args) {
    try {
      RuntimeInfo info = Seq4j.runtimeInfo();
      try (Arena arena = Arena.ofConfined()) {
        Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4}, 2, 2);
        float product = TensorOps.matmul(arena, a, a).get(1, 1);
        if (product != 22f) {
          throw new AssertionError("product " + product);
        }
      }
      System.out.println("OK " + info.libraryFolder());
      System.out.println("SOURCE " + info.librarySource());
    } catch (Throwable t) {
      System.out.println("FAILED " + t);
      System.exit(3);
    }
  }
}
