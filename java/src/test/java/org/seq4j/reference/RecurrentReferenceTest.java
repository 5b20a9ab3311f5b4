package org.seq4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.RecurrentReference.Config;
import org.seq4j.reference.RecurrentReference.Result;

/**
 * The reference checked against hand arithmetic (one step of each cell, the numbers worked out
 * to 17 digits outside Java) and against itself under identities that any correct implementation
 * satisfies: packed lengths, time reversal, layer stacking, projection.
 */
class RecurrentReferenceTest {

  /** Rounding of a handful of double operations on values of order 1. */
  private static final double HAND_TOLERANCE = Tolerances.REFERENCE_BY_HAND;

  // ---------------------------------------------------------------- one step by hand

  /** The LSTM of the two hand-computed steps: I = H = 1, one sample, gate rows i, f, g, o. */
  private static Map<String, double[]> oneByOneLstm(boolean peephole) {
    Map<String, double[]> p = parameters(
        "weight_ih_l0", new double[] {0.1, 0.2, 0.3, 0.4},
        "weight_hh_l0", new double[] {-0.1, -0.2, 0.5, 0.6},
        "bias_ih_l0", new double[] {0.01, 0.02, 0.03, 0.04},
        "bias_hh_l0", new double[] {0.05, 0.06, 0.07, 0.08});
    if (peephole) {
      p.put("weight_ci_l0", new double[] {0.7});
      p.put("weight_cf_l0", new double[] {-0.8});
      p.put("weight_co_l0", new double[] {0.9});
    }
    return p;
  }

  @Test
  void oneLstmStepWithoutPeepholesByHand() {
    // x = 0.5, h0 = 0.2, c0 = -0.3
    // i  = σ(0.1·0.5 + 0.01 − 0.1·0.2 + 0.05)  = σ(0.09)  = 0.52248482479180012
    // f  = σ(0.2·0.5 + 0.02 − 0.2·0.2 + 0.06)  = σ(0.14)  = 0.53494294515821449
    // g  = tanh(0.3·0.5 + 0.03 + 0.5·0.2 + 0.07) = tanh(0.35) = 0.33637554433633221
    // o  = σ(0.4·0.5 + 0.04 + 0.6·0.2 + 0.08)  = σ(0.44)  = 0.60825903074651442
    // c' = f·(−0.3) + i·g = 0.015268233799350583
    // h' = o·tanh(c')     = 0.0092863194974937037
    Config config = new Config(Cell.LSTM, 1, 1, 1, false, true, false, 0);
    Result r = RecurrentReference.forward(config, oneByOneLstm(false), new double[] {0.5}, 1, 1,
        new double[] {0.2}, new double[] {-0.3}, null);
    assertEquals(0.015268233799350583, r.cn()[0], HAND_TOLERANCE, "c'");
    assertEquals(0.0092863194974937037, r.hn()[0], HAND_TOLERANCE, "h'");
    assertEquals(0.0092863194974937037, r.output()[0], HAND_TOLERANCE, "output = h'");
  }

  @Test
  void oneLstmStepWithPeepholesByHand() {
    // as above, with w_ci = 0.7, w_cf = −0.8, w_co = 0.9
    // i  = σ(0.09 + 0.7·(−0.3))  = σ(−0.12) = 0.47003594823542825
    // f  = σ(0.14 − 0.8·(−0.3))  = σ(0.38)  = 0.5938731029341427
    // g  = tanh(0.35)                        = 0.33637554433633221
    // c' = f·(−0.3) + i·g = −0.020053332934906563
    // o  = σ(0.44 + 0.9·c')  (the NEW cell)  = σ(0.42195200035858409) = 0.60395025192371819
    // h' = o·tanh(c') = −0.012109592286475105
    Config config = new Config(Cell.LSTM, 1, 1, 1, false, true, true, 0);
    Result r = RecurrentReference.forward(config, oneByOneLstm(true), new double[] {0.5}, 1, 1,
        new double[] {0.2}, new double[] {-0.3}, null);
    assertEquals(-0.020053332934906563, r.cn()[0], HAND_TOLERANCE, "c'");
    assertEquals(-0.012109592286475105, r.hn()[0], HAND_TOLERANCE, "h'");
    assertEquals(-0.012109592286475105, r.output()[0], HAND_TOLERANCE, "output = h'");
  }

