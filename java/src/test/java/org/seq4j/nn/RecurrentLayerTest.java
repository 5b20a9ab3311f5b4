package org.seq4j.nn;

import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.seq4j.reference.Arrays64.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Backend;
import org.seq4j.Seq4j;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.RecurrentReference;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.Tolerances;

/**
 * The recurrent layers against the float64 reference: forward values, and every gradient (input,
 * initial states, each parameter) against central finite differences of the reference. Every test
 * runs once per backend: {@link OnednnRecurrentLayerTest} and {@link BlasRecurrentLayerTest} pin
 * the global backend around each test.
 */
abstract class RecurrentLayerTest {

  /** The backend every layer of these tests runs on. */
  abstract Backend backend();

  @BeforeEach
  void pinBackend() {
    Seq4j.setRecurrentBackend(backend());
  }

  @AfterEach
  void unpinBackend() {
    Seq4j.setRecurrentBackend(Backend.AUTO);
  }

  /** float32 kernel against float64 reference, values of order 1. */
  private static final double FORWARD_TOLERANCE = Tolerances.RECURRENT_FORWARD;
  /** Gradients sum over T·N terms and pass through several float32 GEMMs. */
  private static final double BACKWARD_TOLERANCE = Tolerances.RECURRENT_BACKWARD;

  record Case(String name, Cell cell, int inputSize, int hiddenSize, int layers,
      boolean bidirectional, boolean bias, boolean peephole, int proj, int steps, int batch,
      long[] lengths, boolean batchFirst, boolean initialState) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Case> cases() {
    return Stream.of(
        new Case("rnn tanh 1x1 single step", Cell.RNN_TANH, 1, 1, 1, false, true, false, 0, 1, 1,
            null, false, true),
        new Case("rnn relu odd sizes", Cell.RNN_RELU, 3, 17, 1, false, true, false, 0, 4, 3, null,
            false, true),
        new Case("rnn tanh 2 layers bidirectional lengths", Cell.RNN_TANH, 3, 5, 2, true, true,
            false, 0, 5, 3, new long[] {5, 2, 3}, false, true),
        new Case("lstm plain", Cell.LSTM, 3, 4, 1, false, true, false, 0, 5, 2, null, false,
            true),
        new Case("lstm peephole", Cell.LSTM, 3, 5, 1, false, true, true, 0, 6, 3, null, false,
            true),
        new Case("lstm peephole projection bidirectional 2 layers", Cell.LSTM, 3, 5, 2, true,
            true, true, 3, 4, 2, null, false, true),
        new Case("lstm no bias batch-first zero state", Cell.LSTM, 2, 3, 1, false, false, false,
            0, 3, 2, null, true, false),
        new Case("lstm bidirectional lengths peephole", Cell.LSTM, 2, 3, 2, true, true, true, 0,
            5, 3, new long[] {3, 5, 1}, false, true),
        new Case("lstm projection lengths batch-first", Cell.LSTM, 3, 4, 1, true, true, false, 2,
            4, 3, new long[] {4, 1, 4}, true, true),
        new Case("gru", Cell.GRU, 3, 4, 1, false, true, false, 0, 5, 2, null, false, true),
        new Case("gru 2 layers bidirectional lengths", Cell.GRU, 3, 5, 2, true, true, false, 0,
            5, 3, new long[] {5, 2, 3}, false, true),
        new Case("gru 1x1 no bias", Cell.GRU, 1, 1, 1, false, false, false, 0, 3, 1, null, false,
            false),
        new Case("gru wide odd", Cell.GRU, 17, 17, 1, false, true, false, 0, 3, 3, null, true,
            true));
  }

