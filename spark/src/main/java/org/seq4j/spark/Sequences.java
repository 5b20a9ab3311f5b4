package org.seq4j.spark;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.seq4j.Tensor;

/** Sequences as Spark cells and as time-major batch tensors. */
final class Sequences {
  private Sequences() {}

  /** Whether {@code type} is a column of sequences: {@code array<array<float|double>>}. */
  static boolean isSequenceColumn(DataType type) {
    return type instanceof ArrayType outer && outer.elementType() instanceof ArrayType inner
        && (inner.elementType() instanceof FloatType || inner.elementType() instanceof DoubleType);
  }

  /** The Spark type of a column of sequences of floats. */
  static DataType sequenceType() {
    return DataTypes.createArrayType(DataTypes.createArrayType(DataTypes.FloatType, false), false);
  }

  /**
   * A cell of a sequence column (T steps of C features) flattened to {@code T * C} floats, step
   * by step.
   *
   * @param features the expected C
   * @param where names the row in the error message
   */
  static float[] flatten(Object cell, long features, String where) {
    if (cell == null) {
      throw new IllegalArgumentException(where + ": the sequence is null");
    }
    List<?> steps = asList(cell);
    if (steps.isEmpty()) {
      throw new IllegalArgumentException(where + ": the sequence has no steps");
    }
    float[] out = new float[Math.toIntExact(steps.size() * features)];
    int k = 0;
    for (int t = 0; t < steps.size(); t++) {
      Object step = steps.get(t);
      List<?> values = step == null ? List.of() : asList(step);
      if (values.size() != features) {
        throw new IllegalArgumentException(where + ": step " + t + " has " + values.size()
            + " features, the model expects " + features);
      }
      for (Object v : values) {
        if (v == null) {
          throw new IllegalArgumentException(where + ": step " + t + " has a null feature");
        }
        out[k++] = ((Number) v).floatValue();
      }
    }
    return out;
  }

  /** The number of features of the first step of a cell (-1 when it has none). */
  static long featuresOf(Object cell) {
    if (cell == null) {
      return -1;
    }
    List<?> steps = asList(cell);
    return steps.isEmpty() || steps.get(0) == null ? -1 : asList(steps.get(0)).size();
  }

  private static List<?> asList(Object seq) {
    if (seq instanceof List<?> list) {
      return list;
    }
    if (seq instanceof scala.collection.Seq<?> s) {
      return scala.jdk.javaapi.CollectionConverters.asJava(s);
    }
    if (seq instanceof Object[] array) {
      return java.util.Arrays.asList(array);
    }
    if (seq instanceof double[] d) {
      Double[] boxed = new Double[d.length];
      for (int i = 0; i < d.length; i++) {
        boxed[i] = d[i];
      }
      return List.of(boxed);
    }
    if (seq instanceof float[] f) {
      Float[] boxed = new Float[f.length];
      for (int i = 0; i < f.length; i++) {
        boxed[i] = f[i];
      }
      return List.of(boxed);
    }
    throw new IllegalArgumentException("not a sequence: " + seq.getClass().getName());
  }

  /**
   * The rows (each {@code T * C} floats, step-major) as one time-major batch {@code (T, N, C)} in
   * {@code arena}.
   *
   * @throws IllegalArgumentException when the rows have different lengths
   */
  static Tensor timeMajor(Arena arena, List<float[]> rows, long features, String where) {
    int n = rows.size();
    long steps = rows.get(0).length / features;
    Tensor batch = Tensor.uninitialized(arena, steps, n, features);
    MemorySegment out = batch.segment();
    for (int r = 0; r < n; r++) {
      float[] row = rows.get(r);
      if (row.length != steps * features) {
        throw new IllegalArgumentException(where + ": row " + r + " of the batch has "
            + row.length / features + " steps, row 0 has " + steps
            + "; rows of one batch must have one length");
      }
      for (long t = 0; t < steps; t++) {
        MemorySegment.copy(row, (int) (t * features), out, ValueLayout.JAVA_FLOAT,
            ((t * n + r) * features) * Float.BYTES, (int) features);
      }
    }
    batch.markChanged();
    return batch;
  }

  /**
   * The forward's output for a batch of {@code n} rows as one float array per row.
   *
   * @throws IllegalStateException when the output is not {@code (N, K)} or {@code (1, N, K)}
   */
  static float[][] perRow(Tensor output, int n) {
    long rows = output.shape().rank() >= 2 && output.dim(0) == 1 && output.dim(1) == n
        && output.shape().rank() == 3 ? output.dim(1) : output.dim(0);
    if (rows != n || output.size() % n != 0) {
      throw new IllegalStateException("the model's forward returned " + output.shape()
          + " for a batch of " + n + " rows; expected (N, K) or (1, N, K) with N = " + n);
    }
    int k = (int) (output.size() / n);
    float[] all = output.toArray();
    float[][] out = new float[n][];
    for (int r = 0; r < n; r++) {
      out[r] = java.util.Arrays.copyOfRange(all, r * k, (r + 1) * k);
    }
    return out;
  }
}
