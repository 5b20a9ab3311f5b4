package org.seq4j.train;

import static org.seq4j.reference.Arrays64.doubles;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.SimpleRnn;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.RecurrentReference;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.Tolerances;

class GradientFlowTest {

  /**
   * The reference ∂L/∂h(t): split the sequence at t, perturb h(t) and rerun the rest, with L = Σ
   * out⊙g over every step (the steps up to t do not depend on h(t) except out(t) = h(t)).
   */
  static double[] referenceNorms(Cell cell, Map<String, double[]> params, double[] x, int steps,
      int batch, int in, int hidden, double[] g) {
    RecurrentReference.Config config =
        new RecurrentReference.Config(cell, in, hidden, 1, false, true, false, 0);
    double[] norms = new double[steps];
    for (int step = 0; step < steps; step++) {
      final int t = step;
      double[] prefix = java.util.Arrays.copyOf(x, (t + 1) * batch * in);
      RecurrentReference.Result upToT =
          RecurrentReference.forward(config, params, prefix, t + 1, batch, null, null, null);
      double[] h = upToT.hn().clone();
      double[] c = upToT.cn() == null ? null : upToT.cn().clone();
      int rest = steps - t - 1;
      double[] suffix = java.util.Arrays.copyOfRange(x, (t + 1) * batch * in, x.length);
      int offset = t * batch * hidden;
      double[] gradient = FiniteDifferences.gradient(h, () -> {
        double loss = 0;
        for (int i = 0; i < h.length; i++) {
          loss += h[i] * g[offset + i];
        }
        if (rest > 0) {
          double[] later = RecurrentReference.forward(config, params, suffix, rest, batch, h, c,
              null).output();
          for (int i = 0; i < later.length; i++) {
            loss += later[i] * g[(t + 1) * batch * hidden + i];
          }
        }
        return loss;
      });
      double sum = 0;
      for (double v : gradient) {
        sum += v * v;
      }
      norms[t] = Math.sqrt(sum);
    }
    return norms;
  }

  @Test
  void hiddenStateGradientNormsMatchTheReferenceAndLeaveGradientsAlone() {
    int steps = 7;
    int batch = 2;
    int in = 3;
    int hidden = 4;
    for (Cell cell : new Cell[] {Cell.RNN_TANH, Cell.LSTM}) {
      try (RecurrentLayer layer = cell == Cell.LSTM ? Lstm.builder(in, hidden).seed(2).build()
              : SimpleRnn.builder(in, hidden).seed(2).build();
          Arena arena = Arena.ofConfined()) {
        Random random = new Random(1);
        float[] xs = new float[steps * batch * in];
        float[] gs = new float[steps * batch * hidden];
        for (int i = 0; i < xs.length; i++) {
          xs[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < gs.length; i++) {
          gs[i] = (float) random.nextGaussian();
        }
        Tensor x = Tensor.fromArray(arena, xs, steps, batch, in);
        Tensor g = Tensor.fromArray(arena, gs, steps, batch, hidden);
        layer.parameters().get(0).grad().fill(3f);
        double[] norms = GradientFlow.hiddenStateGradientNorms(layer, x, null, g);
        for (float v : layer.parameters().get(0).grad().toArray()) {
          assertEquals(3f, v, "parameter gradients are left as they were");
        }
        Map<String, double[]> params = new HashMap<>();
        for (Parameter p : layer.parameters()) {
          params.put(p.name(), doubles(p.data()));
        }
        double[] expected = referenceNorms(cell, params, doubles(x), steps, batch, in, hidden,
            doubles(g));
        assertArrayEquals(expected, norms, Tolerances.GRADIENT_NORMS, cell.toString());
      }
    }
  }

  @Test
  void onlySingleLayerUnidirectionalNetworksAreSupported() {
    try (Lstm lstm = Lstm.builder(2, 3).bidirectional(true).build();
        Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> GradientFlow.hiddenStateGradientNorms(lstm, Tensor.zeros(arena, 2, 1, 2), null,
              Tensor.zeros(arena, 2, 1, 3)));
      assertEquals("layer: expected one layer, one direction and time-major inputs, got"
          + " Lstm(2, 3, bidirectional)", e.getMessage());
    }
  }
}
