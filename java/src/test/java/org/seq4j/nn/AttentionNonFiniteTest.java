package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;

/**
 * NaN and ±inf in attention's q, k, v and masks give what PyTorch's math
 * scaled_dot_product_attention gives (masks added as -inf, _safe_softmax's zero rows where every
 * score is -inf, P·V over every key so 0 · NaN = NaN), on every kernel copy the CPU runs: the
 * output element by element against a float64 model of those semantics written here, and the
 * backward's NaN pattern the same on every copy.
 */
class AttentionNonFiniteTest {
  private static final int N = 2;
  private static final int HQ = 2;
  private static final int HKV = 1; // grouped: both query heads read key/value head 0
  private static final int TQ = 100; // more than one query block on every path
  private static final int TK = 150; // more than one key block (128)
  private static final int D = 20; // not a multiple of the 16-float panels: tails too
  private static final int DV = 20;

  @AfterEach
  void restore() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** The masks of a case. */
  enum MaskKind { NONE, CAUSAL, PADDING, ADDITIVE, BOOLEAN }

  /** Where a case puts its non-finite value. */
  enum Injection {
    NONE, Q_NAN, K_NAN, V_NAN, Q_INF, K_MINUS_INF, V_INF, MASK_NAN, MASK_PLUS_INF
  }

  private static final class Case {
    final float[] q = new float[N * HQ * TQ * D];
    final float[] k = new float[N * HKV * TK * D];
    final float[] v = new float[N * HKV * TK * DV];
    float[] additive; // (N, HQ, TQ, TK) or null
    float[] attend; // (TQ, TK) boolean or null
    float[] padding; // (N, TK), 1 = ignore, or null
    boolean causal;
    final String name;

    Case(MaskKind masks, Injection injection, long seed) {
      name = masks + "/" + injection;
      SplittableRandom random = new SplittableRandom(seed);
      fill(q, random);
      fill(k, random);
      fill(v, random);
      switch (masks) {
        case CAUSAL -> causal = true;
        case PADDING -> {
          padding = new float[N * TK];
          for (int j = 100; j < TK; j++) {
            padding[j] = 1; // sample 0: keys from 100 on ignored
          }
          for (int j = 0; j < TK; j++) {
            padding[TK + j] = 1; // sample 1: every key ignored: fully masked rows
          }
        }
        case ADDITIVE -> {
          additive = new float[N * HQ * TQ * TK];
          fill(additive, random);
          for (int j = 0; j < TK; j++) {
            additive[(3 * TK) + j] = Float.NEGATIVE_INFINITY; // (0, 0, 3): fully masked
          }
        }
        case BOOLEAN -> {
          attend = new float[TQ * TK];
          for (int i = 0; i < attend.length; i++) {
            attend[i] = random.nextInt(4) == 0 ? 0 : 1;
          }
          for (int j = 0; j < TK; j++) {
            attend[7 * TK + j] = 0; // row 7: fully masked
          }
        }
        default -> { }
      }
      switch (injection) {
        case Q_NAN -> q[((0 * HQ + 1) * TQ + 5) * D + 3] = Float.NaN;
        case K_NAN -> k[((1 * HKV) * TK + 140) * D] = Float.NaN; // above every causal diagonal
        case V_NAN -> v[((0 * HKV) * TK + 3) * DV + 7] = Float.NaN;
        case Q_INF -> q[((1 * HQ + 0) * TQ + 50) * D + 2] = Float.POSITIVE_INFINITY;
        case K_MINUS_INF -> k[((0 * HKV) * TK + 10) * D + 1] = Float.NEGATIVE_INFINITY;
        case V_INF -> v[((1 * HKV) * TK + 120) * DV + 19] = Float.POSITIVE_INFINITY;
        case MASK_NAN, MASK_PLUS_INF -> {
          if (attend == null) { // (a boolean mask takes the place of an additive one)
            if (additive == null) {
              additive = new float[N * HQ * TQ * TK];
            }
            // key 140 of row 9: above the causal diagonal, in a tile the causal path skips
            additive[((0 * HQ + 0) * TQ + 9) * TK + 140] =
                injection == Injection.MASK_NAN ? Float.NaN : Float.POSITIVE_INFINITY;
          }
        }
        default -> { }
      }
    }

