package org.seq4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.api.java.JavaRDD;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;
import org.seq4j.train.Adam;
import org.seq4j.train.Losses;
import org.seq4j.train.Optimizer;

/**
 * Data-parallel training: W workers at global batch B give what one process gives at batch B (the
 * same bits for W = 1; within rounding for W = 2, ring and allGather alike), the replicas stay
 * identical, a failed attempt is retried from the last checkpoint and ends where an uninterrupted
 * run ends, and data or a model that do not fit fail on the driver.
 */
class DataParallelTrainerTest {
  static final int C = 3;
  static final int H = 8;
  static final int T = 6;
  static final int B = 8;
  static final int STEPS = 6;
  static final ModelFactory FACTORY = () -> new Forecaster(C, H, 11);
  static final OptimizerFactory ADAM = ps -> Adam.builder(ps).learningRate(1e-2).build();
  /**
   * Two workers sum two shard gradients where one process sums one batch's: the roundings
   * differ by a few float32 ulps per step, and Adam's normalised steps (lr 1e-2) carry them into
   * the parameters over 6 steps.
   */
  static final float TWO_WORKERS = 2e-5f;

  /** A learnable target: the next value of a noisy sine, from T steps of 3 features. */
  static List<Example> examples(int count, long seed) {
    Random random = new Random(seed);
    List<Example> out = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      double phase = random.nextDouble() * 2 * Math.PI;
      float[] input = new float[T * C];
      for (int t = 0; t < T; t++) {
        input[t * C] = (float) Math.sin(phase + 0.3 * t);
        input[t * C + 1] = (float) Math.cos(phase + 0.3 * t);
        input[t * C + 2] = (float) (0.1 * random.nextGaussian());
      }
      out.add(new Example(input, new float[] {(float) Math.sin(phase + 0.3 * T)}));
    }
    return out;
  }

  /** The single-process reference: the same model, optimizer and batches, in this thread. */
  static List<float[]> reference(List<Example> data, int steps, List<Float> losses) {
    try (Forecaster model = (Forecaster) FACTORY.create();
        Optimizer adam = ADAM.create(model.parameters())) {
      for (int s = 0; s < steps; s++) {
        model.zeroGrad();
        List<float[]> inputs = new ArrayList<>();
        float[] targets = new float[B];
        for (int r = 0; r < B; r++) {
          Example e = data.get((s % (data.size() / B)) * B + r);
          inputs.add(e.input());
          targets[r] = e.target()[0];
        }
        try (Arena arena = Arena.ofConfined()) {
          Tensor prediction = model.forward(Sequences.timeMajor(arena, inputs, C, "batch"));
          Tensor gradient = Tensor.zeros(arena, B, 1);
          losses.add(Losses.meanSquaredError(prediction,
              Tensor.fromArray(arena, targets, B, 1), gradient));
          prediction.backward(gradient);
        }
        adam.step();
      }
      List<float[]> out = new ArrayList<>();
      for (Parameter p : model.parameters()) {
        out.add(p.data().toArray());
      }
      return out;
    }
  }

  static List<float[]> parameters(TrainingResult result) {
    try (Forecaster model = (Forecaster) FACTORY.create()) {
      result.loadInto(model);
      List<float[]> out = new ArrayList<>();
      for (Parameter p : model.parameters()) {
        out.add(p.data().toArray());
      }
      return out;
    }
  }

  static JavaRDD<Example> rdd(List<Example> data) {
    return TestSpark.context().parallelize(data, 2);
  }

  static DataParallelTrainer.Builder trainer(int workers) {
    return DataParallelTrainer.builder(FACTORY, ADAM, C).workers(workers).globalBatch(B);
  }

  static void report(String what, TrainingResult r) {
    System.out.printf("%s: W=%d, %d steps, per step %s ms, of which all-reduce %s ms%n", what,
        r.workers(), r.losses().size(), r.stepMillis(), r.allReduceMillis());
  }

  @Test
  void oneWorkerGivesTheSingleProcessBits() {
    List<Example> data = examples(STEPS * B, 1);
    List<Float> losses = new ArrayList<>();
    List<float[]> expected = reference(data, STEPS, losses);
    TrainingResult result = trainer(1).build().fit(TestSpark.context(), rdd(data));
    report("one worker", result);
    assertEquals(losses, result.losses());
    List<float[]> actual = parameters(result);
    for (int i = 0; i < expected.size(); i++) {
      assertArrayEquals(expected.get(i), actual.get(i), "parameter " + i);
    }
  }

  @Test
  void twoWorkersEqualOneProcessAtTheSameGlobalBatchRingAndAllGatherAlike() {
    List<Example> data = examples(3 * B, 2);
    List<Float> losses = new ArrayList<>();
    List<float[]> expected = reference(data, 2 * 3, losses);
    TrainingResult ring = trainer(2).epochs(2).build().fit(TestSpark.context(), rdd(data));
    report("ring", ring);
    TrainingResult gather = trainer(2).epochs(2).reduction(DataParallelTrainer.Reduction
        .ALL_GATHER).build().fit(TestSpark.context(), rdd(data));
    report("allGather", gather);
    assertEquals(2, ring.replicaHashes().size());
    assertEquals(ring.replicaHashes().get(0), ring.replicaHashes().get(1), "replicas differ");
    assertEquals(ring.replicaHashes(), gather.replicaHashes(),
        "with two workers, both reductions add the same two numbers");
    List<float[]> actual = parameters(ring);
    for (int i = 0; i < expected.size(); i++) {
      assertArrayEquals(expected.get(i), actual.get(i), TWO_WORKERS, "parameter " + i);
    }
    for (int s = 0; s < losses.size(); s++) {
      assertEquals(losses.get(s), ring.losses().get(s), 1e-5f * Math.abs(losses.get(s)),
          "loss of step " + s);
    }
    assertTrue(ring.losses().get(5) < ring.losses().get(0), "it learns: " + ring.losses());
  }

  @Test
  void aFailedAttemptIsRetriedFromTheCheckpointAndEndsAsTheUninterruptedRun(@TempDir Path dir)
      throws Exception {
    List<Example> data = examples(STEPS * B, 3);
    TrainingResult uninterrupted = trainer(2).build().fit(TestSpark.context(), rdd(data));
    // worker 1 dies before step 3 of the first attempt; rank 0 checkpointed after steps 2 and 4
    TrainingResult retried = trainer(2).checkpointDir(dir).checkpointEvery(2)
        .stepHook((rank, attempt, step) -> {
          if (rank == 1 && attempt == 0 && step == 3) {
            throw new IllegalStateException("injected failure");
          }
        }).build().fit(TestSpark.context(), rdd(data));
    assertEquals(1, retried.stageAttempt(), "the barrier stage was retried once");
    assertEquals(2, retried.firstStep(), "the retry resumed from the checkpoint of step 2");
    assertEquals(uninterrupted.replicaHashes(), retried.replicaHashes());
    assertArrayEquals(uninterrupted.weights(), retried.weights());
    assertEquals(uninterrupted.losses().subList(2, STEPS), retried.losses());
    assertTrue(Files.exists(dir.resolve("step-6.safetensors")), "the final checkpoint");

    List<Float> losses = new ArrayList<>();
    List<float[]> expected = reference(data, STEPS, losses);
    List<float[]> actual = parameters(retried);
    for (int i = 0; i < expected.size(); i++) {
      assertArrayEquals(expected.get(i), actual.get(i), TWO_WORKERS, "parameter " + i);
    }
  }

  @Test
  void dataThatDoesNotFitTheModelFailsOnTheDriver() {
    List<Example> wide = new ArrayList<>();
    for (Example e : examples(B, 4)) {
      wide.add(new Example(java.util.Arrays.copyOf(e.input(), T * (C + 1)), e.target()));
    }
    var e = assertThrows(IllegalArgumentException.class,
        () -> DataParallelTrainer.builder(FACTORY, ADAM, C + 1).workers(2).globalBatch(B)
            .build().fit(TestSpark.context(), rdd(wide)));
    assertTrue(e.getMessage().startsWith("the model does not accept the data (examples of 6"
        + " steps x 4 features): "), e.getMessage());

    List<Example> twoTargets = new ArrayList<>();
    for (Example x : examples(B, 5)) {
      twoTargets.add(new Example(x.input(), new float[2]));
    }
    e = assertThrows(IllegalArgumentException.class,
        () -> trainer(2).build().fit(TestSpark.context(), rdd(twoTargets)));
    assertEquals("data: the model gives 1 outputs per example but the first example has 2"
        + " targets", e.getMessage());

    e = assertThrows(IllegalArgumentException.class,
        () -> trainer(2).build().fit(TestSpark.context(), rdd(examples(B - 1, 6))));
    assertEquals("data: 7 examples are less than one global batch of 8", e.getMessage());

    e = assertThrows(IllegalArgumentException.class, () -> trainer(3).build());
    assertEquals("globalBatch: expected a multiple of workers (3) so that the shards are equal,"
        + " got 8", e.getMessage());

    e = assertThrows(IllegalArgumentException.class, () -> trainer(4).globalBatch(8).build()
        .fit(TestSpark.context(), rdd(examples(B, 7))));
    assertEquals("workers: 4 barrier tasks need as many free task slots, the cluster has 2"
        + " (spark.default.parallelism)", e.getMessage());
  }
}
