package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.seq4j.Backend;
import org.seq4j.KernelIsa;
import org.seq4j.Seq4j;
import org.seq4j.Seq4jException;
import org.seq4j.Tensor;
import org.seq4j.reference.Tolerances;

/**
 * The two recurrent backends against each other (both are also checked against the float64
 * reference by {@link RecurrentLayerTest}), the streaming step against the full forward, the
 * kernel copies of every instruction set, and AUTO's table.
 */
class RecurrentBackendsTest {

  /** Two float32 implementations of the same sums, each within the forward budget of float64. */
  private static final float FORWARD_AGREEMENT = (float) Tolerances.RECURRENT_BACKENDS_FORWARD;
  /** Gradients sum T·N terms each; both backends are within the backward budget of float64. */
  private static final float BACKWARD_AGREEMENT = (float) Tolerances.RECURRENT_BACKENDS_BACKWARD;

  @AfterEach
  void restoreDefaults() {
    Seq4j.setRecurrentBackend(Backend.AUTO);
    Seq4j.selectKernels(KernelIsa.BEST);
  }

  /** Layers of sizes that cross the kernels' 16-unit blocks and both threads' slices. */
  private static List<Supplier<RecurrentLayer>> layers(Backend backend) {
    return List.of(
        () -> Lstm.builder(7, 37).numLayers(2).bidirectional(true).peepholes(true).projSize(19)
            .backend(backend).build(),
        () -> Lstm.builder(5, 33).backend(backend).build(),
        () -> Gru.builder(6, 35).numLayers(2).bidirectional(true).backend(backend).build(),
        () -> SimpleRnn.builder(4, 40).nonlinearity(SimpleRnn.Nonlinearity.RELU)
            .backend(backend).build(),
        () -> SimpleRnn.builder(4, 18).backend(backend).build());
  }

  @Test
  void bothBackendsAgreeOnOutputsStatesAndEveryGradient() {
    long[] lengths = {9, 3, 9, 1, 6, 9, 2, 8, 5, 9, 4, 7};
    List<Supplier<RecurrentLayer>> onednn = layers(Backend.ONEDNN);
    List<Supplier<RecurrentLayer>> blas = layers(Backend.BLAS);
    for (int i = 0; i < onednn.size(); i++) {
      for (long[] lengthCase : new long[][] {null, lengths}) {
        try (RecurrentLayer a = onednn.get(i).get(); RecurrentLayer b = blas.get(i).get();
            Arena arena = Arena.ofConfined()) {
          Tensor x = Tensor.randomNormal(arena, 11 + i, 9, 12, a.inputSize());
          long states = (long) a.numLayers() * a.directions();
          RecurrentState initial = new RecurrentState(
              Tensor.randomNormal(arena, 12, states, 12, a.outputSizePerDirection()),
              a.hasCell() ? Tensor.randomNormal(arena, 13, states, 12, a.hiddenSize()) : null);
          RecurrentLayer.Result ra = a.forward(arena, x, initial, lengthCase, Mode.TRAINING);
          RecurrentLayer.Result rb = b.forward(arena, x, initial, lengthCase, Mode.TRAINING);
          String what = a + (lengthCase == null ? "" : " with lengths");
          assertClose(ra.output(), rb.output(), FORWARD_AGREEMENT, what + " output");
          assertClose(ra.finalState().hidden(), rb.finalState().hidden(), FORWARD_AGREEMENT,
              what + " h_n");
          Tensor gradOutput = Tensor.randomNormal(arena, 14, ra.output().shape().dims());
          RecurrentState gradFinal = new RecurrentState(
              Tensor.randomNormal(arena, 15, ra.finalState().hidden().shape().dims()),
              a.hasCell() ? Tensor.randomNormal(arena, 16, ra.finalState().cell().shape().dims())
                  : null);
          if (a.hasCell()) {
            assertClose(ra.finalState().cell(), rb.finalState().cell(), FORWARD_AGREEMENT,
                what + " c_n");
          }
          RecurrentLayer.Gradients ga = a.backward(arena, ra.context(), gradOutput, gradFinal);
          RecurrentLayer.Gradients gb = b.backward(arena, rb.context(), gradOutput, gradFinal);
          assertClose(ga.input(), gb.input(), BACKWARD_AGREEMENT, what + " grad input");
          assertClose(ga.initialState().hidden(), gb.initialState().hidden(), BACKWARD_AGREEMENT,
              what + " grad h0");
          if (a.hasCell()) {
            assertClose(ga.initialState().cell(), gb.initialState().cell(), BACKWARD_AGREEMENT,
                what + " grad c0");
          }
          for (Parameter p : a.parameters()) {
            assertClose(p.grad(), b.parameter(p.name()).grad(), BACKWARD_AGREEMENT,
                what + " grad " + p.name());
          }
        }
      }
    }
  }