  @Test
  void oneGruStepByHand() {
    // I = H = 1, x = 2, h0 = −0.5, gate rows r, z, n
    // r  = σ(0.1·2 + 0.01 + 0.4·(−0.5) + 0.04) = σ(0.05) = 0.51249739648421034
    // z  = σ(0.2·2 + 0.02 + 0.5·(−0.5) + 0.05) = σ(0.22) = 0.55477923510721476
    // n  = tanh(0.3·2 + 0.03 + r·(0.6·(−0.5) + 0.06))    reset after the product and its bias
    //    = tanh(0.50700062484378952) = 0.46760493957512065
    //    (reset before, tanh(0.69 − 0.3·r) = 0.49014470522780523, would give another h')
    // h' = (1 − z)·n + z·(−0.5) = −0.069202188688327545
    Config config = new Config(Cell.GRU, 1, 1, 1, false, true, false, 0);
    Map<String, double[]> p = parameters(
        "weight_ih_l0", new double[] {0.1, 0.2, 0.3},
        "weight_hh_l0", new double[] {0.4, 0.5, 0.6},
        "bias_ih_l0", new double[] {0.01, 0.02, 0.03},
        "bias_hh_l0", new double[] {0.04, 0.05, 0.06});
    Result r = RecurrentReference.forward(config, p, new double[] {2}, 1, 1, new double[] {-0.5},
        null, null);
    assertEquals(-0.069202188688327545, r.hn()[0], HAND_TOLERANCE, "h'");
    assertEquals(-0.069202188688327545, r.output()[0], HAND_TOLERANCE, "output = h'");
    assertNull(r.cn(), "no cell state outside LSTM");
  }

  @Test
  void twoRnnTanhStepsByHand() {
    // I = H = 1, W_ih = 0.8, W_hh = 0.3, b_ih = 0.1, b_hh = −0.2, h0 = −0.4, x = (0.5, −1)
    // h1 = tanh(0.8·0.5 + 0.1 + 0.3·(−0.4) − 0.2) = tanh(0.18) = 0.1780808681173302
    // h2 = tanh(0.8·(−1) + 0.1 + 0.3·h1 − 0.2) = tanh(−0.84657573956480094)
    //    = −0.68927632116338091
    Config config = new Config(Cell.RNN_TANH, 1, 1, 1, false, true, false, 0);
    Map<String, double[]> p = parameters(
        "weight_ih_l0", new double[] {0.8},
        "weight_hh_l0", new double[] {0.3},
        "bias_ih_l0", new double[] {0.1},
        "bias_hh_l0", new double[] {-0.2});
    Result r = RecurrentReference.forward(config, p, new double[] {0.5, -1}, 2, 1,
        new double[] {-0.4}, null, null);
    assertArrayEquals(new double[] {0.1780808681173302, -0.68927632116338091}, r.output(),
        HAND_TOLERANCE);
    assertArrayEquals(new double[] {-0.68927632116338091}, r.hn(), HAND_TOLERANCE);
  }

  @Test
  void threeRnnReluStepsWithoutBiasByHand() {
    // W_ih = 2, W_hh = −1, no bias, h0 = 0, x = (1, 0.5, 3)
    // h1 = relu(2·1) = 2; h2 = relu(2·0.5 − 2) = relu(−1) = 0; h3 = relu(2·3 − 0) = 6
    Config config = new Config(Cell.RNN_RELU, 1, 1, 1, false, false, false, 0);
    Map<String, double[]> p = parameters(
        "weight_ih_l0", new double[] {2},
        "weight_hh_l0", new double[] {-1});
    Result r = RecurrentReference.forward(config, p, new double[] {1, 0.5, 3}, 3, 1, null, null,
        null);
    assertArrayEquals(new double[] {2, 0, 6}, r.output(), 0);
    assertArrayEquals(new double[] {6}, r.hn(), 0);
  }