  /**
   * Batches of 16 samples or more, which oneDNN's inference splits into one run of consecutive
   * samples per thread when the layer is small (rnn_onednn.cpp, batch_parts): an odd batch (parts
   * of 8 and 9), gathered groups of lengths with a group big enough to split, both directions with
   * projection and peepholes, zero initial states.
   */
  static Stream<Case> splitCases() {
    long[] lengths = new long[18];
    java.util.Arrays.fill(lengths, 4);
    lengths[3] = 2;
    lengths[11] = 1;
    return Stream.of(
        new Case("lstm batch 17", Cell.LSTM, 3, 4, 1, false, true, false, 0, 5, 17, null, false,
            true),
        new Case("lstm peephole projection bidirectional 2 layers batch 18 lengths", Cell.LSTM,
            3, 5, 2, true, true, true, 3, 4, 18, lengths, false, true),
        new Case("gru batch 16 batch-first zero state", Cell.GRU, 3, 4, 1, false, true, false, 0,
            5, 16, null, true, false),
        new Case("rnn relu bidirectional batch 20", Cell.RNN_RELU, 2, 6, 1, true, true, false, 0,
            3, 20, null, false, true));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("splitCases")
  void batchesSplitAcrossTwoThreadsMatchTheReference(Case c) {
    int threads = Seq4j.threads();
    Seq4j.setThreads(2);
    try {
      forwardAndEveryGradientMatchTheReference(c);
    } finally {
      Seq4j.setThreads(threads);
    }
  }

  static RecurrentLayer build(Case c, long seed) {
    return switch (c.cell()) {
      case LSTM -> Lstm.builder(c.inputSize(), c.hiddenSize()).numLayers(c.layers())
          .bidirectional(c.bidirectional()).bias(c.bias()).peepholes(c.peephole())
          .projSize(c.proj()).batchFirst(c.batchFirst()).seed(seed).build();
      case GRU -> Gru.builder(c.inputSize(), c.hiddenSize()).numLayers(c.layers())
          .bidirectional(c.bidirectional()).bias(c.bias()).batchFirst(c.batchFirst()).seed(seed)
          .build();
      case RNN_TANH, RNN_RELU -> SimpleRnn.builder(c.inputSize(), c.hiddenSize())
          .nonlinearity(c.cell() == Cell.RNN_RELU ? SimpleRnn.Nonlinearity.RELU
              : SimpleRnn.Nonlinearity.TANH)
          .numLayers(c.layers()).bidirectional(c.bidirectional()).bias(c.bias())
          .batchFirst(c.batchFirst()).seed(seed).build();
    };
  }

  static RecurrentReference.Config referenceConfig(Case c) {
    return new RecurrentReference.Config(c.cell(), c.inputSize(), c.hiddenSize(), c.layers(),
        c.bidirectional(), c.bias(), c.peephole(), c.proj());
  }

  /** (N, T, C) -> (T, N, C) or back: swaps the first two axes. */
  static double[] swap(double[] values, int a, int b, int c) {
    double[] out = new double[values.length];
    for (int i = 0; i < a; i++) {
      for (int j = 0; j < b; j++) {
        System.arraycopy(values, (i * b + j) * c, out, (j * a + i) * c, c);
      }
    }
    return out;
  }

  static double[] randomArray(Random random, int size) {
    double[] values = new double[size];
    for (int i = 0; i < size; i++) {
      values[i] = random.nextDouble() * 2 - 1;
    }
    return values;
  }

  /** Values of a float tensor as doubles, exactly what the native code sees. */
  static double[] rounded(double[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (float) values[i];
    }
    return out;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void forwardAndEveryGradientMatchTheReference(Case c) {
    Random random = new Random(c.name().hashCode());
    int t = c.steps();
    int n = c.batch();
    int d = c.bidirectional() ? 2 : 1;
    int hout = c.proj() > 0 ? c.proj() : c.hiddenSize();
    boolean lstm = c.cell() == Cell.LSTM;
    int[] lengths = c.lengths() == null ? null
        : java.util.Arrays.stream(c.lengths()).mapToInt(v -> (int) v).toArray();
    try (RecurrentLayer layer = build(c, 11); Arena arena = Arena.ofConfined()) {
      RecurrentReference.Config config = referenceConfig(c);
      // the same parameters on both sides, names and shapes as the reference says
      Map<String, double[]> params = new LinkedHashMap<>();
      Map<String, int[]> shapes = RecurrentReference.parameterShapes(config);
      assertEquals(List.copyOf(shapes.keySet()),
          layer.parameters().stream().map(Parameter::name).toList(), "parameter names");
      for (Parameter p : layer.parameters()) {
        long[] dims = java.util.Arrays.stream(shapes.get(p.name())).asLongStream().toArray();
        assertEquals(Shape.of(dims), p.shape(), p.name());
        params.put(p.name(), doubles(p.data()));
      }
      double[] x = rounded(randomArray(random, t * n * c.inputSize()));
      double[] h0 = c.initialState() ? rounded(randomArray(random, c.layers() * d * n * hout))
          : null;
      double[] c0 = c.initialState() && lstm
          ? rounded(randomArray(random, c.layers() * d * n * c.hiddenSize())) : null;
      Tensor input = c.batchFirst() ? tensor(arena, swap(x, t, n, c.inputSize()), n, t,
          c.inputSize()) : tensor(arena, x, t, n, c.inputSize());
      RecurrentState initial = !c.initialState() ? null : new RecurrentState(
          tensor(arena, h0, c.layers() * d, n, hout),
          lstm ? tensor(arena, c0, c.layers() * d, n, c.hiddenSize()) : null);

      RecurrentLayer.Result result = layer.forward(arena, input, initial, c.lengths(), Mode.TRAINING);
      RecurrentReference.Result expected =
          RecurrentReference.forward(config, params, x, t, n, h0, c0, lengths);
      double[] output = doubles(result.output());
      if (c.batchFirst()) {
        output = swap(output, n, t, d * hout);
      }
      assertClose(expected.output(), output, FORWARD_TOLERANCE, "output");
      assertClose(expected.hn(), doubles(result.finalState().hidden()), FORWARD_TOLERANCE, "h_n");
      if (lstm) {
        assertClose(expected.cn(), doubles(result.finalState().cell()), FORWARD_TOLERANCE, "c_n");
      } else {
        assertNull(result.finalState().cell());
      }
      // inference takes its own route on each backend (cached oneDNN weights; packed panels for
      // small batches on BLAS): the same values
      RecurrentLayer.Result inference = layer.forward(arena, input, initial, c.lengths(), Mode.INFERENCE);
      double[] inferenceOutput = doubles(inference.output());
      if (c.batchFirst()) {
        inferenceOutput = swap(inferenceOutput, n, t, d * hout);
      }
      assertClose(expected.output(), inferenceOutput, FORWARD_TOLERANCE, "inference output");
      assertClose(expected.hn(), doubles(inference.finalState().hidden()), FORWARD_TOLERANCE,
          "inference h_n");
      if (lstm) {
        assertClose(expected.cn(), doubles(inference.finalState().cell()), FORWARD_TOLERANCE,
            "inference c_n");
      }

      // a weighted sum of every output as the loss: its gradients are the weights
      double[] gOut = randomArray(random, expected.output().length);
      double[] gHn = randomArray(random, expected.hn().length);
      double[] gCn = lstm ? randomArray(random, expected.cn().length) : null;
      Tensor gradOutput = c.batchFirst() ? tensor(arena, swap(gOut, t, n, d * hout), n, t,
          d * hout) : tensor(arena, gOut, t, n, d * hout);
      RecurrentState gradFinal = new RecurrentState(
          tensor(arena, gHn, c.layers() * d, n, hout),
          lstm ? tensor(arena, gCn, c.layers() * d, n, c.hiddenSize()) : null);
      layer.zeroGrad();
      RecurrentLayer.Gradients grads = layer.backward(arena, result.context(), gradOutput, gradFinal);

      double step = FiniteDifferences.DEFAULT_STEP;
      java.util.function.DoubleSupplier loss = () -> RecurrentReference.weightedLoss(
          RecurrentReference.forward(config, params, x, t, n, h0, c0, lengths), gOut, gHn, gCn);
      double[] gradInput = doubles(grads.input());
      if (c.batchFirst()) {
        gradInput = swap(gradInput, n, t, c.inputSize());
      }
      assertClose(FiniteDifferences.gradient(x, loss, step), gradInput, BACKWARD_TOLERANCE,
          "grad input");
      if (c.initialState()) {
        assertClose(FiniteDifferences.gradient(h0, loss, step),
            doubles(grads.initialState().hidden()), BACKWARD_TOLERANCE, "grad h0");
        if (lstm) {
          assertClose(FiniteDifferences.gradient(c0, loss, step),
              doubles(grads.initialState().cell()), BACKWARD_TOLERANCE, "grad c0");
        }
      }
      for (Parameter p : layer.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss, step),
            doubles(p.grad()), BACKWARD_TOLERANCE, "grad " + p.name());
      }
    }
  }