  @Test
  void everyCopyOfTheCellKernelsGivesTheSameResultsAsOnednn() {
    for (KernelIsa isa : new KernelIsa[] {KernelIsa.BASELINE, KernelIsa.AVX2, KernelIsa.AVX512}) {
      try {
        Seq4j.selectKernels(isa);
      } catch (Seq4jException unsupported) {
        assertTrue(unsupported.getMessage().contains("this CPU has no"), unsupported.getMessage());
        continue;  // the CPU lacks it: nothing of that copy can run here
      }
      bothBackendsAgreeOnOutputsStatesAndEveryGradient();
    }
  }

  @Test
  void theStreamingStepEqualsTheFullForwardStepByStep() {
    for (Backend backend : new Backend[] {Backend.BLAS, Backend.ONEDNN}) {
      for (int batch : new int[] {1, 3, 8, 11}) {
        for (RecurrentLayer layer : List.of(
            Lstm.builder(6, 37).numLayers(2).peepholes(true).projSize(21).backend(backend)
                .build(),
            Lstm.builder(6, 16).backend(backend).build(),
            Gru.builder(6, 35).numLayers(2).backend(backend).build(),
            SimpleRnn.builder(6, 17).backend(backend).build(),
            Gru.builder(6, 20).batchFirst(true).backend(backend).build())) {
          try (layer; Arena arena = Arena.ofConfined()) {
            int steps = 5;
            Tensor x = Tensor.randomNormal(arena, batch, steps, batch, 6);
            long states = layer.numLayers();
            RecurrentState initial = new RecurrentState(
                Tensor.randomNormal(arena, 2, states, batch, layer.outputSizePerDirection()),
                layer.hasCell() ? Tensor.randomNormal(arena, 3, states, batch, layer.hiddenSize())
                    : null);
            Tensor sequence = layer.batchFirst() ? batchFirst(arena, x) : x;
            RecurrentLayer.Result whole = layer.forward(arena, sequence, initial);
            Tensor timeMajor = layer.batchFirst() ? batchFirst(arena, whole.output()) : whole.output();
            RecurrentState state = new RecurrentState(initial.hidden().copy(arena),
                layer.hasCell() ? initial.cell().copy(arena) : null);
            Tensor output = Tensor.zeros(arena, batch, layer.outputSizePerDirection());
            for (int t = 0; t < steps; t++) {
              Tensor input = x.slice(t, t + 1).reshape(batch, 6);
              layer.step(input, state, output);
              assertClose(timeMajor.slice(t, t + 1).reshape(output.shape().dims()), output,
                  FORWARD_AGREEMENT, layer + " " + backend + " N=" + batch + " step " + t);
            }
            assertClose(whole.finalState().hidden(), state.hidden(), FORWARD_AGREEMENT,
                layer + " final h");
            if (layer.hasCell()) {
              assertClose(whole.finalState().cell(), state.cell(), FORWARD_AGREEMENT,
                  layer + " final c");
            }
          }
        }
      }
    }
  }

