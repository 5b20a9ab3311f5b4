package org.seq4j.reference;

import java.lang.foreign.Arena;
import org.seq4j.Tensor;

/** Moving values between float32 tensors and the float64 arrays of the references, and comparing. */
public final class Arrays64 {
  private Arrays64() {}

  /** The tensor's values, exactly, as doubles. */
  public static double[] doubles(Tensor t) {
    float[] values = t.toArray();
    double[] out = new double[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = values[i];
    }
    return out;
  }

  /** A tensor holding the values rounded to float. */
  public static Tensor tensor(Arena arena, double[] values, long... dims) {
    float[] floats = new float[values.length];
    for (int i = 0; i < values.length; i++) {
      floats[i] = (float) values[i];
    }
    return Tensor.fromArray(arena, floats, dims);
  }

  /**
   * Fails unless every |expected − actual| ≤ tolerance · max(1, |expected|), naming the first
   * element that is not.
   */
  public static void assertClose(double[] expected, double[] actual, double tolerance,
      String what) {
    if (expected.length != actual.length) {
      throw new AssertionError(what + ": expected " + expected.length + " values, got "
          + actual.length);
    }
    for (int i = 0; i < expected.length; i++) {
      double allowed = tolerance * Math.max(1, Math.abs(expected[i]));
      if (!(Math.abs(expected[i] - actual[i]) <= allowed)) {
        throw new AssertionError(what + "[" + i + "]: expected " + expected[i] + ", got "
            + actual[i] + " (tolerance " + allowed + ")");
      }
    }
  }
}
