package org.seq4j.spark;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.SparkException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Module;

/**
 * Distributed inference: the scorer gives, bit for bit, what one process gives on the same
 * batches; a model or data that do not fit, or a destroyed broadcast, fail on the driver.
 */
class SequenceScorerTest {
  static final int C = 3;
  static final int H = 8;
  static final int T = 7;
  static final int BATCH = 8;
  static final StructType SCHEMA = new StructType()
      .add("id", DataTypes.LongType, false)
      .add("sequence", Sequences.sequenceType(), false);

  static Forecaster trained;
  static SparkModel model;

  @BeforeAll
  static void broadcast() {
    trained = new Forecaster(C, H, 7);
    model = SparkModel.broadcast(TestSpark.context(), () -> new Forecaster(C, H, 99), trained);
  }

  @AfterAll
  static void close() {
    model.destroy();
    trained.close();
  }

  static List<Row> rows(int count, int steps, int features, long seed) {
    Random random = new Random(seed);
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      // Spark's external types for array<array<float>>: an array (or Scala Seq) of float[]
      float[][] sequence = new float[steps][features];
      for (int t = 0; t < steps; t++) {
        for (int c = 0; c < features; c++) {
          sequence[t][c] = (float) random.nextGaussian();
        }
      }
      rows.add(RowFactory.create((long) i, sequence));
    }
    return rows;
  }

  static Dataset<Row> frame(List<Row> rows, int partitions) {
    JavaRDD<Row> rdd = TestSpark.context().parallelize(rows, partitions);
    return TestSpark.session().createDataFrame(rdd, SCHEMA);
  }

  /** The single-process run: the same module weights, the same batches, under noGrad. */
  static float[][] local(Module module, List<Row> rows) {
    float[][] out = new float[rows.size()][];
    try (var off = Autograd.noGrad()) {
      for (int from = 0; from < rows.size(); from += BATCH) {
        List<float[]> batch = new ArrayList<>();
        for (int r = from; r < Math.min(rows.size(), from + BATCH); r++) {
          batch.add(Sequences.flatten(rows.get(r).get(1), C, "row " + r));
        }
        try (Arena arena = Arena.ofConfined()) {
          Tensor x = Sequences.timeMajor(arena, batch, C, "batch");
          float[][] y = Sequences.perRow(((Forecaster) module).forward(x), batch.size());
          System.arraycopy(y, 0, out, from, y.length);
        }
      }
    }
    return out;
  }

  @Test
  void scoresBitForBitAsOneProcessOnTheSameBatches() {
    List<Row> rows = rows(45, T, C, 1);
    Dataset<Row> frame = frame(rows, 2);
    List<Row> scored = new SequenceScorer(model, C).setBatchSize(BATCH).transform(frame)
        .collectAsList();
    assertEquals(rows.size(), scored.size());
    assertEquals(List.of("id", "sequence", "prediction"), List.of(
        new SequenceScorer(model, C).transformSchema(SCHEMA).fieldNames()));

    // parallelize cuts the list into contiguous slices: each partition's batches are those of a
    // single-process run over its slice
    List<List<Row>> partitions = TestSpark.context().parallelize(rows, 2).glom().collect();
    assertEquals(2, partitions.size());
    List<float[]> expected = new ArrayList<>();
    trained.eval();
    for (List<Row> partition : partitions) {
      for (float[] y : local(trained, partition)) {
        expected.add(y);
      }
    }
    for (int i = 0; i < rows.size(); i++) {
      Row row = scored.get(i);
      assertEquals((long) i, row.getLong(0));
      assertArrayEquals(expected.get(i), floats(row.getList(2)), "row " + i);
    }
    assertTrue(SparkModel.cachedModules() >= 1, "the executor's module is cached");
  }

  static float[] floats(List<Object> list) {
    float[] out = new float[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ((Number) list.get(i)).floatValue();
    }
    return out;
  }

  @Test
  void dataOfAnotherFeatureSizeFailsOnTheDriver() {
    Dataset<Row> frame = frame(rows(10, T, C + 1, 2), 2);
    var e = assertThrows(IllegalArgumentException.class,
        () -> new SequenceScorer(model, C).transform(frame));
    assertEquals("the model takes 3 features per step but column sequence has rows of 4",
        e.getMessage());
  }

  @Test
  void aModelOfAnotherInputSizeFailsOnTheDriver() {
    // the scorer is told 4 features, and the data has 4, but the LSTM takes 3
    Dataset<Row> frame = frame(rows(10, T, C + 1, 2), 2);
    var e = assertThrows(IllegalArgumentException.class,
        () -> new SequenceScorer(model, C + 1).transform(frame));
    assertTrue(e.getMessage().startsWith("the model does not accept column sequence (rows of 7"
        + " steps x 4 features): "), e.getMessage());
  }

  @Test
  void weightsOfAnotherArchitectureFailOnTheDriver() {
    try (Forecaster wider = new Forecaster(C, H + 1, 7)) {
      var e = assertThrows(IllegalArgumentException.class, () -> SparkModel.broadcast(
          TestSpark.context(), () -> new Forecaster(C, H, 1), wider));
      assertTrue(e.getMessage().contains("size mismatch for lstm.weight_ih_l0"), e.getMessage());
    }
  }

  @Test
  void aDestroyedBroadcastFailsOnTheDriver() {
    SparkModel gone = SparkModel.broadcast(TestSpark.context(), () -> new Forecaster(C, H, 1),
        trained);
    gone.destroy();
    Dataset<Row> frame = frame(rows(4, T, C, 3), 2);
    var e = assertThrows(IllegalStateException.class,
        () -> new SequenceScorer(gone, C).transform(frame));
    assertEquals("the model's weights (broadcast " + gone.weights().id() + ") were destroyed;"
        + " broadcast the model again with SparkModel.broadcast", e.getMessage());
  }

  @Test
  void aBadRowFailsTheJobWithTheRowNamed() {
    List<Row> rows = new ArrayList<>(rows(6, T, C, 4));
    rows.set(5, rows(1, T, C - 1, 5).get(0));  // the driver checks the first row only
    Dataset<Row> frame = frame(rows, 2);
    var e = assertThrows(SparkException.class,
        () -> new SequenceScorer(model, C).transform(frame).collectAsList());
    assertTrue(e.getMessage().contains("partition 1, row 2: step 0 has 2 features, the model"
        + " expects 3"), e.getMessage());
  }
}
