package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Tolerances;
import org.seq4j.train.Losses;

/**
 * Layers as modules under the one autograd: the graph gives the explicit backwards' gradients, a
 * forward that cannot record fails loudly, explicit and graph backwards cannot both run, in-place
 * changes are caught, and a module tree has PyTorch's names and state dict.
 */
class ModuleAutogradTest {
  static final int T = 6;
  static final int N = 3;

  /** An LSTM language-model head as a user writes it: PyTorch's names follow the fields. */
  static final class Tagger extends Module implements Layer {
    final Lstm lstm = register("lstm", Lstm.builder(4, 5).numLayers(2).seed(2).build());
    final Linear head = register("head", new Linear(5, 3, true, 3));

    @Override
    public Tensor forward(Tensor x) {
      return head.forward(lstm.forward(x).output());
    }
  }

  static List<float[]> gradients(List<Parameter> parameters) {
    List<float[]> out = new ArrayList<>();
    for (Parameter p : parameters) {
      out.add(p.grad().toArray());
    }
    return out;
  }

  @Test
  void theGraphGivesTheExplicitBackwardsGradients() {
    try (Gru gru = Gru.builder(4, 5).seed(1).build(); Lstm lstm = Lstm.builder(5, 7).seed(2)
        .peepholes(true).build(); Linear head = new Linear(7, 2, true, 3);
        Arena arena = Arena.ofConfined()) {
      List<Parameter> all = new ArrayList<>(gru.parameters());
      all.addAll(lstm.parameters());
      all.addAll(head.parameters());
      Tensor x = Tensor.randomNormal(arena, 4, T, N, 4);
      Tensor target = Tensor.randomNormal(arena, 5, N, 2);

      Tensor gradXByHand;
      float lossByHand;
      try (var off = Autograd.noGrad()) {
        RecurrentLayer.Result first = gru.forward(arena, x, null, null, Mode.TRAINING);
        RecurrentLayer.Result second =
            lstm.forward(arena, first.output(), null, null, Mode.TRAINING);
        Tensor last = second.output().slice(T - 1, T).reshape(N, 7);
        Tensor y = head.forward(arena, last);
        Tensor gradY = Tensor.zeros(arena, N, 2);
        lossByHand = Losses.meanSquaredError(y, target, gradY);
        Tensor gradLast = head.backward(arena, last, gradY);
        Tensor gradSecond = Tensor.zeros(arena, T, N, 7);
        gradSecond.slice(T - 1, T).copyFrom(gradLast.reshape(1, N, 7));
        RecurrentLayer.Gradients g2 = lstm.backward(arena, second.context(), gradSecond, null);
        gradXByHand = gru.backward(arena, first.context(), g2.input(), null).input();
      }
      List<float[]> byHand = gradients(all);
      for (Parameter p : all) {
        p.zeroGrad();
      }

      x.requiresGrad(true);
      Tensor prediction = head.forward(
          lstm.forward(arena, gru.forward(arena, x).output()).output().slice(T - 1, T)
              .reshape(N, 7));
      assertTrue(prediction.requiresGrad());
      Tensor gradPrediction = Tensor.zeros(arena, N, 2);
      assertEquals(lossByHand, Losses.meanSquaredError(prediction, target, gradPrediction));
      prediction.backward(gradPrediction);
      List<float[]> byGraph = gradients(all);
      for (int i = 0; i < all.size(); i++) {
        assertArrayEquals(byHand.get(i), byGraph.get(i), (float) Tolerances.REPLAYED,
            all.get(i).name());
      }
      assertArrayEquals(gradXByHand.toArray(), x.grad().toArray(), (float) Tolerances.REPLAYED,
          "the input's gradient");
    }
  }