  @Test
  void theStepRepacksItsWeightsWhenTheyChange() {
    try (Lstm lstm = Lstm.builder(4, 20).backend(Backend.BLAS).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 1, 2, 4);
      RecurrentState state = new RecurrentState(Tensor.zeros(arena, 1, 2, 20),
          Tensor.zeros(arena, 1, 2, 20));
      lstm.step(x.reshape(2, 4), state, null);
      Parameter w = lstm.parameter("weight_hh_l0");
      w.data().fill(0.25f);
      w.markChanged();
      RecurrentState start = new RecurrentState(state.hidden().copy(arena), state.cell().copy(arena));
      lstm.step(x.reshape(2, 4), state, null);
      RecurrentLayer.Result expected = lstm.forward(arena, x, start);
      assertClose(expected.finalState().hidden(), state.hidden(), FORWARD_AGREEMENT,
          "after markChanged");
    }
  }

  @Test
  void blasInferenceRepacksItsWeightsWhenTheyChange() {
    try (Lstm blas = Lstm.builder(5, 20).projSize(7).backend(Backend.BLAS).seed(3).build();
        Lstm onednn = Lstm.builder(5, 20).projSize(7).backend(Backend.ONEDNN).seed(3).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 4, 6, 12, 5);  // 12 samples: the GEMM-sized route
      assertClose(onednn.forward(arena, x).output(), blas.forward(arena, x).output(),
          FORWARD_AGREEMENT, "before the change");
      for (Lstm layer : List.of(blas, onednn)) {
        layer.parameter("weight_hh_l0").data().fill(0.05f);
        layer.parameter("weight_hr_l0").data().fill(-0.1f);
        layer.parametersChanged();
      }
      assertClose(onednn.forward(arena, x).output(), blas.forward(arena, x).output(),
          FORWARD_AGREEMENT, "after markChanged");
    }
  }

  @Test
  void theStreamingStepAllocatesNothingOnTheHeap() {
    com.sun.management.ThreadMXBean threads =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    try (Lstm lstm = Lstm.builder(32, 32).numLayers(2).peepholes(true).build();
        Gru gru = Gru.builder(32, 32).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 1, 32);
      RecurrentState lstmState = new RecurrentState(Tensor.zeros(arena, 2, 1, 32),
          Tensor.zeros(arena, 2, 1, 32));
      RecurrentState gruState = new RecurrentState(Tensor.zeros(arena, 1, 1, 32), null);
      Tensor output = Tensor.zeros(arena, 1, 32);
      var inference = org.seq4j.Autograd.noGrad(); // a service's streaming path records nothing
      for (int i = 0; i < 20_000; i++) {  // warm up: compile and pack once
        lstm.step(x, lstmState, output);
        gru.step(x, gruState, output);
      }
      long before = threads.getCurrentThreadAllocatedBytes();
      for (int i = 0; i < 10_000; i++) {
        lstm.step(x, lstmState, output);
        gru.step(x, gruState, output);
      }
      long allocated = threads.getCurrentThreadAllocatedBytes() - before;
      inference.close();
      assertTrue(allocated < 10_000, "allocated " + allocated + " bytes in 20,000 steps");
    }
  }

  @Test
  void autoFollowsItsMeasuredTableUnlessPinned() {
    try (Lstm lstm = Lstm.builder(8, 8).build();
        Lstm peepholes = Lstm.builder(8, 8).peepholes(true).build();
        Lstm pinned = Lstm.builder(8, 8).backend(Backend.ONEDNN).build()) {
      assertEquals(null, lstm.backend());
      if (org.seq4j.reference.KernelCopies.runnable().contains(KernelIsa.AVX512)) {
        // the AVX-512 table (rnn.cpp, choose_backend)
        assertEquals(Backend.BLAS, lstm.resolvedBackend(1, 4, Mode.INFERENCE));
        assertEquals(Backend.ONEDNN, lstm.resolvedBackend(1, 5, Mode.INFERENCE));
        assertEquals(Backend.ONEDNN, lstm.resolvedBackend(2, 1, Mode.INFERENCE));
        assertEquals(Backend.BLAS, lstm.resolvedBackend(50, 6, Mode.TRAINING));
        assertEquals(Backend.ONEDNN, lstm.resolvedBackend(50, 7, Mode.TRAINING));
        assertEquals(Backend.ONEDNN, peepholes.resolvedBackend(50, 64, Mode.TRAINING));
        assertEquals(Backend.BLAS, peepholes.resolvedBackend(50, 1, Mode.TRAINING));
      } else {
        assertEquals(Backend.BLAS, lstm.resolvedBackend(50, 1, Mode.INFERENCE));
        assertEquals(Backend.BLAS, lstm.resolvedBackend(50, 8, Mode.INFERENCE));
        assertEquals(Backend.ONEDNN, lstm.resolvedBackend(50, 9, Mode.INFERENCE));
        assertEquals(Backend.BLAS, lstm.resolvedBackend(50, 32, Mode.TRAINING));
        assertEquals(Backend.ONEDNN, lstm.resolvedBackend(50, 33, Mode.TRAINING));
        assertEquals(Backend.BLAS, peepholes.resolvedBackend(50, 64, Mode.TRAINING));
      }
      assertEquals(Backend.ONEDNN, pinned.resolvedBackend(50, 1, Mode.INFERENCE));
      Seq4j.setRecurrentBackend(Backend.BLAS);
      assertEquals(Backend.BLAS, lstm.resolvedBackend(50, 64, Mode.TRAINING));
      assertEquals(Backend.ONEDNN, pinned.resolvedBackend(50, 64, Mode.INFERENCE),
          "the layer's pin wins");
    }
  }

  @Test
  void badStepArgumentsAreRefusedWithTheirNames() {
    try (Lstm bidirectional = Lstm.builder(4, 6).bidirectional(true).build();
        Lstm lstm = Lstm.builder(4, 6).build(); Arena arena = Arena.ofConfined()) {
      RecurrentState state = new RecurrentState(Tensor.zeros(arena, 1, 2, 6),
          Tensor.zeros(arena, 1, 2, 6));
      Tensor x = Tensor.zeros(arena, 2, 4);
      IllegalStateException notStreamable = assertThrows(IllegalStateException.class,
          () -> bidirectional.step(x, state, null));
      assertTrue(notStreamable.getMessage().contains("bidirectional"));
      IllegalArgumentException wrongInput = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(Tensor.zeros(arena, 2, 5), state, null));
      assertTrue(wrongInput.getMessage().startsWith("input: expected shape (N, 4)"),
          wrongInput.getMessage());
      IllegalArgumentException wrongState = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(Tensor.zeros(arena, 3, 4), state, null));
      assertTrue(wrongState.getMessage().startsWith("state.hidden: expected shape"),
          wrongState.getMessage());
      IllegalArgumentException wrongOutput = assertThrows(IllegalArgumentException.class,
          () -> lstm.step(x, state, Tensor.zeros(arena, 2, 7)));
      assertTrue(wrongOutput.getMessage().startsWith("output: expected shape (2, 6)"),
          wrongOutput.getMessage());
      assertThrows(NullPointerException.class, () -> Seq4j.selectKernels(null));
      assertThrows(NullPointerException.class, () -> Seq4j.setRecurrentBackend(null));
      assertThrows(NullPointerException.class, () -> Lstm.builder(4, 6).backend(null));
      IllegalArgumentException noSteps = assertThrows(IllegalArgumentException.class,
          () -> lstm.resolvedBackend(0, 2, Mode.INFERENCE));
      assertTrue(noSteps.getMessage().startsWith("steps: expected >= 1, got 0"),
          noSteps.getMessage());
      assertThrows(NullPointerException.class, () -> lstm.resolvedBackend(5, 2, null));
      lstm.close();
      assertThrows(IllegalStateException.class, () -> lstm.step(x, state, null));
    }
  }

  private static Tensor batchFirst(Arena arena, Tensor timeMajor) {
    long t = timeMajor.dim(0), n = timeMajor.dim(1), c = timeMajor.dim(2);
    float[] in = timeMajor.toArray();
    float[] out = new float[in.length];
    for (int i = 0; i < t; i++) {
      for (int j = 0; j < n; j++) {
        System.arraycopy(in, (int) ((i * n + j) * c), out, (int) ((j * t + i) * c), (int) c);
      }
    }
    return Tensor.fromArray(arena, out, n, t, c);
  }

  private static void assertClose(Tensor expected, Tensor actual, float tolerance, String what) {
    assertEquals(expected.shape(), actual.shape(), what + " shape");
    float[] e = expected.toArray();
    float[] a = actual.toArray();
    for (int i = 0; i < e.length; i++) {
      float bound = tolerance * (1 + Math.abs(e[i]));
      if (!(Math.abs(e[i] - a[i]) <= bound)) {
        throw new AssertionError(what + "[" + i + "]: expected " + e[i] + ", got " + a[i]
            + " (tolerance " + bound + ")");
      }
    }
  }
}
