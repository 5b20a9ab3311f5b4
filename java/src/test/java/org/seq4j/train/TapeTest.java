package org.seq4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Tape;
import org.seq4j.Tensor;
import org.seq4j.nn.Gru;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.reference.Tolerances;

/** The tape gives the same gradients as calling each layer's backward by hand. */
class TapeTest {
  static final int T = 6;
  static final int N = 3;

  static List<float[]> gradients(List<Parameter> parameters) {
    List<float[]> out = new ArrayList<>();
    for (Parameter p : parameters) {
      out.add(p.grad().toArray());
    }
    return out;
  }

  @Test
  void aStackOfLayersTrainsThroughTheTapeAsByHand() {
    try (Gru gru = Gru.builder(4, 5).seed(1).build(); Lstm lstm = Lstm.builder(5, 7).seed(2)
        .peepholes(true).build(); Linear head = new Linear(7, 2, true, 3);
        Arena arena = Arena.ofConfined()) {
      List<Parameter> all = new ArrayList<>(gru.parameters());
      all.addAll(lstm.parameters());
      all.addAll(head.parameters());
      Tensor x = Tensor.randomNormal(arena, 4, T, N, 4);
      Tensor target = Tensor.randomNormal(arena, 5, N, 2);

      // by hand
      RecurrentLayer.Result first = gru.forward(arena, x, null, null, Mode.TRAINING);
      RecurrentLayer.Result second = lstm.forward(arena, first.output(), null, null, Mode.TRAINING);
      Tensor last = second.output().slice(T - 1, T).reshape(N, 7);
      Tensor y = head.forward(arena, last);
      Tensor gradY = Tensor.zeros(arena, N, 2);
      float lossByHand = Losses.meanSquaredError(y, target, gradY);
      Tensor gradLast = head.backward(arena, last, gradY);
      Tensor gradSecond = Tensor.zeros(arena, T, N, 7);
      gradSecond.slice(T - 1, T).copyFrom(gradLast.reshape(1, N, 7));
      RecurrentLayer.Gradients g2 = lstm.backward(arena, second.context(), gradSecond, null);
      gru.backward(arena, first.context(), g2.input(), null);
      List<float[]> byHand = gradients(all);
      for (Parameter p : all) {
        p.zeroGrad();
      }

      // through the tape
      float lossByTape;
      try (Tape tape = Tape.start(arena)) {
        RecurrentLayer.Result a = gru.forward(arena, x, null, null, Mode.TRAINING);
        RecurrentLayer.Result b = lstm.forward(arena, a.output(), null, null, Mode.TRAINING);
        Tensor lastStep = b.output().slice(T - 1, T).reshape(N, 7);
        Tensor prediction = head.forward(arena, lastStep);
        Tensor gradPrediction = Tensor.zeros(arena, N, 2);
        lossByTape = Losses.meanSquaredError(prediction, target, gradPrediction);
        tape.backward(prediction, gradPrediction);
        assertArrayEquals(g2.input().toArray(), tape.gradient(a.output()).toArray(),
            (float) Tolerances.REPLAYED,
            "the gradient routed into the first layer's output");
        assertNull(tape.gradient(x), "the data is not a recorded output");
      }
      assertEquals(lossByHand, lossByTape);
      List<float[]> byTape = gradients(all);
      for (int i = 0; i < all.size(); i++) {
        assertArrayEquals(byHand.get(i), byTape.get(i), (float) Tolerances.REPLAYED,
            all.get(i).name());
      }
    }
  }

  @Test
  void tapeMisuseIsRejected() {
    try (Linear head = new Linear(3, 2, true, 1); Arena arena = Arena.ofConfined();
        Tape tape = Tape.start(arena)) {
      var nested = assertThrows(IllegalStateException.class, () -> Tape.start(arena));
      assertEquals("Tape: this thread is already recording; tapes do not nest",
          nested.getMessage());
      Tensor unrecorded = Tensor.zeros(arena, 4, 2);
      var e = assertThrows(IllegalArgumentException.class,
          () -> tape.backward(unrecorded, Tensor.zeros(arena, 4, 2)));
      assertEquals("output: it is not (a view of) an output recorded on this tape",
          e.getMessage());
      Tensor y = head.forward(arena, Tensor.zeros(arena, 4, 3));
      e = assertThrows(IllegalArgumentException.class,
          () -> tape.backward(y, Tensor.zeros(arena, 2, 4)));
      assertEquals("gradient: expected shape (4, 2) (the shape of output), got (2, 4)",
          e.getMessage());
    }
    assertNull(Tape.active(), "closing the tape stops recording");
  }
}