  @Test
  void anInferenceForwardUnderRecordingFailsAtBackwardNamingTheCall() {
    try (Lstm lstm = Lstm.builder(4, 5).seed(2).build(); Linear head = new Linear(5, 2, true, 3);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 4, T, N, 4);
      Tensor out = lstm.forward(arena, x, null, null, Mode.INFERENCE).output();
      Tensor y = head.forward(arena, out);
      var e = assertThrows(IllegalStateException.class,
          () -> y.backward(Tensor.ones(arena, T, N, 2)));
      assertTrue(e.getMessage().startsWith("Lstm.forward(Mode.INFERENCE) cannot compute"
          + " gradients"), e.getMessage());
      assertTrue(e.getMessage().contains("Autograd.noGrad()"), e.getMessage());
      // the plain forward records, and under noGrad the plain forward is an inference forward
      assertNotNull(lstm.forward(arena, x).context());
      try (var off = Autograd.noGrad()) {
        RecurrentLayer.Result r = lstm.forward(arena, x);
        assertNull(r.context());
        assertFalse(r.output().requiresGrad());
        assertFalse(head.forward(arena, r.output()).requiresGrad());
      }
    }
  }

  @Test
  void explicitAndGraphBackwardsOfOneForwardCannotBothRun() {
    try (Lstm lstm = Lstm.builder(4, 5).seed(2).build(); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 4, T, N, 4);
      RecurrentLayer.Result r = lstm.forward(arena, x, null, null, Mode.TRAINING);
      Tensor grad = Tensor.ones(arena, T, N, 5);
      r.output().backward(grad);
      var e = assertThrows(IllegalStateException.class,
          () -> lstm.backward(arena, r.context(), grad, null));
      assertTrue(e.getMessage().startsWith("Lstm.backward: the forward's backward already ran"),
          e.getMessage());

      RecurrentLayer.Result s = lstm.forward(arena, x, null, null, Mode.TRAINING);
      lstm.backward(arena, s.context(), grad, null);
      lstm.backward(arena, s.context(), grad, null); // explicit ones may repeat
      e = assertThrows(IllegalStateException.class, () -> s.output().backward(grad));
      assertTrue(e.getMessage().contains("an explicit Lstm.backward"), e.getMessage());

      Linear head = new Linear(5, 2, true, 1);
      try (head) {
        Tensor in = Tensor.randomNormal(arena, 1, N, 5);
        Tensor y = head.forward(arena, in);
        y.backward(Tensor.ones(arena, N, 2));
        e = assertThrows(IllegalStateException.class,
            () -> head.backward(arena, in, Tensor.ones(arena, N, 2)));
        assertTrue(e.getMessage().startsWith("Linear.backward"), e.getMessage());
      }
    }
  }

  @Test
  void aSecondBackwardAndAnInPlaceChangeAreCaughtNamingTheOperation() {
    try (Linear head = new Linear(3, 2, true, 1); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 4, 3);
      Tensor y = head.forward(x);
      Tensor g = Tensor.ones(arena, 4, 2);
      y.backward(g);
      var e = assertThrows(IllegalStateException.class, () -> y.backward(g));
      assertTrue(e.getMessage().startsWith("Linear.forward: trying to run its backward a second"
          + " time"), e.getMessage());

      Tensor z = head.forward(x);
      x.fill(2f); // the input Linear saved for its weight gradient
      e = assertThrows(IllegalStateException.class, () -> z.backward(g));
      assertTrue(e.getMessage().startsWith("Linear.forward: a tensor it saved for backward"),
          e.getMessage());

      Tensor w = head.forward(x);
      head.weight().markChanged(); // an optimizer step between forward and backward
      e = assertThrows(IllegalStateException.class, () -> w.backward(g));
      assertTrue(e.getMessage().contains("modified in place"), e.getMessage());

      Tensor loose = Tensor.zeros(arena, 4, 2);
      e = assertThrows(IllegalStateException.class, loose::backward);
      assertTrue(e.getMessage().startsWith("tensor: it does not require a gradient"));
      var shape = assertThrows(IllegalArgumentException.class,
          () -> head.forward(x).backward(Tensor.ones(arena, 2, 4)));
      assertEquals("gradient: expected shape (4, 2) (the tensor's), got (2, 4)",
          shape.getMessage());
      var scalar = assertThrows(IllegalArgumentException.class, () -> head.forward(x).backward());
      assertTrue(scalar.getMessage().startsWith("gradient: expected a gradient of shape (4, 2)"));
    }
  }

  @Test
  void aFrozenParameterGetsNoGradientAndViewsRouteGradients() {
    try (Linear head = new Linear(3, 2, true, 1); Arena arena = Arena.ofConfined()) {
      head.weight().requiresGrad(false);
      Tensor x = Tensor.randomNormal(arena, 1, 4, 3).requiresGrad(true);
      // a reshape and a slice between the data and the layer: their backwards route the gradient
      Tensor y = head.forward(x.reshape(2, 2, 3).slice(1, 2).reshape(2, 3));
      y.backward(Tensor.ones(arena, 2, 2));
      assertArrayEquals(new float[6], head.weight().grad().toArray(), "frozen: untouched");
      assertArrayEquals(new float[] {2, 2}, head.bias().grad().toArray());
      float[] gx = x.grad().toArray();
      float[] w = head.weight().data().toArray();
      for (int row = 0; row < 4; row++) {
        for (int c = 0; c < 3; c++) {
          float expected = row < 2 ? 0f : w[c] + w[3 + c];
          assertEquals(expected, gx[row * 3 + c], 1e-6f, "x.grad[" + row + "][" + c + "]");
        }
      }
      head.weight().requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        assertFalse(head.forward(x).requiresGrad(), "nothing records under noGrad");
      }
    }
  }

  @Test
  void aModuleTreeHasPyTorchsNamesAndItsStateDictRoundTrips(@TempDir Path dir)
      throws Exception {
    List<String> expected = new ArrayList<>();
    for (int layer = 0; layer < 2; layer++) {
      for (String kind : List.of("weight_ih", "weight_hh", "bias_ih", "bias_hh")) {
        expected.add("lstm." + kind + "_l" + layer);
      }
    }
    expected.add("head.weight");
    expected.add("head.bias");
    Path file = dir.resolve("tagger.safetensors");
    float[] original;
    try (Tagger tagger = new Tagger()) {
      assertEquals(expected, List.copyOf(tagger.namedParameters().keySet()));
      assertEquals(expected, List.copyOf(tagger.stateDict().keySet()));
      assertEquals("lstm.weight_hh_l1", tagger.parameters().get(5).name());
      original = tagger.head.weight().data().toArray();
      tagger.save(file);
    }
    assertTrue(Files.size(file) > 0);
    try (Tagger other = new Tagger(); Arena arena = Arena.ofConfined()) {
      other.head.weight().data().fill(0f);
      assertEquals(new Module.LoadResult(List.of(), List.of()), other.load(file, true));
      assertArrayEquals(original, other.head.weight().data().toArray());
      Path half = dir.resolve("tagger-bf16.safetensors");
      other.save(half, org.seq4j.io.SafeTensors.StorageDType.BF16);
      try (var reader = org.seq4j.io.SafeTensors.open(half)) {
        assertEquals("BF16", reader.entries().get("head.weight").dtype());
        assertEquals(2 * 3 * 5, reader.entries().get("head.weight").byteSize());
      }
      other.load(half, true);
      float[] rounded = other.head.weight().data().toArray();
      for (int i = 0; i < original.length; i++) {
        assertEquals(original[i], rounded[i], Math.abs(original[i]) / 256, "bf16 keeps 8 bits");
      }
      other.load(file, true);

      Map<String, Tensor> state = new LinkedHashMap<>(other.stateDict());
      state.remove("head.bias");
      state.put("head.extra", Tensor.zeros(arena, 1));
      var e = assertThrows(IllegalArgumentException.class,
          () -> other.loadStateDict(state, true));
      assertEquals("state: error(s) in loading state_dict for Tagger:\n"
          + "\tMissing key(s) in state_dict: \"head.bias\".\n"
          + "\tUnexpected key(s) in state_dict: \"head.extra\".", e.getMessage());
      assertEquals(new Module.LoadResult(List.of("head.bias"), List.of("head.extra")),
          other.loadStateDict(state, false));

      Map<String, Tensor> wrong = new LinkedHashMap<>(other.stateDict());
      Tensor zeros = Tensor.zeros(arena, 3, 5);
      wrong.put("head.weight", zeros);
      wrong.put("head.bias", Tensor.zeros(arena, 4));
      float[] before = other.head.weight().data().toArray();
      e = assertThrows(IllegalArgumentException.class, () -> other.loadStateDict(wrong, true));
      assertTrue(e.getMessage().contains("size mismatch for head.bias: copying a param with"
          + " shape (4,) from checkpoint, the shape in current model is (3,)."), e.getMessage());
      assertArrayEquals(before, other.head.weight().data().toArray(),
          "all or nothing: head.weight, which matched, was not copied either");
    }
  }

  @Test
  void sequentialNamesItsPartsByIndexAndTheModeReachesTheTree() {
    try (Sequential mlp = new Sequential(new Linear(4, 8, true, 1), Nonlinearity.tanh(),
        new Linear(8, 2, true, 2)); Arena arena = Arena.ofConfined()) {
      assertEquals(List.of("0.weight", "0.bias", "2.weight", "2.bias"),
          List.copyOf(mlp.namedParameters().keySet()));
      Tensor x = Tensor.randomNormal(arena, 3, 5, 4);
      Tensor y = mlp.forward(x);
      Tensor byHand = ((Linear) mlp.get(2)).forward(((Linear) mlp.get(0)).forward(x).tanh());
      assertArrayEquals(byHand.toArray(), y.toArray(), "the layers in turn");
      assertEquals(List.of(5L, 2L), List.of(y.dim(0), y.dim(1)));
      y.backward(Tensor.ones(arena, 5, 2));
      assertTrue(mlp.namedParameters().get("0.weight").grad().toArray()[0] != 0f);
      mlp.zeroGrad();
      assertArrayEquals(new float[16], mlp.namedParameters().get("2.weight").grad().toArray());
      mlp.eval();
      assertFalse(((Module) mlp.get(2)).isTraining());
      assertEquals("Tanh()", mlp.get(1).toString());
      var e = assertThrows(IllegalArgumentException.class,
          () -> new Sequential(in -> in));
      assertTrue(e.getMessage().startsWith("layers[0]: expected a Module"), e.getMessage());
    }
  }

  @Test
  void aClosedTreeRefusesCallsAndAnUnclosedModuleIsReclaimed() throws InterruptedException {
    Tagger tagger = new Tagger();
    tagger.close();
    assertTrue(tagger.isClosed());
    assertTrue(tagger.lstm.isClosed() && tagger.head.isClosed(), "close reaches the parts");
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.zeros(arena, 2, 1, 4);
      var e = assertThrows(IllegalStateException.class, () -> tagger.forward(x));
      assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
    tagger.close(); // again: nothing

    long before = Module.leakedModules();
    for (int i = 0; i < 3; i++) {
      new Linear(8, 8, true, i); // never closed
    }
    for (int round = 0; round < 200 && Module.leakedModules() < before + 3; round++) {
      System.gc();
      Thread.sleep(10);
    }
    assertTrue(Module.leakedModules() >= before + 3,
        "the cleaner reclaimed " + (Module.leakedModules() - before) + " of 3 leaked layers");
  }

  @Test
  void dropoutDropsInTrainingModeOnlyAndItsGradientFollowsTheMask() {
    try (Dropout dropout = new Dropout(0.25f, 7); Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 400).requiresGrad(true);
      Tensor y = dropout.forward(x);
      float[] out = y.toArray();
      int kept = 0;
      for (float v : out) {
        assertTrue(v == 0f || v == 1f / 0.75f, "zero or scaled by 1/(1-p): " + v);
        kept += v == 0f ? 0 : 1;
      }
      assertTrue(kept > 250 && kept < 350, kept + " of 400 kept at p = 0.25");
      y.backward(Tensor.ones(arena, 400));
      assertArrayEquals(out, x.grad().toArray(), "the gradient is masked and scaled alike");
      assertFalse(java.util.Arrays.equals(out, dropout.forward(x).toArray()),
          "each call draws a new mask");
      dropout.eval();
      assertTrue(dropout.forward(x) == x, "the identity in inference mode");
      assertThrows(IllegalArgumentException.class, () -> new Dropout(1f));
    }
  }
}
