package org.seq4j.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.RecurrentReference.Config;

/** The reference checked against hand arithmetic and against itself under known symmetries. */
class RecurrentReferenceTest {

  private static double sigmoid(double v) {
    return 1 / (1 + Math.exp(-v));
  }

  @Test
  void oneLstmStepWithPeepholesByHand() {
    // I = H = 1; x = 0.5, h = 0.2, c = -0.3; gate rows i, f, g, o.
    Config config = new Config(Cell.LSTM, 1, 1, 1, false, true, true, 0);
    Map<String, double[]> p = new HashMap<>();
    p.put("weight_ih_l0", new double[] {0.1, 0.2, 0.3, 0.4});
    p.put("weight_hh_l0", new double[] {-0.1, -0.2, 0.5, 0.6});
    p.put("bias_ih_l0", new double[] {0.01, 0.02, 0.03, 0.04});
    p.put("bias_hh_l0", new double[] {0.05, 0.06, 0.07, 0.08});
    p.put("weight_ci_l0", new double[] {0.7});
    p.put("weight_cf_l0", new double[] {-0.8});
    p.put("weight_co_l0", new double[] {0.9});
    var r = RecurrentReference.forward(config, p, new double[] {0.5}, 1, 1, new double[] {0.2},
        new double[] {-0.3}, null);
    double i = sigmoid(0.1 * 0.5 - 0.1 * 0.2 + 0.06 + 0.7 * -0.3);
    double f = sigmoid(0.2 * 0.5 - 0.2 * 0.2 + 0.08 - 0.8 * -0.3);
    double g = Math.tanh(0.3 * 0.5 + 0.5 * 0.2 + 0.10);
    double c = f * -0.3 + i * g;
    double o = sigmoid(0.4 * 0.5 + 0.6 * 0.2 + 0.12 + 0.9 * c);
    assertEquals(c, r.cn()[0], 1e-15);
    assertEquals(o * Math.tanh(c), r.hn()[0], 1e-15);
    assertEquals(o * Math.tanh(c), r.output()[0], 1e-15);
  }

  @Test
  void oneGruStepAndOneRnnStepByHand() {
    Config gru = new Config(Cell.GRU, 1, 1, 1, false, true, false, 0);
    Map<String, double[]> p = new HashMap<>();
    p.put("weight_ih_l0", new double[] {0.1, 0.2, 0.3});
    p.put("weight_hh_l0", new double[] {0.4, 0.5, 0.6});
    p.put("bias_ih_l0", new double[] {0.01, 0.02, 0.03});
    p.put("bias_hh_l0", new double[] {0.04, 0.05, 0.06});
    var r = RecurrentReference.forward(gru, p, new double[] {2}, 1, 1, new double[] {-0.5}, null,
        null);
    double rg = sigmoid(0.2 + 0.01 - 0.2 + 0.04);
    double z = sigmoid(0.4 + 0.02 - 0.25 + 0.05);
    double n = Math.tanh(0.6 + 0.03 + rg * (-0.3 + 0.06)); // reset after the recurrent product
    assertEquals((1 - z) * n + z * -0.5, r.hn()[0], 1e-15);

    Config rnn = new Config(Cell.RNN_RELU, 1, 1, 1, false, false, false, 0);
    Map<String, double[]> q = Map.of("weight_ih_l0", new double[] {2}, "weight_hh_l0",
        new double[] {-1});
    var s = RecurrentReference.forward(rnn, q, new double[] {1, 1}, 2, 1, null, null, null);
    assertArrayEquals(new double[] {2, 0}, s.output(), 0); // relu(2), relu(2 − 2)
  }

  @Test
  void parameterNamesAndShapesFollowPyTorch() {
    var shapes = RecurrentReference.parameterShapes(
        new Config(Cell.LSTM, 10, 20, 2, true, true, true, 5));
    assertEquals(List.of("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_hr_l0", "weight_ci_l0", "weight_cf_l0", "weight_co_l0", "weight_ih_l0_reverse",
        "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        "weight_hr_l0_reverse", "weight_ci_l0_reverse", "weight_cf_l0_reverse",
        "weight_co_l0_reverse", "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_hr_l1", "weight_ci_l1", "weight_cf_l1", "weight_co_l1", "weight_ih_l1_reverse",
        "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
        "weight_hr_l1_reverse", "weight_ci_l1_reverse", "weight_cf_l1_reverse",
        "weight_co_l1_reverse"), List.copyOf(shapes.keySet()));
    assertArrayEquals(new int[] {80, 10}, shapes.get("weight_ih_l0"));
    assertArrayEquals(new int[] {80, 5}, shapes.get("weight_hh_l0"));
    assertArrayEquals(new int[] {80, 10}, shapes.get("weight_ih_l1"), "2 directions × proj 5");
    assertArrayEquals(new int[] {5, 20}, shapes.get("weight_hr_l1_reverse"));
  }