  // ---------------------------------------------------------------- parameter names and shapes

  @Test
  void parameterShapesOfATwoLayerBidirectionalLstmWithProjectionAndPeepholes() {
    // I = 10, H = 20, P = 5: 4H = 80 rows; layer 1 reads D·P = 10 features
    Config config = new Config(Cell.LSTM, 10, 20, 2, true, true, true, 5);
    List<String> expected = new ArrayList<>();
    for (String s : List.of("_l0", "_l0_reverse", "_l1", "_l1_reverse")) {
      expected.addAll(List.of("weight_ih" + s + " [80, 10]", "weight_hh" + s + " [80, 5]",
          "bias_ih" + s + " [80]", "bias_hh" + s + " [80]", "weight_hr" + s + " [5, 20]",
          "weight_ci" + s + " [20]", "weight_cf" + s + " [20]", "weight_co" + s + " [20]"));
    }
    assertEquals(expected, describe(RecurrentReference.parameterShapes(config)));
    assertEquals("weight_ih_l0 [80, 10]", expected.get(0), "the expectation itself, spelled out");
    assertEquals("weight_co_l1_reverse [20]", expected.get(31));
  }

  @Test
  void parameterShapesOfGruAndRnnWithoutBias() {
    // GRU: 3H = 12 rows; layer 1 reads D·H = 8
    assertEquals(List.of("weight_ih_l0 [12, 3]", "weight_hh_l0 [12, 4]",
        "weight_ih_l0_reverse [12, 3]", "weight_hh_l0_reverse [12, 4]", "weight_ih_l1 [12, 8]",
        "weight_hh_l1 [12, 4]", "weight_ih_l1_reverse [12, 8]", "weight_hh_l1_reverse [12, 4]"),
        describe(RecurrentReference.parameterShapes(
            new Config(Cell.GRU, 3, 4, 2, true, false, false, 0))));
    assertEquals(List.of("weight_ih_l0 [4, 3]", "weight_hh_l0 [4, 4]", "bias_ih_l0 [4]",
        "bias_hh_l0 [4]"), describe(RecurrentReference.parameterShapes(
            new Config(Cell.RNN_RELU, 3, 4, 1, false, true, false, 0))));
  }

  // ---------------------------------------------------------------- identities

  @Test
  void packedLengthsEqualRunningEachSampleAlone() {
    int steps = 5;
    int batch = 3;
    int[] lengths = {5, 2, 3};
    int inputSize = 2;
    for (Config config : List.of(
        new Config(Cell.GRU, inputSize, 3, 2, true, true, false, 0),
        new Config(Cell.LSTM, inputSize, 3, 2, true, true, false, 0),
        new Config(Cell.LSTM, inputSize, 3, 2, true, true, true, 2),
        new Config(Cell.RNN_TANH, inputSize, 3, 2, true, true, false, 0))) {
      Random random = new Random(3);
      Map<String, double[]> p = randomParameters(config, random);
      int states = config.numLayers() * config.directions();
      int width = config.directions() * config.outputSize();
      boolean lstm = config.cell() == Cell.LSTM;
      double[] x = randomArray(random, steps * batch * inputSize);
      for (int n = 0; n < batch; n++) {
        for (int t = lengths[n]; t < steps; t++) {
          for (int k = 0; k < inputSize; k++) {
            x[(t * batch + n) * inputSize + k] = 1e3 * random.nextGaussian(); // never read
          }
        }
      }
      double[] h0 = randomArray(random, states * batch * config.outputSize());
      double[] c0 = lstm ? randomArray(random, states * batch * config.hiddenSize()) : null;
      Result all = RecurrentReference.forward(config, p, x, steps, batch, h0, c0, lengths);

      for (int n = 0; n < batch; n++) {
        int length = lengths[n];
        Result alone = RecurrentReference.forward(config, p,
            sample(x, steps, batch, inputSize, n, length), length, 1,
            sample(h0, states, batch, config.outputSize(), n, states),
            lstm ? sample(c0, states, batch, config.hiddenSize(), n, states) : null, null);
        String where = config + " sample " + n;
        for (int t = 0; t < steps; t++) {
          double[] expected = t < length ? Arrays.copyOfRange(alone.output(), t * width,
              (t + 1) * width) : new double[width];
          assertArrayEquals(expected, Arrays.copyOfRange(all.output(), (t * batch + n) * width,
              (t * batch + n + 1) * width), 0, where + " output at step " + t);
        }
        assertArrayEquals(alone.hn(), sample(all.hn(), states, batch, config.outputSize(), n,
            states), 0, where + " h_n");
        if (lstm) {
          assertArrayEquals(alone.cn(), sample(all.cn(), states, batch, config.hiddenSize(), n,
              states), 0, where + " c_n");
        }
      }
    }
  }

