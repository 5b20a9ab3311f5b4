package org.seq4j.spark;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.Objects;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.ml.Transformer;
import org.apache.spark.ml.param.ParamMap;
import org.apache.spark.ml.util.Identifiable$;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.seq4j.Autograd;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Module;

/**
 * A Spark ML transformer that scores a column of sequences with a seq4j model: each row's cell,
 * {@code array<array<float>>} (or of doubles) of T steps by C features, goes through the model's
 * forward and its output row ({@code K} floats) is appended as {@code array<float>}.
 *
 * <p>Each task takes its partition's rows in order, {@link #setBatchSize batchSize} at a time
 * (rows of one batch must have one length), packs them into one off-heap time-major batch {@code
 * (T, N, C)} in a confined arena that is closed before the batch's rows are emitted, and runs
 * the JVM's shared module (see {@link SparkModel}) under {@link Autograd#noGrad()}. The task sets
 * seq4j's threads to its {@code spark.task.cpus}, so tasks together use the executor's cores and
 * no more. Results are bit for bit those of a single-process run on the same batches with the
 * same thread count (a batch's composition can change the rounding, as in any BLAS).
 *
 * <p>Checked on the driver before any task starts: the broadcast still exists, the column exists
 * and has a sequence type, and the model accepts the first row (its feature count).
 */
public final class SequenceScorer extends Transformer {
  private static final long serialVersionUID = 1L;

  private final String uid;
  private final SparkModel model;
  private final long features;
  private String inputCol = "sequence";
  private String outputCol = "prediction";
  private int batchSize = 64;

  /**
   * A scorer of {@code model}, whose forward takes {@code features} features per step.
   */
  public SequenceScorer(SparkModel model, long features) {
    this(Identifiable$.MODULE$.randomUID("seq4jScorer"), model, features);
  }

  private SequenceScorer(String uid, SparkModel model, long features) {
    this.uid = uid;
    this.model = Objects.requireNonNull(model, "model");
    if (features < 1) {
      throw new IllegalArgumentException("features: expected >= 1, got " + features);
    }
    this.features = features;
  }

  /** The column of sequences (default {@code sequence}). */
  public SequenceScorer setInputCol(String name) {
    this.inputCol = Objects.requireNonNull(name, "name");
    return this;
  }

  /** The column of outputs to add (default {@code prediction}). */
  public SequenceScorer setOutputCol(String name) {
    this.outputCol = Objects.requireNonNull(name, "name");
    return this;
  }

  /** Rows per forward (default 64). */
  public SequenceScorer setBatchSize(int rows) {
    if (rows < 1) {
      throw new IllegalArgumentException("batchSize: expected >= 1, got " + rows);
    }
    this.batchSize = rows;
    return this;
  }

  @Override
  public String uid() {
    return uid;
  }

  @Override
  public StructType transformSchema(StructType schema) {
    if (!Arrays.asList(schema.fieldNames()).contains(inputCol)) {
      throw new IllegalArgumentException("inputCol: no column " + inputCol + " in "
          + schema.simpleString());
    }
    StructField field = schema.apply(inputCol);
    if (!Sequences.isSequenceColumn(field.dataType())) {
      throw new IllegalArgumentException("inputCol: column " + inputCol + " must be"
          + " array<array<float>> (or of doubles): T steps of C features; it is "
          + field.dataType().simpleString());
    }
    if (Arrays.asList(schema.fieldNames()).contains(outputCol)) {
      throw new IllegalArgumentException("outputCol: the column " + outputCol
          + " already exists");
    }
    return schema.add(outputCol, DataTypes.createArrayType(DataTypes.FloatType, false), false);
  }

  @Override
  public Dataset<Row> transform(Dataset<?> dataset) {
    model.requireUsable();
    StructType out = transformSchema(dataset.schema());
    Dataset<Row> rows = dataset.toDF();
    checkFirstRow(rows);
    int column = rows.schema().fieldIndex(inputCol);
    return rows.mapPartitions(new ScorePartition(model, features, column, batchSize),
        Encoders.row(out));
  }

