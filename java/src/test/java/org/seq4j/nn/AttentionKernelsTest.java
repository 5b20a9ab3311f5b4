package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Seq4jException;
import org.seq4j.Tensor;

/**
 * Attention under every copy of seq4j's own kernels that this CPU runs: the one ISA switch that
 * selects the recurrent cell kernels selects attention's too (its AVX2 tile kernels under AVX2
 * and AVX512, its scalar and OpenBLAS fallback under BASELINE), so each copy is checked
 * against the float64 reference, forward and backward, on every machine.
 */
class AttentionKernelsTest {

  @AfterEach
  void restoreBest() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** The copies this CPU can run; the baseline, the portable fallback, is always among them. */
  static List<KernelIsa> runnableCopies() {
    List<KernelIsa> runnable = new ArrayList<>();
    for (KernelIsa isa : new KernelIsa[] {KernelIsa.BASELINE, KernelIsa.AVX2, KernelIsa.AVX512}) {
      try {
        Seq4j.selectKernels(isa);
        runnable.add(isa);
      } catch (Seq4jException unsupported) {
        assertTrue(unsupported.getMessage().contains("this CPU has no"), unsupported.getMessage());
      } finally {
        Seq4j.selectKernels(KernelIsa.BEST);
      }
    }
    return runnable;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("runnableCopies")
  void everyAttentionCaseMatchesTheReferenceUnderEachCopy(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    AttentionTest attention = new AttentionTest();
    AttentionTest.cases().forEach(attention::forwardWeightsAndGradientsMatchTheReference);
    // the wide heads cross the tile kernels' query and key blocks and their ragged ends
    attention.wideHeadsMatchTheReferenceAcrossBlocks(64, 64, false);
    attention.wideHeadsMatchTheReferenceAcrossBlocks(64, 72, true);
    attention.wideHeadsMatchTheReferenceAcrossBlocks(33, 8, true);
    attention.wideHeadsMatchTheReferenceAcrossBlocks(80, 9, false);
  }

  /**
   * Forcing the baseline reaches attention: its fallback (std::exp, OpenBLAS's sgemm) rounds
   * differently from the vector kernels, so on a CPU whose best copy is not the baseline some
   * output differs in its last bits, forward and backward.
   */
  @Test
  void forcingTheBaselineRunsAttentionsFallback() {
    KernelIsa best = Seq4j.selectKernels(KernelIsa.BASELINE);
    Seq4j.selectKernels(KernelIsa.BEST);
    assumeFalse(best == KernelIsa.BASELINE, "this CPU runs only the baseline copy");
    float[][] vector = forwardAndBackward();
    Seq4j.selectKernels(KernelIsa.BASELINE);
    float[][] fallback = forwardAndBackward();
    for (int i = 0; i < vector.length; i++) {
      assertFalse(Arrays.equals(vector[i], fallback[i]), "result " + i + " is bit for bit the same");
    }
  }

  /** Output and dq of one causal attention with head size 64 across several blocks. */
  private static float[][] forwardAndBackward() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor q = Tensor.randomNormal(arena, 1, 1, 2, 130, 64);
      Tensor k = Tensor.randomNormal(arena, 2, 1, 2, 150, 64);
      Tensor v = Tensor.randomNormal(arena, 3, 1, 2, 150, 64);
      var options = ScaledDotProductAttention.Options.DEFAULT.causal(true);
      var result = ScaledDotProductAttention.forward(arena, q, k, v, options, Mode.TRAINING);
      Tensor gradOutput = Tensor.randomNormal(arena, 4, result.output().shape().dims());
      var grads = ScaledDotProductAttention.backward(arena, result.context(), gradOutput);
      return new float[][] {result.output().toArray(), grads.query().toArray()};
    }
  }
}