  @Test
  void eachDirectionIsAForwardNetOnItsOwnTimeOrder() {
    int steps = 4;
    int batch = 2;
    int inputSize = 2;
    for (Config both : List.of(
        new Config(Cell.LSTM, inputSize, 3, 1, true, true, true, 2),
        new Config(Cell.GRU, inputSize, 3, 1, true, true, false, 0),
        new Config(Cell.RNN_RELU, inputSize, 3, 1, true, false, false, 0))) {
      Config forwardOnly = new Config(both.cell(), both.inputSize(), both.hiddenSize(), 1, false,
          both.bias(), both.peephole(), both.projSize());
      int hout = both.outputSize();
      int hidden = both.hiddenSize();
      boolean lstm = both.cell() == Cell.LSTM;
      Random random = new Random(8);
      Map<String, double[]> p = randomParameters(both, random);
      double[] x = randomArray(random, steps * batch * inputSize);
      double[] h0 = randomArray(random, 2 * batch * hout);
      double[] c0 = lstm ? randomArray(random, 2 * batch * hidden) : null;
      Result bidirectional = RecurrentReference.forward(both, p, x, steps, batch, h0, c0, null);
      assertEquals(steps * batch * 2 * hout, bidirectional.output().length);

      for (int direction = 0; direction < 2; direction++) {
        // direction 0: the _l0 weights on x; direction 1: the _l0_reverse weights on x reversed
        Map<String, double[]> weights = new LinkedHashMap<>();
        String suffix = direction == 0 ? "_l0" : "_l0_reverse";
        p.forEach((name, values) -> {
          if (name.endsWith(suffix)) {
            weights.put(name.substring(0, name.length() - suffix.length()) + "_l0", values);
          }
        });
        double[] input = direction == 0 ? x : reverseTime(x, steps, batch * inputSize);
        Result alone = RecurrentReference.forward(forwardOnly, weights, input, steps, batch,
            Arrays.copyOfRange(h0, direction * batch * hout, (direction + 1) * batch * hout),
            lstm ? Arrays.copyOfRange(c0, direction * batch * hidden,
                (direction + 1) * batch * hidden) : null, null);
        String where = both.cell() + " direction " + direction;
        for (int t = 0; t < steps; t++) {
          int aloneStep = direction == 0 ? t : steps - 1 - t;
          for (int n = 0; n < batch; n++) {
            for (int k = 0; k < hout; k++) {
              assertEquals(alone.output()[(aloneStep * batch + n) * hout + k],
                  bidirectional.output()[(t * batch + n) * 2 * hout + direction * hout + k], 0,
                  where + " output at step " + t);
            }
          }
        }
        assertArrayEquals(alone.hn(), Arrays.copyOfRange(bidirectional.hn(),
            direction * batch * hout, (direction + 1) * batch * hout), 0, where + " h_n");
        if (lstm) {
          assertArrayEquals(alone.cn(), Arrays.copyOfRange(bidirectional.cn(),
              direction * batch * hidden, (direction + 1) * batch * hidden), 0, where + " c_n");
        }
      }
    }
  }