    static void fill(float[] x, SplittableRandom random) {
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (random.nextDouble() * 2 - 1);
      }
    }

    boolean masked(int n, int i, int j) {
      return (causal && j > i) || (padding != null && padding[n * TK + j] != 0)
          || (attend != null && attend[i * TK + j] == 0);
    }

    /** PyTorch's math attention in float64: the weights (N, HQ, TQ, TK). */
    double[] referenceWeights() {
      double scale = 1 / Math.sqrt(D);
      double[] w = new double[N * HQ * TQ * TK];
      for (int n = 0; n < N; n++) {
        for (int h = 0; h < HQ; h++) {
          int g = h / (HQ / HKV);
          for (int i = 0; i < TQ; i++) {
            int row = ((n * HQ + h) * TQ + i) * TK;
            boolean nan = false;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < TK; j++) {
              double s = 0;
              for (int e = 0; e < D; e++) {
                s += (double) q[((n * HQ + h) * TQ + i) * D + e] * k[((n * HKV + g) * TK + j) * D + e];
              }
              s *= scale;
              if (additive != null) {
                s += additive[row + j];
              }
              if (masked(n, i, j)) {
                s += Double.NEGATIVE_INFINITY; // added, as PyTorch adds its -inf mask
              }
              w[row + j] = s;
              nan |= Double.isNaN(s);
              max = Math.max(max, s);
            }
            if (nan) {
              java.util.Arrays.fill(w, row, row + TK, Double.NaN);
            } else if (max == Double.NEGATIVE_INFINITY) {
              java.util.Arrays.fill(w, row, row + TK, 0); // _safe_softmax
            } else {
              double sum = 0;
              for (int j = 0; j < TK; j++) {
                sum += w[row + j] = Math.exp(w[row + j] - max); // NaN for +inf - +inf
              }
              for (int j = 0; j < TK; j++) {
                w[row + j] /= sum;
              }
            }
          }
        }
      }
      return w;
    }

    /** The output (N, HQ, TQ, DV): P · V over every key, 0 · NaN included. */
    double[] referenceOutput() {
      double[] w = referenceWeights();
      double[] out = new double[N * HQ * TQ * DV];
      for (int n = 0; n < N; n++) {
        for (int h = 0; h < HQ; h++) {
          int g = h / (HQ / HKV);
          for (int i = 0; i < TQ; i++) {
            for (int e = 0; e < DV; e++) {
              double sum = 0;
              for (int j = 0; j < TK; j++) {
                sum += w[((n * HQ + h) * TQ + i) * TK + j] * v[((n * HKV + g) * TK + j) * DV + e];
              }
              out[((n * HQ + h) * TQ + i) * DV + e] = sum;
            }
          }
        }
      }
      return out;
    }

    ScaledDotProductAttention.Options options(Arena arena) {
      ScaledDotProductAttention.Options o = ScaledDotProductAttention.Options.DEFAULT.causal(causal);
      if (padding != null) {
        o = o.keyPaddingMask(Tensor.fromArray(arena, padding, N, TK));
      }
      if (attend != null) {
        o = o.booleanMask(Tensor.fromArray(arena, attend, TQ, TK));
      } else if (additive != null) {
        o = o.additiveMask(Tensor.fromArray(arena, additive, N, HQ, TQ, TK));
      }
      return o;
    }
  }

  static List<KernelIsa> runnableCopies() {
    return AttentionKernelsTest.runnableCopies();
  }

  private static void assertSemantics(String what, double[] expected, float[] actual) {
    assertEquals(expected.length, actual.length, what);
    int nan = 0;
    for (int i = 0; i < expected.length; i++) {
      double r = expected[i];
      float a = actual[i];
      boolean ok = Double.isNaN(r) ? Float.isNaN(a)
          : Double.isInfinite(r) ? a == r
          : Float.isFinite(a) && Math.abs(a - r) <= 1e-4 * (1 + Math.abs(r));
      if (!ok) {
        fail(what + ": element " + i + " expected " + r + ", got " + a);
      }
      nan += Double.isNaN(r) ? 1 : 0;
    }
    assertTrue(nan >= 0);
  }

  private static List<Case> cases() {
    List<Case> cases = new ArrayList<>();
    long seed = 1;
    for (MaskKind masks : MaskKind.values()) {
      for (Injection injection : Injection.values()) {
        cases.add(new Case(masks, injection, seed++));
      }
    }
    return cases;
  }

  @Test
  void nonFiniteInputsGivePyTorchsMathResultOnEveryCopy() {
    int checked = 0;
    List<Case> cases = cases();
    for (KernelIsa isa : runnableCopies()) {
      Seq4j.selectKernels(isa);
      for (Case c : cases) {
        try (Arena arena = Arena.ofConfined()) {
          Tensor q = Tensor.fromArray(arena, c.q, N, HQ, TQ, D);
          Tensor k = Tensor.fromArray(arena, c.k, N, HKV, TK, D);
          Tensor v = Tensor.fromArray(arena, c.v, N, HKV, TK, DV);
          ScaledDotProductAttention.Options options = c.options(arena);
          for (Mode mode : Mode.values()) {
            Tensor out = ScaledDotProductAttention.forward(arena, q, k, v, options, mode).output();
            assertSemantics(isa + " " + c.name + " " + mode + " output", c.referenceOutput(),
                out.toArray());
          }
          assertSemantics(isa + " " + c.name + " weights", c.referenceWeights(),
              ScaledDotProductAttention.weights(arena, q, k, options).toArray());
          checked++;
        }
      }
    }
    assertTrue(checked >= cases.size());
  }

  /** The cases that must give NaN rows do, and fully masked rows are zeros, not NaN. */
  @Test
  void theReferenceItselfSeparatesNanRowsFromFullyMaskedOnes() {
    Case nanQuery = new Case(MaskKind.NONE, Injection.Q_NAN, 3);
    double[] out = nanQuery.referenceOutput();
    int row = (0 * HQ + 1) * TQ + 5;
    for (int e = 0; e < DV; e++) {
      assertTrue(Double.isNaN(out[row * DV + e]));
      assertTrue(Double.isFinite(out[(row + 1) * DV + e]));
    }
    Case padded = new Case(MaskKind.PADDING, Injection.NONE, 4);
    out = padded.referenceOutput();
    for (int i = HQ * TQ * DV; i < out.length; i++) {
      assertEquals(0.0, out[i], "sample 1 has every key masked: zero rows");
    }
    Case causalNanKey = new Case(MaskKind.CAUSAL, Injection.K_NAN, 5);
    out = causalNanKey.referenceOutput();
    for (int i = HQ * TQ * DV; i < out.length; i++) {
      assertTrue(Double.isNaN(out[i]), "a NaN key poisons every row, masked or not");
    }
  }

  /** The backward's NaN pattern (and finite values) are the same on every copy. */
  @Test
  void theBackwardPropagatesNanTheSameOnEveryCopy() {
    List<KernelIsa> copies = runnableCopies();
    for (Case c : cases()) {
      float[][] first = null;
      for (KernelIsa isa : copies) {
        Seq4j.selectKernels(isa);
        try (Arena arena = Arena.ofConfined()) {
          Tensor q = Tensor.fromArray(arena, c.q, N, HQ, TQ, D);
          Tensor k = Tensor.fromArray(arena, c.k, N, HKV, TK, D);
          Tensor v = Tensor.fromArray(arena, c.v, N, HKV, TK, DV);
          ScaledDotProductAttention.Result r = ScaledDotProductAttention.forward(arena, q, k, v,
              c.options(arena), Mode.TRAINING);
          ScaledDotProductAttention.Gradients g = ScaledDotProductAttention.backward(arena,
              r.context(), Tensor.ones(arena, N, HQ, TQ, DV));
          float[][] grads = {g.query().toArray(), g.key().toArray(), g.value().toArray()};
          if (first == null) {
            first = grads;
            checkForwardNanRowsHaveNanQueryGradients(c, r.output().toArray(), grads[0]);
            continue;
          }
          for (int t = 0; t < 3; t++) {
            for (int i = 0; i < grads[t].length; i++) {
              float a = first[t][i];
              float b = grads[t][i];
              boolean same = Float.isNaN(a) ? Float.isNaN(b)
                  : Float.isInfinite(a) ? a == b
                  : Math.abs(a - b) <= 1e-3 * (1 + Math.abs(a));
              if (!same) {
                fail(c.name + " " + isa + " gradient " + "qkv".charAt(t) + "[" + i + "]: "
                    + copies.get(0) + " gives " + a + ", " + isa + " " + b);
              }
            }
          }
        }
      }
    }
  }

  /**
   * A NaN in the output's gradient, causal: PyTorch's math backward takes dP = dO Vᵀ over every
   * key and dS = P ⊙ (dP − D) with 0 · NaN = NaN where the mask made P zero, so one NaN at dO[row
   * i, column c] makes dq's row i, every key's dk, and column c of every key's dv NaN in that
   * key/value head (keys after the diagonal too), and nothing else. The causal skips must notice
   * it, on every copy.
   */
  @Test
  void aNanOutputGradientReachesWhatPyTorchsMathReaches() {
    int row = 5;
    int column = 7;
    int head = 1;
    for (KernelIsa isa : runnableCopies()) {
      Seq4j.selectKernels(isa);
      SplittableRandom random = new SplittableRandom(77);
      float[] q = new float[N * HQ * TQ * D];
      float[] k = new float[N * HKV * TK * D];
      float[] v = new float[N * HKV * TK * DV];
      float[] gradOut = new float[N * HQ * TQ * DV];
      Case.fill(q, random);
      Case.fill(k, random);
      Case.fill(v, random);
      Case.fill(gradOut, random);
      // causal with TQ < TK: query i sees keys 0 .. i
      gradOut[((0 * HQ + head) * TQ + row) * DV + column] = Float.NaN;
      try (Arena arena = Arena.ofConfined()) {
        var r = ScaledDotProductAttention.forward(arena, Tensor.fromArray(arena, q, N, HQ, TQ, D),
            Tensor.fromArray(arena, k, N, HKV, TK, D), Tensor.fromArray(arena, v, N, HKV, TK, DV),
            ScaledDotProductAttention.Options.DEFAULT.causal(true), Mode.TRAINING);
        var g = ScaledDotProductAttention.backward(arena, r.context(),
            Tensor.fromArray(arena, gradOut, N, HQ, TQ, DV));
        float[] dq = g.query().toArray();
        float[] dk = g.key().toArray();
        float[] dv = g.value().toArray();
        for (int n = 0; n < N; n++) {
          for (int h = 0; h < HQ; h++) {
            for (int i = 0; i < TQ; i++) {
              boolean poisoned = n == 0 && h == head && i == row;
              for (int e = 0; e < D; e++) {
                float x = dq[((n * HQ + h) * TQ + i) * D + e];
                assertEquals(poisoned, Float.isNaN(x), isa + ": dq[" + n + ", " + h + ", " + i
                    + ", " + e + "] = " + x);
              }
            }
          }
          for (int j = 0; j < TK; j++) {
            for (int e = 0; e < D; e++) {
              float x = dk[(n * TK + j) * D + e];
              assertEquals(n == 0, Float.isNaN(x), isa + ": dk[" + n + ", " + j + ", " + e
                  + "] = " + x);
            }
            for (int e = 0; e < DV; e++) {
              float x = dv[(n * TK + j) * DV + e];
              assertEquals(n == 0 && e == column, Float.isNaN(x), isa + ": dv[" + n + ", " + j
                  + ", " + e + "] = " + x);
            }
          }
        }
      }
    }
  }

  private static void checkForwardNanRowsHaveNanQueryGradients(Case c, float[] out, float[] dq) {
    for (int row = 0; row < N * HQ * TQ; row++) {
      boolean allNan = true;
      boolean allZero = true;
      for (int e = 0; e < DV; e++) {
        allNan &= Float.isNaN(out[row * DV + e]);
        allZero &= out[row * DV + e] == 0;
      }
      if (allNan) {
        assertTrue(Float.isNaN(dq[row * D]), c.name + ": a NaN row has a NaN query gradient");
      }
      if (allZero && !hasNonFiniteValue(c)) {
        for (int e = 0; e < D; e++) {
          assertEquals(0f, dq[row * D + e], c.name + ": a fully masked row has zero gradients");
        }
      }
    }
  }

  /** Whether q, k or v holds a NaN or ±inf (then 0 · it is NaN in the gradient products too). */
  private static boolean hasNonFiniteValue(Case c) {
    for (float[] x : new float[][] {c.q, c.k, c.v}) {
      for (float value : x) {
        if (!Float.isFinite(value)) {
          return true;
        }
      }
    }
    return false;
  }
}
