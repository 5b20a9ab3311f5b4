package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.Tolerances;
import org.seq4j.train.Losses;

class AutogradLossesTest {
  private static final double FORWARD = Tolerances.AUTOGRAD_LOSS_FORWARD;
  private static final double BACKWARD = Tolerances.ELEMENTWISE_BACKWARD;

  /** −mean over counted rows of log softmax(row)[target], from the definition. */
  private static double crossEntropy(double[] x, int classes, long[] targets, boolean logProbs) {
    double total = 0;
    int counted = 0;
    for (int i = 0; i < targets.length; i++) {
      if (targets[i] == Losses.IGNORE_INDEX) {
        continue;
      }
      counted++;
      double logZ = 0;
      if (!logProbs) {
        double z = 0;
        for (int j = 0; j < classes; j++) {
          z += Math.exp(x[i * classes + j]);
        }
        logZ = Math.log(z);
      }
      total += logZ - x[i * classes + (int) targets[i]];
    }
    return total / counted;
  }

  @Test
  void crossEntropyMatchesTheReferenceWithIgnoredRows() {
    long[] targets = {3, 0, -100, 6, 2};
    OpCheck.check("crossEntropy (5, 7)", new double[][] {OpCheck.normal(51, 35)},
        new long[][] {{5, 7}}, new long[0], t -> Losses.crossEntropy(t[0], targets),
        v -> new double[] {crossEntropy(v[0], 7, targets, false)}, FORWARD, BACKWARD);
  }

  @Test
  void crossEntropyOverLeadingDimensions() {
    long[] targets = {0, 1, 2, 3, 3, 2};
    OpCheck.check("crossEntropy (2, 3, 4)", new double[][] {OpCheck.normal(52, 24)},
        new long[][] {{2, 3, 4}}, new long[0], t -> Losses.crossEntropy(t[0], targets),
        v -> new double[] {crossEntropy(v[0], 4, targets, false)}, FORWARD, BACKWARD);
    long[] other = {0, 5, 1};
    OpCheck.check("crossEntropy ignoreIndex 5", new double[][] {OpCheck.normal(53, 9)},
        new long[][] {{3, 3}}, new long[0], t -> Losses.crossEntropy(t[0], other, 5),
        v -> new double[] {crossEntropy(v[0], 3, new long[] {0, -100, 1}, false)}, FORWARD,
        BACKWARD);
  }

  @Test
  void nllLossMatchesTheReferenceAndComposesWithLogSoftmax() {
    long[] targets = {1, -100, 0, 2};
    OpCheck.check("nllLoss (4, 3)", new double[][] {OpCheck.normal(54, 12)},
        new long[][] {{4, 3}}, new long[0], t -> Losses.nllLoss(t[0], targets),
        v -> new double[] {crossEntropy(v[0], 3, targets, true)}, FORWARD, BACKWARD);
    OpCheck.check("nllLoss(logSoftmax)", new double[][] {OpCheck.normal(55, 12)},
        new long[][] {{4, 3}}, new long[0],
        t -> Losses.nllLoss(t[0].logSoftmax(-1), targets),
        v -> new double[] {crossEntropy(v[0], 3, targets, false)}, FORWARD, BACKWARD);
  }

  @Test
  void mseLossGivesBothInputsTheirGradient() {
    OpCheck.check("mseLoss (3, 1, 5)",
        new double[][] {OpCheck.normal(56, 15), OpCheck.normal(57, 15)},
        new long[][] {{3, 1, 5}, {3, 1, 5}}, new long[0], t -> Losses.mseLoss(t[0], t[1]),
        v -> {
          double total = 0;
          for (int i = 0; i < 15; i++) {
            total += (v[0][i] - v[1][i]) * (v[0][i] - v[1][i]);
          }
          return new double[] {total / 15};
        }, FORWARD, BACKWARD);
  }

  @Test
  void theLossIsAScalarThatTheExplicitFormAgreesWith() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor logits = Arrays64.tensor(arena, OpCheck.normal(58, 12), 4, 3).requiresGrad(true);
      long[] targets = {0, 2, 1, 1};
      Tensor loss = Losses.crossEntropy(logits, targets);
      assertEquals(0, loss.shape().rank());
      assertTrue(loss.requiresGrad());
      Tensor explicitGradient = Tensor.zeros(arena, 4, 3);
      float explicit = Losses.crossEntropy(logits, targets, explicitGradient);
      assertEquals(explicit, loss.toArray()[0]);
      loss.mul(2f).backward();
      Arrays64.assertClose(Arrays64.doubles(explicitGradient.mul(2f)),
          Arrays64.doubles(logits.grad()), BACKWARD, "twice the explicit gradient");
      try (var off = Autograd.noGrad()) {
        assertFalse(Losses.crossEntropy(logits, targets).requiresGrad());
        assertFalse(Losses.mseLoss(logits, logits).requiresGrad());
      }
      Tensor allIgnored = Losses.crossEntropy(logits, new long[] {-100, -100, -100, -100});
      assertTrue(Float.isNaN(allIgnored.toArray()[0]), "as PyTorch's mean over no rows");
    }
  }

  @Test
  void anInPlaceChangeToTheLogitsIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor logits = Tensor.zeros(arena, 2, 3).requiresGrad(true);
      Tensor loss = Losses.crossEntropy(logits, new long[] {0, 1});
      logits.set(5f, 0, 0);
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().startsWith("Losses.crossEntropy:"), e.getMessage());
    }
  }

  @Test
  void argumentsAreChecked() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor logits = Tensor.zeros(arena, 3, 4);
      IndexOutOfBoundsException range = assertThrows(IndexOutOfBoundsException.class,
          () -> Losses.crossEntropy(logits, new long[] {0, 1, 4}));
      assertTrue(range.getMessage().startsWith("targets[2]: expected 0 <= target < 4"),
          range.getMessage());
      IndexOutOfBoundsException negative = assertThrows(IndexOutOfBoundsException.class,
          () -> Losses.nllLoss(logits, new long[] {0, -1, 0}));
      assertTrue(negative.getMessage().startsWith("targets[1]:"), negative.getMessage());
      IllegalArgumentException rows = assertThrows(IllegalArgumentException.class,
          () -> Losses.crossEntropy(Tensor.zeros(arena, 0, 4), new long[0]));
      assertTrue(rows.getMessage().startsWith("logits: expected at least one row"),
          rows.getMessage());
      IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
          () -> Losses.nllLoss(logits, new long[] {0, 1}));
      assertTrue(count.getMessage().startsWith("targets: expected 3 targets"),
          count.getMessage());
      NullPointerException npe = assertThrows(NullPointerException.class,
          () -> Losses.crossEntropy(null, new long[] {0}));
      assertEquals("logits", npe.getMessage());
      assertThrows(NullPointerException.class, () -> Losses.crossEntropy(logits, (long[]) null));
      IllegalArgumentException shape = assertThrows(IllegalArgumentException.class,
          () -> Losses.mseLoss(logits, Tensor.zeros(arena, 4, 3)));
      assertTrue(shape.getMessage().startsWith("target: expected shape (3, 4)"),
          shape.getMessage());
    }
  }
}