  @Test
  void backwardTwiceAddsTheGradientsTwice() {
    try (Lstm lstm = Lstm.builder(4, 6).numLayers(2).peepholes(true).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 7, 3, 4);
      RecurrentLayer.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
      Tensor gradOutput = Tensor.randomNormal(arena, 2, 7, 3, 6);
      RecurrentLayer.Gradients first = lstm.backward(arena, result.context(), gradOutput, null);
      Map<String, float[]> once = new HashMap<>();
      for (Parameter p : lstm.parameters()) {
        once.put(p.name(), p.grad().toArray());
      }
      RecurrentLayer.Gradients second = lstm.backward(arena, result.context(), gradOutput, null);
      assertArrayEquals(first.input().toArray(), second.input().toArray());
      for (Parameter p : lstm.parameters()) {
        float[] single = once.get(p.name());
        float[] doubled = p.grad().toArray();
        for (int i = 0; i < single.length; i++) {
          assertEquals(2 * single[i], doubled[i],
              (float) Tolerances.GRADIENT_ACCUMULATED_TWICE * (1 + Math.abs(single[i])),
              p.name() + "[" + i + "]");
        }
      }
    }
  }

  @Test
  void aLongSequenceInChunksWithCarriedStateEqualsOneCall() {
    for (RecurrentLayer layer : List.of(
        Lstm.builder(5, 8).numLayers(2).bidirectional(false).peepholes(true).projSize(3).build(),
        Gru.builder(5, 8).numLayers(2).build(), SimpleRnn.builder(5, 8).build())) {
      try (layer; Arena arena = Arena.ofConfined()) {
        Tensor x = Tensor.randomNormal(arena, 3, 12, 2, 5);
        RecurrentLayer.Result whole = layer.forward(arena, x);
        RecurrentState state = null;
        List<float[]> pieces = new ArrayList<>();
        for (long[] chunk : new long[][] {{0, 5}, {5, 6}, {6, 12}}) {
          RecurrentLayer.Result part = layer.forward(arena, x.slice(chunk[0], chunk[1]), state);
          pieces.add(part.output().toArray());
          state = part.finalState();
        }
        float[] expected = whole.output().toArray();
        int offset = 0;
        for (float[] piece : pieces) {
          for (float v : piece) {
            assertEquals(expected[offset], v, (float) Tolerances.REROUTED, layer + " at " + offset);
            offset++;
          }
        }
        assertArrayEquals(whole.finalState().hidden().toArray(), state.hidden().toArray(),
            (float) Tolerances.REROUTED);
      }
    }
  }

  @Test
  void truncatedBpttCarriesStateAndStopsTheGradient() {
    try (Lstm lstm = Lstm.builder(3, 4).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 4, 6, 2, 3);
      RecurrentLayer.Result first = lstm.forward(arena, x.slice(0, 3), null, null, Mode.TRAINING);
      RecurrentLayer.Result second =
          lstm.forward(arena, x.slice(3, 6), first.finalState(), null, Mode.TRAINING);
      RecurrentLayer.Gradients grads =
          lstm.backward(arena, second.context(), Tensor.ones(arena, 3, 2, 4), null);
      // the gradient reaches the carried state; truncation means we do not pass it further
      float[] gradH = grads.initialState().hidden().toArray();
      assertTrue(java.util.Arrays.stream(toDoubles(gradH)).anyMatch(v -> v != 0),
          "the carried state receives a gradient");
      RecurrentLayer.Result whole = lstm.forward(arena, x);
      assertArrayEquals(whole.output().slice(3, 6).toArray(), second.output().toArray(),
          (float) Tolerances.REROUTED);
    }
  }

  private static double[] toDoubles(float[] values) {
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }

  @Test
  void dropoutIsSeededAppliedOnlyInTrainingAndInvertedInBackward() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 5, 4, 3, 6);
      float[] inference;
      float[] trainingA;
      try (Gru gru = Gru.builder(6, 8).numLayers(2).dropout(0.5f).seed(9).build()) {
        inference = gru.forward(arena, x, null, null, Mode.INFERENCE).output().toArray();
        trainingA = gru.forward(arena, x, null, null, Mode.TRAINING).output().toArray();
      }
      float[] trainingB;
      float[] noDropout;
      try (Gru gru = Gru.builder(6, 8).numLayers(2).dropout(0.5f).seed(9).build()) {
        trainingB = gru.forward(arena, x, null, null, Mode.TRAINING).output().toArray();
      }
      try (Gru gru = Gru.builder(6, 8).numLayers(2).seed(9).build()) {
        noDropout = gru.forward(arena, x, null, null, Mode.TRAINING).output().toArray();
      }
      assertArrayEquals(trainingA, trainingB, "the same seed gives the same dropout");
      // inference and training primitives may round differently in the last bit
      assertArrayEquals(inference, noDropout, (float) Tolerances.REROUTED,
          "inference applies no dropout");
      assertNotEquals(java.util.Arrays.toString(inference), java.util.Arrays.toString(trainingA));
    }
  }

  @Test
  void gradientsThroughDropoutBetweenLayersMatchFiniteDifferencesWithTheSameMask() {
    int t = 4;
    int n = 3;
    int in = 3;
    int h = 4;
    try (Gru gru = Gru.builder(in, h).numLayers(2).dropout(0.4f).seed(21).build();
        Arena arena = Arena.ofConfined()) {
      Random random = new Random(5);
      double[] x = rounded(randomArray(random, t * n * in));
      RecurrentLayer.Result result = gru.forward(arena, tensor(arena, x, t, n, in), null, null,
          Mode.TRAINING);
      // the mask the layer used: the dropout of ones with the seed it recorded
      Tensor ones = Tensor.ones(arena, t, n, h);
      Tensor mask = Tensor.zeros(arena, t, n, h);
      org.seq4j.internal.NativeBindings.dropout(mask.segment(), ones.segment(), ones.size(), 0.4f,
          result.context().dropoutSeeds[0]);
      double[] keep = doubles(mask);
      long dropped = java.util.Arrays.stream(keep).filter(v -> v == 0).count();
      assertTrue(dropped > 0 && dropped < keep.length, "some, not all, dropped: " + dropped);
      Map<String, double[]> params = new LinkedHashMap<>();
      for (Parameter p : gru.parameters()) {
        params.put(p.name(), doubles(p.data()));
      }
      RecurrentReference.Config layer = new RecurrentReference.Config(Cell.GRU, in, h, 1, false,
          true, false, 0);
      RecurrentReference.Config upper = new RecurrentReference.Config(Cell.GRU, h, h, 1, false,
          true, false, 0);
      java.util.function.Supplier<RecurrentReference.Result> reference = () -> {
        Map<String, double[]> first = Map.of("weight_ih_l0", params.get("weight_ih_l0"),
            "weight_hh_l0", params.get("weight_hh_l0"), "bias_ih_l0", params.get("bias_ih_l0"),
            "bias_hh_l0", params.get("bias_hh_l0"));
        Map<String, double[]> second = Map.of("weight_ih_l0", params.get("weight_ih_l1"),
            "weight_hh_l0", params.get("weight_hh_l1"), "bias_ih_l0", params.get("bias_ih_l1"),
            "bias_hh_l0", params.get("bias_hh_l1"));
        double[] middle = RecurrentReference.forward(layer, first, x, t, n, null, null, null)
            .output().clone();
        for (int i = 0; i < middle.length; i++) {
          middle[i] *= keep[i];
        }
        return RecurrentReference.forward(upper, second, middle, t, n, null, null, null);
      };
      assertClose(reference.get().output(), doubles(result.output()), FORWARD_TOLERANCE,
          "output with dropout");
      double[] gOut = randomArray(random, t * n * h);
      gru.zeroGrad();
      RecurrentLayer.Gradients grads =
          gru.backward(arena, result.context(), tensor(arena, gOut, t, n, h), null);
      java.util.function.DoubleSupplier loss =
          () -> RecurrentReference.weightedLoss(reference.get(), gOut, null, null);
      assertClose(FiniteDifferences.gradient(x, loss), doubles(grads.input()),
          BACKWARD_TOLERANCE, "grad input through dropout");
      for (Parameter p : gru.parameters()) {
        assertClose(FiniteDifferences.gradient(params.get(p.name()), loss),
            doubles(p.grad()), BACKWARD_TOLERANCE, "grad " + p.name());
      }
    }
  }

  @Test
  void singleStepIntoPreallocatedTensorsMatchesAndAllocatesNothingOnTheHeap() {
    try (Lstm lstm = Lstm.builder(16, 16).peepholes(true).build();
        Arena arena = Arena.ofConfined()) {
      Tensor step = Tensor.randomNormal(arena, 6, 1, 1, 16);
      RecurrentState a = new RecurrentState(Tensor.zeros(arena, 1, 1, 16),
          Tensor.zeros(arena, 1, 1, 16));
      RecurrentState b = new RecurrentState(Tensor.zeros(arena, 1, 1, 16),
          Tensor.zeros(arena, 1, 1, 16));
      Tensor out = Tensor.zeros(arena, 1, 1, 16);
      lstm.forward(step, null, out, a);
      RecurrentLayer.Result reference = lstm.forward(arena, step, null, null, Mode.INFERENCE);
      assertArrayEquals(reference.output().toArray(), out.toArray());
      var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
      var inference = org.seq4j.Autograd.noGrad(); // a service's streaming path
      for (int i = 0; i < 20_000; i++) { // warm up, ping-ponging the state
        lstm.forward(step, (i & 1) == 0 ? a : b, out, (i & 1) == 0 ? b : a);
      }
      long before = threads.getCurrentThreadAllocatedBytes();
      for (int i = 0; i < 10_000; i++) {
        lstm.forward(step, (i & 1) == 0 ? a : b, out, (i & 1) == 0 ? b : a);
      }
      long allocated = threads.getCurrentThreadAllocatedBytes() - before;
      inference.close();
      assertTrue(allocated < 10_000, "allocated " + allocated + " bytes in 10,000 steps");
    }
  }

  @Test
  void concurrentInferenceOnSharedWeightsGivesTheSameResults() throws Exception {
    int threads = Seq4j.threads();
    Seq4j.setThreads(2);
    try {
      // 20 samples: oneDNN splits them across its two threads in every call (batch_parts)
      for (int batch : new int[] {4, 20}) {
        concurrentCallsGiveTheSameResults(batch);
      }
    } finally {
      Seq4j.setThreads(threads);
    }
  }

  private static void concurrentCallsGiveTheSameResults(int batch) throws Exception {
    try (Lstm lstm = Lstm.builder(8, 16).numLayers(2).bidirectional(true).build();
        Arena shared = Arena.ofShared()) {
      Tensor x = Tensor.randomNormal(shared, 2, 10, batch, 8);
      float[] expected = lstm.forward(shared, x).output().toArray();
      List<CompletableFuture<float[]>> runs = new ArrayList<>();
      for (int thread = 0; thread < 4; thread++) {
        runs.add(CompletableFuture.supplyAsync(() -> {
          float[] last = null;
          for (int i = 0; i < 25; i++) {
            try (Arena arena = Arena.ofConfined()) {
              last = lstm.forward(arena, x).output().toArray();
            }
          }
          return last;
        }));
      }
      for (CompletableFuture<float[]> run : runs) {
        assertArrayEquals(expected, run.get());
      }
    }
  }

  @Test
  void changedParametersAreSeenByInferenceAfterMarkChanged() {
    try (Gru gru = Gru.builder(3, 4).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 2, 1, 3);
      float[] before = gru.forward(arena, x).output().toArray();
      gru.parameter("bias_ih_l0").data().fill(1f);
      gru.parameter("bias_ih_l0").markChanged();
      float[] after = gru.forward(arena, x).output().toArray();
      assertNotEquals(java.util.Arrays.toString(before), java.util.Arrays.toString(after));
    }
  }

  @Test
  void anOptimizerSteppingRenamedParametersInvalidatesTheInferenceCache() {
    try (Gru gru = Gru.builder(3, 4).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 2, 1, 3);
      float[] before = gru.forward(arena, x).output().toArray();
      List<Parameter> renamed = Parameter.prefixed("rnn.", gru.parameters());
      assertEquals("rnn.weight_ih_l0", renamed.get(0).name());
      renamed.get(2).grad().fill(1f); // bias_ih_l0
      try (org.seq4j.train.Sgd sgd = org.seq4j.train.Sgd.builder(renamed).learningRate(0.5)
          .build()) {
        sgd.step();
      }
      float[] after = gru.forward(arena, x).output().toArray();
      assertNotEquals(java.util.Arrays.toString(before), java.util.Arrays.toString(after));
    }
  }

  // ---- errors

  @Test
  void badInputsAreRejectedWithClearMessages() {
    try (Lstm lstm = Lstm.builder(3, 4).numLayers(2).build(); Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(arena, Tensor.zeros(arena, 5, 2, 7)));
      assertEquals("input: expected shape (T, N, 3) [time-major], got (5, 2, 7)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(arena, Tensor.zeros(arena, 5, 3)));
      assertEquals("input: expected shape (T, N, 3) [time-major], got (5, 3)", e.getMessage());
      Tensor x = Tensor.zeros(arena, 5, 2, 3);
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(arena, x,
          new RecurrentState(Tensor.zeros(arena, 1, 2, 4), Tensor.zeros(arena, 2, 2, 4))));
      assertEquals("initial.hidden: expected shape (2, 2, 4) (layers * directions, N, hiddenSize),"
          + " got (1, 2, 4)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> lstm.forward(arena, x,
          RecurrentState.of(Tensor.zeros(arena, 2, 2, 4))));
      assertEquals("initial.cell: expected shape (2, 2, 4) (layers * directions, N, hiddenSize),"
          + " got null", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(arena, x, null, new long[] {5, 6}, Mode.INFERENCE));
      assertEquals("lengths[1]: expected 1 <= length <= 5 (T), got 6", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(arena, x, null, new long[] {5}, Mode.INFERENCE));
      assertEquals("lengths: expected 2 values (one per sample), got 1", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> lstm.forward(arena, x, null, new long[] {0, 1}, Mode.INFERENCE));
      assertEquals("lengths[0]: expected 1 <= length <= 5 (T), got 0", e.getMessage());
    }
  }

  @Test
  void batchFirstMixUpsAndContextMisuseAreRejected() {
    try (Gru batchFirst = Gru.builder(3, 4).batchFirst(true).build();
        Gru other = Gru.builder(3, 4).build(); Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> batchFirst.forward(arena, Tensor.zeros(arena, 2, 5, 4)));
      assertEquals("input: expected shape (N, T, 3) [batch-first], got (2, 5, 4)",
          e.getMessage());
      RecurrentLayer.Result result = batchFirst.forward(arena, Tensor.zeros(arena, 2, 5, 3), null,
          null, Mode.TRAINING);
      assertEquals(Shape.of(2, 5, 4), result.output().shape());
      e = assertThrows(IllegalArgumentException.class,
          () -> batchFirst.backward(arena, result.context(), Tensor.zeros(arena, 5, 2, 4), null));
      assertEquals("gradOutput: expected shape (2, 5, 4) (the output's), got (5, 2, 4)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> other.backward(arena, result.context(), Tensor.zeros(arena, 5, 2, 4), null));
      assertTrue(e.getMessage().startsWith("context: it belongs to another layer"));
      assertThrows(NullPointerException.class,
          () -> other.backward(arena, null, Tensor.zeros(arena, 5, 2, 4), null));
      var noContext =
          other.forward(arena, Tensor.zeros(arena, 5, 2, 3), null, null, Mode.INFERENCE);
      assertNull(noContext.context(), "inference saves nothing");
    }
  }

  @Test
  void closedTensorsLayersAndContextsAreRejected() {
    Lstm lstm = Lstm.builder(3, 4).build();
    Tensor closedInput;
    RecurrentLayer.Context closedContext;
    try (Arena arena = Arena.ofConfined()) {
      closedInput = Tensor.zeros(arena, 2, 1, 3);
      closedContext = lstm.forward(arena, closedInput, null, null, Mode.TRAINING).context();
    }
    try (Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalStateException.class, () -> lstm.forward(arena, closedInput));
      assertEquals("input: the tensor's arena is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class,
          () -> lstm.backward(arena, closedContext, Tensor.zeros(arena, 2, 1, 4), null));
      assertTrue(e.getMessage().startsWith("context: the arena of its forward pass is closed"));
      lstm.close();
      e = assertThrows(IllegalStateException.class,
          () -> lstm.forward(arena, Tensor.zeros(arena, 2, 1, 3)));
      assertEquals("Lstm: the layer is closed", e.getMessage());
    }
  }

  @Test
  void invalidConfigurationsAreRejected() {
    var e = assertThrows(IllegalArgumentException.class,
        () -> Lstm.builder(3, 4).projSize(4).build());
    assertEquals("projSize: expected 0 (none) or 0 < projSize < hiddenSize = 4, got 4",
        e.getMessage());
    e = assertThrows(IllegalArgumentException.class, () -> Gru.builder(0, 4).build());
    assertEquals("inputSize: expected >= 1, got 0", e.getMessage());
    e = assertThrows(IllegalArgumentException.class,
        () -> SimpleRnn.builder(3, 4).dropout(1f).build());
    assertEquals("dropout: expected 0 <= p < 1, got 1.0", e.getMessage());
    try (Gru gru = Gru.builder(3, 4).build()) {
      e = assertThrows(IllegalArgumentException.class, () -> gru.parameter("weight_hr_l0"));
      assertTrue(e.getMessage().startsWith("name: Gru has no parameter 'weight_hr_l0'"));
    }
  }
}