  @Test
  void layerOneReadsTheConcatenatedOutputsOfLayerZero() {
    int steps = 3;
    int batch = 2;
    Config stack = new Config(Cell.LSTM, 2, 3, 2, true, true, true, 2);
    Config lower = new Config(Cell.LSTM, 2, 3, 1, true, true, true, 2);
    Config upper = new Config(Cell.LSTM, 4, 3, 1, true, true, true, 2); // D·P = 4 inputs
    Random random = new Random(13);
    Map<String, double[]> p = randomParameters(stack, random);
    Map<String, double[]> lowerWeights = new LinkedHashMap<>();
    Map<String, double[]> upperWeights = new LinkedHashMap<>();
    p.forEach((name, values) -> {
      if (name.contains("_l0")) {
        lowerWeights.put(name, values);
      } else {
        upperWeights.put(name.replace("_l1", "_l0"), values);
      }
    });
    double[] x = randomArray(random, steps * batch * 2);
    double[] h0 = randomArray(random, 4 * batch * 2); // (L·D, N, P), layer 0 first
    double[] c0 = randomArray(random, 4 * batch * 3); // (L·D, N, H)
    Result all = RecurrentReference.forward(stack, p, x, steps, batch, h0, c0, null);
    Result first = RecurrentReference.forward(lower, lowerWeights, x, steps, batch,
        Arrays.copyOfRange(h0, 0, 2 * batch * 2), Arrays.copyOfRange(c0, 0, 2 * batch * 3), null);
    Result second = RecurrentReference.forward(upper, upperWeights, first.output(), steps, batch,
        Arrays.copyOfRange(h0, 2 * batch * 2, h0.length),
        Arrays.copyOfRange(c0, 2 * batch * 3, c0.length), null);
    assertArrayEquals(second.output(), all.output(), 0, "output of the top layer");
    assertArrayEquals(concat(first.hn(), second.hn()), all.hn(), 0, "h_n, index layer·D + dir");
    assertArrayEquals(concat(first.cn(), second.cn()), all.cn(), 0, "c_n, index layer·D + dir");
  }

  @Test
  void projectionNarrowsOutputsAndHiddenStatesToP() {
    int steps = 3;
    int batch = 2;
    Config config = new Config(Cell.LSTM, 2, 3, 2, true, true, false, 2);
    Random random = new Random(21);
    Result r = RecurrentReference.forward(config, randomParameters(config, random),
        randomArray(random, steps * batch * 2), steps, batch, null, null, null);
    assertEquals(steps * batch * 2 * 2, r.output().length, "output (T, N, D·P)");
    assertEquals(2 * 2 * batch * 2, r.hn().length, "h_n (L·D, N, P)");
    assertEquals(2 * 2 * batch * 3, r.cn().length, "c_n (L·D, N, H): not projected");
  }

  @Test
  void projectionIsWeightHrTimesTheUnprojectedHiddenState() {
    // one step from zero states: W_hh plays no part, so an unprojected LSTM with the same other
    // weights gives o ⊙ tanh(c'), and the projected one must give W_hr (o ⊙ tanh(c'))
    int batch = 2;
    int hidden = 3;
    int proj = 2;
    Config projected = new Config(Cell.LSTM, 2, hidden, 1, false, true, true, proj);
    Config plain = new Config(Cell.LSTM, 2, hidden, 1, false, true, true, 0);
    Random random = new Random(34);
    Map<String, double[]> p = randomParameters(projected, random);
    Map<String, double[]> q = new LinkedHashMap<>(p);
    q.remove("weight_hr_l0");
    q.put("weight_hh_l0", new double[4 * hidden * hidden]);
    double[] x = randomArray(random, batch * 2);
    Result withProjection = RecurrentReference.forward(projected, p, x, 1, batch, null, null,
        null);
    Result without = RecurrentReference.forward(plain, q, x, 1, batch, null, null, null);
    double[] weightHr = p.get("weight_hr_l0");
    for (int n = 0; n < batch; n++) {
      for (int k = 0; k < proj; k++) {
        double expected = 0;
        for (int j = 0; j < hidden; j++) {
          expected += weightHr[k * hidden + j] * without.hn()[n * hidden + j];
        }
        assertEquals(expected, withProjection.hn()[n * proj + k], HAND_TOLERANCE,
            "h_n " + n + ", " + k);
        assertEquals(expected, withProjection.output()[n * proj + k], HAND_TOLERANCE);
      }
    }
    assertArrayEquals(without.cn(), withProjection.cn(), 0, "the cell is not projected");
  }