  /** Runs the model on the driver on the first row, so that a model that does not fit fails here. */
  private void checkFirstRow(Dataset<Row> rows) {
    List<Row> first = rows.select(inputCol).limit(1).collectAsList();
    if (first.isEmpty()) {
      return;
    }
    Object cell = first.get(0).get(0);
    long found = Sequences.featuresOf(cell);
    if (found != features) {
      throw new IllegalArgumentException("the model takes " + features + " features per step"
          + " but column " + inputCol + " has rows of " + found);
    }
    float[] row = Sequences.flatten(cell, features, "column " + inputCol + ", first row");
    try (Module probe = model.newModule(java.nio.file.Path.of(System.getProperty(
            "java.io.tmpdir")));
        var off = Autograd.noGrad(); Arena arena = Arena.ofConfined()) {
      probe.eval();
      Tensor x = Sequences.timeMajor(arena, List.of(row), features, "first row");
      Sequences.perRow(((Layer) probe).forward(x), 1);
    } catch (IllegalArgumentException | IllegalStateException e) {
      throw new IllegalArgumentException("the model does not accept column " + inputCol
          + " (rows of " + row.length / features + " steps x " + features + " features): "
          + e.getMessage(), e);
    }
  }

  @Override
  public SequenceScorer copy(ParamMap extra) {
    return new SequenceScorer(uid, model, features).setInputCol(inputCol).setOutputCol(outputCol)
        .setBatchSize(batchSize);
  }

  /** The task's work: batches of its partition's rows through the JVM's shared module. */
  private static final class ScorePartition implements MapPartitionsFunction<Row, Row> {
    private static final long serialVersionUID = 1L;
    private final SparkModel model;
    private final long features;
    private final int column;
    private final int batchSize;

    ScorePartition(SparkModel model, long features, int column, int batchSize) {
      this.model = model;
      this.features = features;
      this.column = column;
      this.batchSize = batchSize;
    }

    @Override
    public Iterator<Row> call(Iterator<Row> input) {
      TaskContext task = TaskContext.get();
      if (task != null) {
        Seq4j.setThreads(Math.max(1, task.cpus()));
      }
      Layer forward = (Layer) model.module();
      int partition = task == null ? 0 : task.partitionId();
      return new Iterator<>() {
        private final List<Row> pending = new ArrayList<>();
        private int next;
        private long done;

        @Override
        public boolean hasNext() {
          return next < pending.size() || input.hasNext();
        }

        @Override
        public Row next() {
          if (next == pending.size()) {
            fill();
          }
          return pending.get(next++);
        }

        private void fill() {
          pending.clear();
          next = 0;
          List<Row> in = new ArrayList<>(batchSize);
          List<float[]> cells = new ArrayList<>(batchSize);
          while (in.size() < batchSize && input.hasNext()) {
            Row row = input.next();
            cells.add(Sequences.flatten(row.get(column), features,
                "partition " + partition + ", row " + (done + in.size())));
            in.add(row);
          }
          if (in.isEmpty()) {
            throw new NoSuchElementException();
          }
          float[][] outputs;
          try (var off = Autograd.noGrad(); Arena arena = Arena.ofConfined()) {
            Tensor x = Sequences.timeMajor(arena, cells, features,
                "partition " + partition + ", rows " + done + "..");
            outputs = Sequences.perRow(forward.forward(x), in.size());
          }
          for (int r = 0; r < in.size(); r++) {
            Row row = in.get(r);
            Object[] values = new Object[row.length() + 1];
            for (int i = 0; i < row.length(); i++) {
              values[i] = row.get(i);
            }
            values[row.length()] = outputs[r];
            pending.add(RowFactory.create(values));
          }
          done += in.size();
        }
      };
    }
  }
}
