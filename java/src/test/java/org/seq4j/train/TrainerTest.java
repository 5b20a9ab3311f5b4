package org.seq4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.data.MiniBatches;
import org.seq4j.nn.Module;
import org.seq4j.train.TrainerFixtures.Batch;
import org.seq4j.train.TrainerFixtures.Net;
import org.seq4j.train.TrainerFixtures.SignSgd;

/** The training loop: the loss falls, early stopping, the NaN guard, checkpoints, progress. */
class TrainerTest {
  static Trainer.Builder<Net, Batch> trainer(Net net, Optimizer optimizer) {
    return Trainer.<Net, Batch>builder(net, optimizer,
        (m, b) -> TrainerFixtures.mse(m.forward(b.x()), b.y())).progress(Trainer.Progress.OFF);
  }

  static Map<String, float[]> weights(Net net) {
    Map<String, float[]> out = new java.util.LinkedHashMap<>();
    net.stateDict().forEach((k, v) -> out.put(k, v.toArray()));
    return out;
  }

  static void assertSameWeights(Map<String, float[]> expected, Map<String, float[]> actual) {
    assertEquals(expected.keySet(), actual.keySet());
    expected.forEach((k, v) -> assertArrayEquals(v, actual.get(k), 0f, k));
  }

  @Test
  void theLossFallsAndEveryBatchArenaIsClosed() {
    float[][] x = TrainerFixtures.inputs(1);
    int[] closes = {0};
    List<Double> batchLosses = new ArrayList<>();
    List<Integer> epochsStarted = new ArrayList<>();
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).learningRate(0.05)
        .momentum(0.9).build()) {
      Scheduler schedule = Scheduler.of(sgd, Scheduler.Rule.cosine(40, 0.005));
      History history = trainer(net, sgd).epochs(10).clipGradNorm(5.0)
          .requireFiniteGradients(true).scheduler(schedule)
          .callback(new Trainer.Callback() {
            @Override
            public void onEpochStart(int epoch) {
              epochsStarted.add(epoch);
            }

            @Override
            public void onBatchEnd(Trainer.BatchRecord record) {
              batchLosses.add(record.loss());
              // the norm before clipping: the gradients left after the step are clipped to 5
              double left = GradientClipping.globalNorm(net.parameters());
              assertEquals(Math.min(record.gradientNorm(), 5.0), left, 1e-5 * left,
                  "gradient norm of step " + record.step());
            }
          }).build().fit(TrainerFixtures.batches(x, 3, closes));
      assertEquals(40, batchLosses.size(), "4 batches of 16 per epoch, 10 epochs");
      assertEquals(40, sgd.steps());
      assertEquals(40, schedule.count());
      assertEquals(0.005, sgd.learningRate(), 1e-15, "the cosine reached its minimum");
      assertEquals(40, closes[0], "every batch was closed after its step");
      assertEquals(List.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), epochsStarted);
      assertEquals(10, history.epochCount());
      assertFalse(history.stoppedEarly());
      double first = batchLosses.get(0);
      double last = history.trainLoss().get(9);
      assertTrue(last < 0.5 * first, "loss " + first + " -> " + last);
      assertTrue(Double.isNaN(history.validationLoss().get(0)), "no validation set");
    }
  }

  /**
   * Batches as plain arrays: the trainer makes each step's (and each validation batch's) arena,
   * hands it to the loss and metrics, and closes it once the step is over.
   */
  @Test
  void aStepLossGetsAFreshArenaPerStepThatIsClosedAfterIt() {
    float[][] x = TrainerFixtures.inputs(3);
    record Rows(int[] indices) {}
    List<Arena> arenas = new ArrayList<>();
    List<Tensor> kept = new ArrayList<>();
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).learningRate(0.05)
        .build()) {
      MiniBatches<Rows> rows = MiniBatches.shuffled(x.length, 16, 7, Rows::new);
      History history = Trainer.<Net, Rows>builder(net, sgd, (m, b, arena) -> {
            arenas.add(arena);
            Batch batch = TrainerFixtures.batchIn(arena, x, b.indices());
            kept.add(batch.x());
            return TrainerFixtures.mse(m.forward(batch.x()), batch.y());
          }).progress(Trainer.Progress.OFF).epochs(8).validation(rows)
          .callback(new Trainer.Callback() {
            @Override
            public void onBatchEnd(Trainer.BatchRecord record) {
              assertTrue(Double.isNaN(record.gradientNorm()), "no clipping, no norm");
            }
          })
          .metric("rows", (m, b, arena) -> {
            assertTrue(arena.scope().isAlive());
            return b.indices().length;
          }).build().fit(rows);
      assertEquals(8 * 4 + 8 * 4, arenas.size(), "one arena per step and per validation batch");
      assertEquals(arenas.size(), new java.util.HashSet<>(arenas).size(), "each one fresh");
      assertTrue(arenas.stream().noneMatch(a -> a.scope().isAlive()), "each closed after use");
      assertTrue(kept.stream().noneMatch(Tensor::isUsable));
      assertEquals(16.0, history.epochs().get(7).metrics().get("rows"), 0.0);
      assertTrue(history.trainLoss().get(7) < 0.5 * history.trainLoss().get(0),
          history.trainLoss().toString());
    }
  }

  @Test
  void aUserOptimizerTrainsToo(@TempDir Path dir) throws Exception {
    float[][] x = TrainerFixtures.inputs(2);
    List<Double> batchLosses = new ArrayList<>();
    try (Net net = new Net(); SignSgd sign = new SignSgd(net.parameters(), 0.01)) {
      History history = trainer(net, sign).epochs(15).checkpoints(dir, 0, true)
          .callback(new Trainer.Callback() {
            @Override
            public void onBatchEnd(Trainer.BatchRecord record) {
              batchLosses.add(record.loss());
            }
          }).build().fit(TrainerFixtures.batches(x, 4, new int[1]));
      assertEquals(60, sign.steps());
      try (Net fresh = new Net(); SignSgd resumed = new SignSgd(fresh.parameters(), 0.01)) {
        fresh.load(dir.resolve("best.safetensors"), true);
        Checkpoints.load(dir.resolve("best.optimizer.safetensors"), List.of(), resumed);
        assertEquals(history.epochs().get(history.bestEpoch()).steps(), resumed.steps());
      }
      assertTrue(history.trainLoss().get(14) < 0.5 * batchLosses.get(0),
          batchLosses.get(0) + " -> " + history.trainLoss().get(14));
    }
  }

  @Test
  void validationRunsInEvalModeWithoutGradientsAndMetricsAreAveraged() {
    float[][] x = TrainerFixtures.inputs(5);
    List<String> seen = new ArrayList<>();
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).learningRate(0.01)
        .build()) {
      MiniBatches<Batch> validation = TrainerFixtures.batches(x, 9, new int[1]);
      History history = trainer(net, sgd).epochs(2).validation(validation)
          .metric("mode", (m, b) -> {
            seen.add(m.isTraining() + " " + Autograd.isGradEnabled());
            return b.x().dim(0);
          }).build().fit(TrainerFixtures.batches(x, 3, new int[1]));
      assertEquals(List.of("false false", "false false", "false false", "false false",
          "false false", "false false", "false false", "false false"), seen);
      assertTrue(net.isTraining(), "back in training mode");
      assertEquals(16.0, history.epochs().get(1).metrics().get("mode"), 0.0);
      assertTrue(history.validationLoss().get(1) > 0);
    }
  }

  /**
   * A scripted validation loss (1.0, 0.5, 0.6, 0.7, ...) with patience 2: epoch 1 is the best,
   * epoch 3 the last, and the weights after epoch 1 come back bit for bit.
   */
  @Test
  void earlyStoppingStopsAfterPatienceAndRestoresTheBestWeights() {
    float[][] x = TrainerFixtures.inputs(6);
    double[] scripted = {1.0, 0.5, 0.6, 0.7, 0.8, 0.9};
    int[] epoch = {0};
    List<Map<String, float[]>> afterEpoch = new ArrayList<>();
    try (Net net = new Net(); Adam adam = Adam.builder(net.parameters()).learningRate(0.01)
        .build(); Arena arena = Arena.ofConfined()) {
      Trainer.Loss<Net, Batch> loss = (m, b) -> Autograd.isGradEnabled()
          ? TrainerFixtures.mse(m.forward(b.x()), b.y())
          : Tensor.full(arena, (float) scripted[epoch[0]], 1);
      History history = Trainer.builder(net, adam, loss).progress(Trainer.Progress.OFF)
          .epochs(6).validation(TrainerFixtures.batches(x, 9, new int[1]))
          .earlyStopping(new Trainer.EarlyStopping(2, 0.01, true))
          .callback(new Trainer.Callback() {
            @Override
            public void onEpochEnd(Trainer.EpochRecord record) {
              afterEpoch.add(weights(net));
              epoch[0]++;
            }
          }).build().fit(TrainerFixtures.batches(x, 3, new int[1]));
      assertTrue(history.stoppedEarly());
      assertEquals(4, history.epochCount());
      assertEquals(1, history.bestEpoch());
      assertEquals(0.5, history.bestLoss(), 1e-7);
      for (int e = 0; e < 4; e++) {
        assertEquals(scripted[e], history.validationLoss().get(e), 1e-7);
      }
      assertNotEquals(afterEpoch.get(1).get("head.weight")[0],
          afterEpoch.get(3).get("head.weight")[0], "the weights moved after the best epoch");
      assertSameWeights(afterEpoch.get(1), weights(net));
    }
  }

  @Test
  void theGuardNamesTheFirstNonFiniteGradientBeforeTheStep() {
    float[][] x = TrainerFixtures.inputs(7);
    x[5][1] = Float.NaN;
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).build()) {
      Map<String, float[]> before = weights(net);
      // the body's output is detached, so the NaN it carries reaches the head's gradients only
      Trainer.Loss<Net, Batch> loss = (m, b) ->
          TrainerFixtures.mse(m.head.forward(m.body.forward(b.x()).detach()), b.y());
      var e = assertThrows(NonFiniteGradientException.class, () -> Trainer.builder(net, sgd, loss)
          .progress(Trainer.Progress.OFF).requireFiniteGradients(true).build()
          .fit(MiniBatches.inOrder(x.length, 64, i -> TrainerFixtures.batch(x, i, new int[1]))));
      assertEquals("head.weight", e.parameter());
      assertEquals(0, e.index());
      assertTrue(Float.isNaN(e.value()));
      assertTrue(e.getMessage().startsWith("the gradient of head.weight is not finite: element 0"
          + " [0, 0] is NaN"), e.getMessage());
      assertEquals(0, sgd.steps(), "the optimizer did not step");
      assertSameWeights(before, weights(net));
    }
  }

  @Test
  void requireFiniteGivesTheDottedNameAndTheIndex() {
    try (Net net = new Net()) {
      GradientChecks.requireFinite(net.namedParameters());
      GradientChecks.requireFinite(net.parameters());
      net.body.weight().grad().set(Float.NEGATIVE_INFINITY, 2, 1);
      var e = assertThrows(NonFiniteGradientException.class,
          () -> GradientChecks.requireFinite(net.parameters()));
      assertEquals("the gradient of body.weight is not finite: element 7 [2, 1] is -Infinity"
          + " (shape (4, 3))", e.getMessage());
      assertEquals(7, e.index());
      assertEquals(Float.NEGATIVE_INFINITY, e.value());
    }
  }

  @Test
  void checkpointsLoadBackBitIdentical(@TempDir Path dir) throws Exception {
    float[][] x = TrainerFixtures.inputs(8);
    List<Map<String, float[]>> afterEpoch = new ArrayList<>();
    try (Net net = new Net(); Adam adam = Adam.adamW(net.parameters()).learningRate(0.02)
        .build()) {
      History history = trainer(net, adam).epochs(3).checkpoints(dir, 1, true)
          .validation(TrainerFixtures.batches(x, 9, new int[1]))
          .callback(new Trainer.Callback() {
            @Override
            public void onEpochEnd(Trainer.EpochRecord record) {
              afterEpoch.add(weights(net));
            }
          }).build().fit(TrainerFixtures.batches(x, 3, new int[1]));
      for (int e = 0; e < 3; e++) {
        try (Net fresh = new Net()) {
          Module.LoadResult r = fresh.load(dir.resolve("epoch-" + e + ".safetensors"), true);
          assertTrue(r.missingKeys().isEmpty() && r.unexpectedKeys().isEmpty());
          assertSameWeights(afterEpoch.get(e), weights(fresh));
        }
      }
      try (Net fresh = new Net()) {
        fresh.load(dir.resolve("best.safetensors"), true);
        assertSameWeights(afterEpoch.get(history.bestEpoch()), weights(fresh));
      }
      try (Net fresh = new Net(); Adam resumed = Adam.adamW(fresh.parameters()).build()) {
        Map<String, String> meta = Checkpoints.load(dir.resolve("epoch-2.optimizer.safetensors"),
            List.of(), resumed);
        assertEquals("2", meta.get("epoch"));
        assertEquals(adam.steps(), resumed.steps());
        assertEquals(adam.learningRate(), resumed.learningRate());
        adam.state().forEach((k, v) -> assertArrayEquals(v.toArray(),
            resumed.state().get(k).toArray(), 0f, k));
      }
      assertFalse(Files.exists(dir.resolve("epoch-3.safetensors")));
    }
  }

  @Test
  void plainProgressWritesOneLinePerEpochAndOffWritesNothing() {
    float[][] x = TrainerFixtures.inputs(9);
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).build();
        PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8)) {
      trainer(net, sgd).epochs(2).progress(Trainer.Progress.LINES, out).build()
          .fit(TrainerFixtures.batches(x, 3, new int[1]));
      String[] lines = bytes.toString(StandardCharsets.UTF_8).split("\n");
      assertEquals(2, lines.length, bytes.toString(StandardCharsets.UTF_8));
      assertTrue(lines[0].matches("epoch 1/2: loss [0-9.e+-]+, lr 0\\.0100, 4 steps"), lines[0]);
      assertTrue(lines[1].startsWith("epoch 2/2: loss "), lines[1]);
      assertFalse(bytes.toString(StandardCharsets.UTF_8).contains("\r"));
      bytes.reset();
      trainer(net, sgd).progress(Trainer.Progress.OFF, out).build()
          .fit(TrainerFixtures.batches(x, 3, new int[1]));
      assertEquals(0, bytes.size());
    }
  }

  @Test
  void aLossThatIsNotARecordedScalarIsRefused() {
    float[][] x = TrainerFixtures.inputs(10);
    try (Net net = new Net(); Sgd sgd = Sgd.builder(net.parameters()).build()) {
      var e = assertThrows(IllegalStateException.class, () -> Trainer.<Net, Batch>builder(net,
          sgd, (m, b) -> m.forward(b.x())).progress(Trainer.Progress.OFF).build()
          .fit(TrainerFixtures.batches(x, 3, new int[1])));
      assertEquals("loss: expected a single-element tensor, got shape (16, 1) (reduce it, with a"
          + " mean, to a scalar)", e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> Trainer.<Net, Batch>builder(net,
          sgd, (m, b) -> TrainerFixtures.mse(m.forward(b.x()), b.y()).detach())
          .progress(Trainer.Progress.OFF).build().fit(TrainerFixtures.batches(x, 3, new int[1])));
      assertTrue(e.getMessage().startsWith("loss: it does not require a gradient"),
          e.getMessage());
    }
  }
}