  // ---------------------------------------------------------------- losses and gradients

  @Test
  void weightedLossSumsEveryWeightedOutputAndSkipsNullWeights() {
    Result r = new Result(new double[] {1, 2}, new double[] {3}, new double[] {4});
    double[] gOut = {10, 100};
    assertEquals(1 * 10 + 2 * 100 + 3 * 1000 + 4 * 10000,
        RecurrentReference.weightedLoss(r, gOut, new double[] {1000}, new double[] {10000}), 0);
    assertEquals(1 * 10 + 2 * 100, RecurrentReference.weightedLoss(r, gOut, null, null), 0);
    assertEquals(3 * 1000, RecurrentReference.weightedLoss(r, null, new double[] {1000}, null), 0);
    assertThrows(IllegalArgumentException.class,
        () -> RecurrentReference.weightedLoss(r, new double[] {1}, null, null));
  }

  @Test
  void finiteDifferencesMatchAnAnalyticGradientAndRestoreTheVariable() {
    double[] v = {0.3, -1.2, 2.5, 0, 7.25};
    double[] before = v.clone();
    double[] numeric = FiniteDifferences.gradient(v, () -> {
      double sum = 0; // L = Σ sin(v_i) v_i²
      for (double vi : v) {
        sum += Math.sin(vi) * vi * vi;
      }
      return sum;
    });
    assertArrayEquals(before, v, 0, "v restored exactly");
    for (int i = 0; i < v.length; i++) {
      // dL/dv_i = cos(v_i) v_i² + 2 v_i sin(v_i)
      double analytic = Math.cos(v[i]) * v[i] * v[i] + 2 * v[i] * Math.sin(v[i]);
      assertEquals(analytic, numeric[i], Tolerances.FINITE_DIFFERENCES_ANALYTIC, "element " + i);
    }
  }

  @Test
  void finiteDifferencesThroughTheReferenceGiveTheForgetGateAsDcnByDc0() {
    // c' = f ⊙ c + i ⊙ g and without peepholes f does not depend on c, so d c'/d c0 = f = σ(0.14)
    Config config = new Config(Cell.LSTM, 1, 1, 1, false, true, false, 0);
    Map<String, double[]> p = oneByOneLstm(false);
    double[] c0 = {-0.3};
    double[] gradient = FiniteDifferences.gradient(c0, () -> RecurrentReference.weightedLoss(
        RecurrentReference.forward(config, p, new double[] {0.5}, 1, 1, new double[] {0.2}, c0,
            null), null, null, new double[] {1}));
    assertEquals(0.53494294515821449, gradient[0],
        Tolerances.FINITE_DIFFERENCES_THROUGH_REFERENCE);
  }

  // ---------------------------------------------------------------- argument checks

  @Test
  void configurationsPyTorchCannotExpressAreRejected() {
    assertThrows(IllegalArgumentException.class,
        () -> new Config(Cell.GRU, 2, 3, 1, false, true, true, 0), "peephole on a GRU");
    assertThrows(IllegalArgumentException.class,
        () -> new Config(Cell.RNN_TANH, 2, 3, 1, false, true, false, 2), "projection on an RNN");
    assertThrows(IllegalArgumentException.class,
        () -> new Config(Cell.LSTM, 2, 0, 1, false, true, false, 0), "hidden size 0");
    assertThrows(IllegalArgumentException.class,
        () -> new Config(Cell.LSTM, 2, 3, 0, false, true, false, 0), "no layers");
  }

