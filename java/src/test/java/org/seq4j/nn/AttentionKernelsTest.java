package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;

/**
 * Attention under every copy of seq4j's own kernels that this CPU runs: the one ISA switch that
 * selects the recurrent cell kernels selects attention's too (its AVX-512 tile kernels under
 * AVX512, its AVX2 ones under AVX2, its scalar and OpenBLAS fallback under BASELINE), so each
 * copy is checked against the float64 reference, forward and backward, on every machine.
 */
class AttentionKernelsTest {

  @AfterEach
  void restoreBest() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** The copies this CPU can run; the baseline, the portable fallback, is always among them. */
  static List<KernelIsa> runnableCopies() {
    return org.seq4j.reference.KernelCopies.runnable();
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
   * The ragged edges of the tile kernels: the AVX-512 copy's tiles are 12 rows (queries, or keys
   * in the backward's transposed products) by two 16-key panels or two 16-column runs, with a
   * one-panel tile for an odd last panel and masked columns past the last run. Key counts of odd
   * panel counts (17, 33, 47, 129), head and value sizes that are not multiples of 16 or 32 (8,
   * 24, 40, 72, 80), query counts that are not multiples of 12 (1, 11, 13, 25, 37, 130: two
   * blocks of 72 and 58), causal or not, and causal lengths of several query and key blocks,
 * under every copy.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("runnableCopies")
  void raggedTilesMatchTheReferenceUnderEachCopy(KernelIsa isa) {
    Seq4j.selectKernels(isa);
    AttentionTest attention = new AttentionTest();
    attention.shapeMatchesTheReference(13, 17, 8, 24, false);
    attention.shapeMatchesTheReference(25, 33, 24, 8, true);
    attention.shapeMatchesTheReference(37, 47, 72, 80, false);
    attention.shapeMatchesTheReference(11, 129, 80, 72, true);
    attention.shapeMatchesTheReference(1, 47, 64, 64, false);
    attention.shapeMatchesTheReference(130, 129, 48, 40, true);
    attention.shapeMatchesTheReference(47, 13, 16, 48, true);
    // causal tiles the diagonal crosses at several offsets: 96-query blocks against 128-key
    // blocks, row groups that see none of a key block, and the backward's skewed products
    attention.shapeMatchesTheReference(300, 300, 64, 64, true);
    attention.shapeMatchesTheReference(250, 250, 24, 40, true);
    // scores far from zero: no padded key of a last panel, and no masked key, counts as a max
    attention.extremeScoresMatchTheReference(37, 100, false);
    attention.extremeScoresMatchTheReference(150, 150, true);
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
