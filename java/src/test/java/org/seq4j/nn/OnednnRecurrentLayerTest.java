package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import java.lang.foreign.Arena;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.seq4j.Backend;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;

/** Every recurrent-layer test on oneDNN's RNN primitives, and what only that backend does. */
class OnednnRecurrentLayerTest extends RecurrentLayerTest {
  @Override
  Backend backend() {
    return Backend.ONEDNN;
  }

  /**
   * A primitive per (steps, batch) is cached, at most 128 per layer (rnn_onednn.cpp): more
   * distinct lengths than that start the cache again, and a length seen before gives the same
   * bits from its re-created primitive, in inference and training.
   */
  @Test
  void moreDistinctLengthsThanTheCacheHoldsGiveTheSameResultsAgain() {
    try (Lstm lstm = Lstm.builder(3, 4).backend(Backend.ONEDNN).seed(5).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 140, 2, 3);
      Tensor gradOutput = Tensor.randomNormal(arena, 2, 140, 2, 4);
      float[][] gradients = new float[2][];
      gradients[0] = trainingGradient(lstm, arena, x, gradOutput);
      float[][] first = new float[141][];
      for (int t = 1; t <= 140; t++) {
        first[t] = lstm.forward(arena, x.slice(0, t), null, null, Mode.INFERENCE).output()
            .toArray();
      }
      for (int t : new int[] {1, 2, 77, 140}) {
        assertArrayEquals(first[t], lstm.forward(arena, x.slice(0, t), null, null,
            Mode.INFERENCE).output().toArray(), 0f, "T = " + t);
      }
      // the training primitives were dropped with the rest: made again, the same bits
      gradients[1] = trainingGradient(lstm, arena, x, gradOutput);
      assertArrayEquals(gradients[0], gradients[1], 0f, "grad input");
    }
  }

  /**
   * A training forward split across two threads (rnn_onednn.cpp, batch_parts) keeps its plan in
   * its workspace: its backward splits the same way at any thread count, and so does a second
   * backward (which recomputes the forward), so the gradients are the bits of a backward at two
   * threads.
   */
  @Test
  void aSplitForwardsBackwardsKeepItsSplitAtOtherThreadCounts() {
    int threads = Seq4j.threads();
    try (Lstm lstm = Lstm.builder(5, 6).backend(Backend.ONEDNN).seed(3).build();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 7, 17, 5);
      Tensor gradOutput = Tensor.randomNormal(arena, 2, 7, 17, 6);
      Seq4j.setThreads(2);
      float[] expectedInput = trainingGradient(lstm, arena, x, gradOutput);
      Map<String, float[]> expected = new HashMap<>();
      for (Parameter p : lstm.parameters()) {
        expected.put(p.name(), p.grad().toArray());
      }
      lstm.zeroGrad();
      RecurrentLayer.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
      Seq4j.setThreads(1);
      assertArrayEquals(expectedInput,
          lstm.backward(arena, result.context(), gradOutput, null).input().toArray(), 0f,
          "grad input, backward at 1 thread");
      for (Parameter p : lstm.parameters()) {
        assertArrayEquals(expected.get(p.name()), p.grad().toArray(), 0f, p.name());
      }
      Seq4j.setThreads(3);
      assertArrayEquals(expectedInput,
          lstm.backward(arena, result.context(), gradOutput, null).input().toArray(), 0f,
          "grad input, second backward at 3 threads");
      for (Parameter p : lstm.parameters()) {
        float[] twice = expected.get(p.name()).clone();
        for (int i = 0; i < twice.length; i++) {
          twice[i] += twice[i];
        }
        assertArrayEquals(twice, p.grad().toArray(), 0f, p.name() + " after two backwards");
      }
    } finally {
      Seq4j.setThreads(threads);
    }
  }

  private static float[] trainingGradient(Lstm lstm, Arena arena, Tensor x, Tensor gradOutput) {
    RecurrentLayer.Result result = lstm.forward(arena, x, null, null, Mode.TRAINING);
    return lstm.backward(arena, result.context(), gradOutput, null).input().toArray();
  }
}
