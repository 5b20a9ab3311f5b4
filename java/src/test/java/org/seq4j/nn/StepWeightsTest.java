package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Autograd;
import org.seq4j.Backend;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.reference.RecurrentReference;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.Tolerances;

/**
 * bfloat16 step weights: the streaming step and the small-batch inference forward equal the
 * float64 reference run on the same weights rounded to bfloat16 (exactly for one step from
 * bf16-representable inputs, so the packing, the pair layout and odd depths are checked to float
 * precision; within the inputs' rounding otherwise), under every kernel copy this CPU runs (the
 * AVX-512 copy with vdpbf16ps where the CPU has AVX512_BF16), their distance from the float32
 * path is bounded as {@link StepWeights} says, and training is untouched.
 */
class StepWeightsTest {
  @AfterEach
  void restoreBest() {
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** float32 to bfloat16 and back: round to nearest even, as the native packing does. */
  static double bf16(double value) {
    int bits = Float.floatToRawIntBits((float) value);
    int rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
    return Float.intBitsToFloat(rounded);
  }

  record Case(String name, Cell cell, int input, int hidden, int layers, int proj,
      boolean peephole, int batch) {
    @Override
    public String toString() {
      return name;
    }
  }

  static final List<Case> CASES = List.of(
      // odd sizes: depths I + H odd, and the GRU's n group over x alone of odd depth
      new Case("lstm I=7 H=19 N=1", Cell.LSTM, 7, 19, 1, 0, false, 1),
      new Case("lstm 2 layers peepholes proj N=3", Cell.LSTM, 6, 21, 2, 5, true, 3),
      new Case("gru I=9 H=17 2 layers N=2", Cell.GRU, 9, 17, 2, 0, false, 2),
      new Case("rnn I=5 H=33 N=8", Cell.RNN_TANH, 5, 33, 1, 0, false, 8),
      new Case("lstm I=H=64 N=1", Cell.LSTM, 64, 64, 1, 0, false, 1));

  static List<KernelIsa> runnableCopies() {
    return AttentionKernelsTest.runnableCopies();
  }

  static Stream<Arguments> casesUnderEachCopy() {
    return runnableCopies().stream().flatMap(isa -> CASES.stream().map(c -> Arguments.of(c, isa)));
  }

  static Stream<Arguments> oneLayerCasesUnderEachCopy() {
    return casesUnderEachCopy().filter(a -> ((Case) a.get()[0]).layers() == 1);
  }

  static RecurrentLayer build(Case c, StepWeights storage) {
    return switch (c.cell()) {
      case LSTM -> Lstm.builder(c.input(), c.hidden()).numLayers(c.layers()).projSize(c.proj())
          .peepholes(c.peephole()).backend(Backend.BLAS).stepWeights(storage).seed(3).build();
      case GRU -> Gru.builder(c.input(), c.hidden()).numLayers(c.layers()).backend(Backend.BLAS)
          .stepWeights(storage).seed(3).build();
      default -> SimpleRnn.builder(c.input(), c.hidden()).numLayers(c.layers())
          .backend(Backend.BLAS).stepWeights(storage).seed(3).build();
    };
  }

  /** The layer's parameters, with weight_ih and weight_hh rounded to bfloat16 when asked. */
  static Map<String, double[]> parameters(RecurrentLayer layer, boolean roundPacked) {
    Map<String, double[]> params = new LinkedHashMap<>();
    for (Parameter p : layer.parameters()) {
      double[] values = doubles(p.data());
      if (roundPacked && (p.name().startsWith("weight_ih") || p.name().startsWith("weight_hh"))) {
        for (int i = 0; i < values.length; i++) {
          values[i] = bf16(values[i]);
        }
      }
      params.put(p.name(), values);
    }
    return params;
  }

  static double[] random(Random random, int size) {
    double[] values = new double[size];
    for (int i = 0; i < size; i++) {
      values[i] = (float) (random.nextDouble() * 2 - 1);
    }
    return values;
  }

  /**
   * One step from inputs and states that bf16 represents exactly: the step's products are then
   * those of the float64 reference on the rounded weights, so the packing, the pairs and odd
   * depths are checked to float precision (one layer: a second layer's input is the first's new
   * state, which bf16 rounds).
   */
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("oneLayerCasesUnderEachCopy")
  void oneStepOnBf16InputsEqualsTheReferenceOnRoundedWeights(Case c, KernelIsa isa) {
    Seq4j.selectKernels(isa);
    Random random = new Random(c.name().hashCode());
    int n = c.batch(), hout = c.proj() > 0 ? c.proj() : c.hidden();
    boolean lstm = c.cell() == Cell.LSTM;
    double[] x = rounded(random(random, n * c.input()));
    double[] h0 = rounded(random(random, n * hout));
    double[] c0 = lstm ? random(random, n * c.hidden()) : null;
    compare(c, 1, x, h0, c0, Tolerances.RECURRENT_FORWARD);
  }

  /**
   * Several steps, stacked layers, any inputs: within what rounding the inputs of the products to
   * bf16 costs (their relative error is at most 2^-9).
   */
  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("casesUnderEachCopy")
  void stepsAndSmallBatchInferenceFollowTheReferenceOnRoundedWeights(Case c, KernelIsa isa) {
    Seq4j.selectKernels(isa);
    Random random = new Random(c.name().hashCode() + 1);
    int steps = 6, n = c.batch(), hout = c.proj() > 0 ? c.proj() : c.hidden();
    boolean lstm = c.cell() == Cell.LSTM;
    double[] x = random(random, steps * n * c.input());
    double[] h0 = random(random, c.layers() * n * hout);
    double[] c0 = lstm ? random(random, c.layers() * n * c.hidden()) : null;
    compare(c, steps, x, h0, c0, 5e-3);
  }

  static double[] rounded(double[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = bf16(values[i]);
    }
    return out;
  }

  /** The step, step after step, and the small-batch inference forward against the reference. */
  static void compare(Case c, int steps, double[] x, double[] h0, double[] c0, double tolerance) {
    int n = c.batch(), hout = c.proj() > 0 ? c.proj() : c.hidden();
    boolean lstm = c.cell() == Cell.LSTM;
    try (RecurrentLayer layer = build(c, StepWeights.BFLOAT16); Arena arena = Arena.ofConfined();
        var noGrad = Autograd.noGrad()) {
      assertEquals(StepWeights.BFLOAT16, layer.stepWeights());
      RecurrentReference.Config config = new RecurrentReference.Config(c.cell(), c.input(),
          c.hidden(), c.layers(), false, true, c.peephole(), c.proj());
      RecurrentReference.Result expected = RecurrentReference.forward(config,
          parameters(layer, true), x, steps, n, h0, c0, null);

      RecurrentState state = new RecurrentState(tensor(arena, h0, c.layers(), n, hout),
          lstm ? tensor(arena, c0, c.layers(), n, c.hidden()) : null);
      Tensor input = tensor(arena, x, steps, n, c.input());
      double[] stepped = new double[steps * n * hout];
      Tensor out = Tensor.zeros(arena, n, hout);
      for (int t = 0; t < steps; t++) {
        layer.step(input.slice(t, t + 1).reshape(n, c.input()), state, out);
        System.arraycopy(doubles(out), 0, stepped, t * n * hout, n * hout);
      }
      assertClose(expected.output(), stepped, tolerance, "stepped outputs");
      assertClose(expected.hn(), doubles(state.hidden()), tolerance, "h after the steps");
      if (lstm) {
        assertClose(expected.cn(), doubles(state.cell()), tolerance, "c after the steps");
      }

      RecurrentState initial = new RecurrentState(tensor(arena, h0, c.layers(), n, hout),
          lstm ? tensor(arena, c0, c.layers(), n, c.hidden()) : null);
      RecurrentLayer.Result inference = layer.forward(arena, input, initial, null,
          Mode.INFERENCE);
      assertClose(expected.output(), doubles(inference.output()), tolerance,
          "small-batch inference output");
      assertClose(expected.hn(), doubles(inference.finalState().hidden()), tolerance,
          "small-batch inference h_n");
    }
  }

  /**
   * The documented accuracy: 50 steps of a unit-scale LSTM (I = H = 256, PyTorch's
   * initialisation, inputs in [-1, 1]) stay within 5e-3 of the float32 path (measured: 8.7e-4 at most, 1.5e-4 on average), and the rounding is
   * really there (the two paths differ).
   */
  @Test
  void fiftyStepsStayCloseToTheFloat32Path() {
    int steps = 50, size = 256;
    Random random = new Random(17);
    try (Lstm f32 = Lstm.builder(size, size).backend(Backend.BLAS).seed(9).build();
        Lstm bf16 = Lstm.builder(size, size).backend(Backend.BLAS).seed(9)
            .stepWeights(StepWeights.BFLOAT16).build();
        Arena arena = Arena.ofConfined(); var noGrad = Autograd.noGrad()) {
      RecurrentState a = new RecurrentState(Tensor.zeros(arena, 1, 1, size),
          Tensor.zeros(arena, 1, 1, size));
      RecurrentState b = new RecurrentState(Tensor.zeros(arena, 1, 1, size),
          Tensor.zeros(arena, 1, 1, size));
      double largest = 0, sum = 0;
      for (int t = 0; t < steps; t++) {
        Tensor x = tensor(arena, random(random, size), 1, size);
        f32.step(x, a, null);
        bf16.step(x, b, null);
        double[] ha = doubles(a.hidden()), hb = doubles(b.hidden());
        for (int i = 0; i < size; i++) {
          double difference = Math.abs(ha[i] - hb[i]);
          largest = Math.max(largest, difference);
          sum += difference;
        }
      }
      double mean = sum / (steps * size);
      System.out.printf("bf16 step weights, 50 LSTM steps at H = 256: largest |dh| %.2e, mean"
          + " %.2e%n", largest, mean);
      assertTrue(largest < 5e-3, "largest difference " + largest);
      assertTrue(mean < 5e-4, "mean difference " + mean);
      assertTrue(largest > 0, "bf16 rounding changes the results");
    }
  }

  /** Back to float32 gives float32's bits again; training never sees the rounded weights. */
  @Test
  void switchingBackAndTrainingUseTheFloat32Weights() {
    try (Lstm reference = Lstm.builder(12, 20).backend(Backend.BLAS).seed(4).build();
        Lstm layer = Lstm.builder(12, 20).backend(Backend.BLAS).seed(4).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 5, 7, 2, 12);
      float[] expected;
      float[] trained;
      try (var noGrad = Autograd.noGrad()) {
        expected = reference.forward(arena, x, null, null, Mode.INFERENCE).output().toArray();
        layer.stepWeights(StepWeights.BFLOAT16);
        float[] rounded = layer.forward(arena, x, null, null, Mode.INFERENCE).output().toArray();
        assertTrue(!java.util.Arrays.equals(expected, rounded), "bf16 changed the inference");
        trained = layer.forward(arena, x, null, null, Mode.TRAINING).output().toArray();
      }
      try (var noGrad = Autograd.noGrad()) {
        assertArrayEquals(reference.forward(arena, x, null, null, Mode.TRAINING).output()
            .toArray(), trained, "a training forward reads the float32 parameters");
        layer.stepWeights(StepWeights.FLOAT32);
        assertEquals(StepWeights.FLOAT32, layer.stepWeights());
        assertArrayEquals(expected,
            layer.forward(arena, x, null, null, Mode.INFERENCE).output().toArray(),
            "float32 again, bit for bit");
      }
      var e = assertThrows(NullPointerException.class, () -> layer.stepWeights(null));
      assertEquals("storage", e.getMessage());
    }
  }
}
