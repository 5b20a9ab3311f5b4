package org.seq4j.reference;

import java.util.ArrayList;
import java.util.List;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Seq4jException;

/** The native kernels' ISA copies, for tests that check every copy this CPU can run. */
public final class KernelCopies {
  private KernelCopies() {}

  /**
   * The copies this CPU can run (the baseline, the portable fallback, always among them); leaves
   * the best copy selected.
   */
  public static List<KernelIsa> runnable() {
    List<KernelIsa> runnable = new ArrayList<>();
    for (KernelIsa isa : new KernelIsa[] {KernelIsa.BASELINE, KernelIsa.AVX2, KernelIsa.AVX512}) {
      try {
        Seq4j.selectKernels(isa);
        runnable.add(isa);
      } catch (Seq4jException unsupported) {
        if (!unsupported.getMessage().contains("this CPU has no")) {
          throw new AssertionError("unexpected refusal: " + unsupported.getMessage(), unsupported);
        }
      } finally {
        Seq4j.selectKernels(KernelIsa.BEST);
      }
    }
    return runnable;
  }
}