  static Map<String, double[]> randomParameters(Config config, Random random) {
    Map<String, double[]> params = new HashMap<>();
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

  @Test
  void packedLengthsEqualRunningEachSampleAlone() {
    for (Cell cell : new Cell[] {Cell.GRU, Cell.LSTM, Cell.RNN_TANH}) {
      Config config = new Config(cell, 2, 3, 2, true, true, cell == Cell.LSTM, 0);
      Random random = new Random(3);
      Map<String, double[]> p = randomParameters(config, random);
      int steps = 5;
      int batch = 3;
      int[] lengths = {5, 2, 3};
      double[] x = new double[steps * batch * 2];
      for (int i = 0; i < x.length; i++) {
        x[i] = random.nextGaussian();
      }
      var all = RecurrentReference.forward(config, p, x, steps, batch, null, null, lengths);
      int width = 2 * 3;
      for (int n = 0; n < batch; n++) {
        double[] alone = new double[lengths[n] * 2];
        for (int t = 0; t < lengths[n]; t++) {
          System.arraycopy(x, (t * batch + n) * 2, alone, t * 2, 2);
        }
        var single = RecurrentReference.forward(config, p, alone, lengths[n], 1, null, null,
            null);
        for (int t = 0; t < steps; t++) {
          for (int k = 0; k < width; k++) {
            double expected = t < lengths[n] ? single.output()[t * width + k] : 0;
            assertEquals(expected, all.output()[(t * batch + n) * width + k], 1e-12,
                cell + " sample " + n + " step " + t);
          }
        }
        for (int s = 0; s < 4; s++) {
          for (int k = 0; k < 3; k++) {
            assertEquals(single.hn()[s * 3 + k], all.hn()[(s * batch + n) * 3 + k], 1e-12);
          }
        }
      }
    }
  }

  @Test
  void theBackwardDirectionIsTheForwardOneOnReversedInput() {
    Config both = new Config(Cell.LSTM, 2, 3, 1, true, true, true, 2);
    Config forwardOnly = new Config(Cell.LSTM, 2, 3, 1, false, true, true, 2);
    Random random = new Random(8);
    Map<String, double[]> p = randomParameters(both, random);
    Map<String, double[]> reversed = new HashMap<>();
    p.forEach((name, values) -> {
      if (name.endsWith("_reverse")) {
        reversed.put(name.replace("_reverse", ""), values);
      }
    });
    int steps = 4;
    double[] x = new double[steps * 2];
    for (int i = 0; i < x.length; i++) {
      x[i] = random.nextGaussian();
    }
    double[] flipped = new double[x.length];
    for (int t = 0; t < steps; t++) {
      System.arraycopy(x, t * 2, flipped, (steps - 1 - t) * 2, 2);
    }
    var bidirectional = RecurrentReference.forward(both, p, x, steps, 1, null, null, null);
    var backwardAlone = RecurrentReference.forward(forwardOnly, reversed, flipped, steps, 1, null,
        null, null);
    assertEquals(2 * 2 * steps, bidirectional.output().length, "projection: width D·P");
    for (int t = 0; t < steps; t++) {
      for (int k = 0; k < 2; k++) {
        assertEquals(backwardAlone.output()[(steps - 1 - t) * 2 + k],
            bidirectional.output()[t * 4 + 2 + k], 1e-12);
      }
    }
  }

  @Test
  void finiteDifferencesMatchAnAnalyticGradient() {
    double[] v = {0.3, -1.2, 2.5, 0};
    double[] numeric = FiniteDifferences.gradient(v, () -> {
      double sum = 0;
      for (double x : v) {
        sum += Math.sin(x) * x * x;
      }
      return sum;
    }, 1e-6);
    for (int i = 0; i < v.length; i++) {
      double analytic = Math.cos(v[i]) * v[i] * v[i] + 2 * v[i] * Math.sin(v[i]);
      assertEquals(analytic, numeric[i], 1e-8);
    }
  }
}