  @Test
  void missingUnexpectedOrMisshapenParametersAndBadLengthsAreRejected() {
    Config config = new Config(Cell.GRU, 2, 3, 1, false, true, false, 0);
    Map<String, double[]> p = randomParameters(config, new Random(1));
    double[] x = new double[2 * 2 * 2];
    RecurrentReference.forward(config, p, x, 2, 2, null, null, new int[] {2, 1}); // all good

    Map<String, double[]> missing = new LinkedHashMap<>(p);
    missing.remove("bias_hh_l0");
    Map<String, double[]> extra = new LinkedHashMap<>(p);
    extra.put("weight_ci_l0", new double[3]);
    Map<String, double[]> misshapen = new LinkedHashMap<>(p);
    misshapen.put("weight_hh_l0", new double[9 * 2]);
    for (Map<String, double[]> bad : List.of(missing, extra, misshapen)) {
      assertThrows(IllegalArgumentException.class,
          () -> RecurrentReference.forward(config, bad, x, 2, 2, null, null, null));
    }
    assertThrows(IllegalArgumentException.class,
        () -> RecurrentReference.forward(config, p, x, 2, 2, null, null, new int[] {3, 1}));
    assertThrows(IllegalArgumentException.class,
        () -> RecurrentReference.forward(config, p, x, 2, 2, null, null, new int[] {0, 1}));
    assertThrows(IllegalArgumentException.class,
        () -> RecurrentReference.forward(config, p, x, 2, 2, null, new double[6], null),
        "c0 for a GRU");
    assertThrows(IllegalArgumentException.class,
        () -> RecurrentReference.forward(config, p, new double[7], 2, 2, null, null, null));
  }

  // ---------------------------------------------------------------- helpers

  /** Name/value pairs into a mutable, ordered map. */
  private static Map<String, double[]> parameters(Object... namesAndValues) {
    Map<String, double[]> p = new LinkedHashMap<>();
    for (int i = 0; i < namesAndValues.length; i += 2) {
      p.put((String) namesAndValues[i], (double[]) namesAndValues[i + 1]);
    }
    return p;
  }

  /** Every parameter of the config, uniform in [-0.5, 0.5). */
  static Map<String, double[]> randomParameters(Config config, Random random) {
    Map<String, double[]> params = new LinkedHashMap<>();
    RecurrentReference.parameterShapes(config).forEach((name, shape) -> {
      int size = 1;
      for (int s : shape) {
        size *= s;
      }
      double[] values = new double[size];
      for (int i = 0; i < size; i++) {
        values[i] = random.nextDouble() - 0.5;
      }
      params.put(name, values);
    });
    return params;
  }

  private static double[] randomArray(Random random, int size) {
    double[] values = new double[size];
    for (int i = 0; i < size; i++) {
      values[i] = random.nextGaussian();
    }
    return values;
  }

  /** "name [d0, d1]" for every entry, in order. */
  private static List<String> describe(Map<String, int[]> shapes) {
    List<String> lines = new ArrayList<>();
    shapes.forEach((name, shape) -> lines.add(name + " " + Arrays.toString(shape)));
    return lines;
  }

  /** Rows 0 .. rows-1 of sample n from (R, N, width): a (rows, 1, width) array. */
  private static double[] sample(double[] values, int allRows, int batch, int width, int n,
      int rows) {
    assertEquals(allRows * batch * width, values.length);
    double[] out = new double[rows * width];
    for (int row = 0; row < rows; row++) {
      System.arraycopy(values, (row * batch + n) * width, out, row * width, width);
    }
    return out;
  }

  /** (T, rest) with its first axis reversed. */
  private static double[] reverseTime(double[] values, int steps, int rest) {
    double[] out = new double[values.length];
    for (int t = 0; t < steps; t++) {
      System.arraycopy(values, t * rest, out, (steps - 1 - t) * rest, rest);
    }
    return out;
  }

  private static double[] concat(double[] a, double[] b) {
    double[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
