package org.seq4j.spark;

import java.io.Serializable;
import java.util.Objects;

/**
 * One training example: a sequence of T steps by C features, flattened step by step ({@code
 * input[t * C + c]}), and the K target values the model's forward should give for it.
 *
 * @param input {@code T * C} floats
 * @param target {@code K} floats
 */
public record Example(float[] input, float[] target) implements Serializable {
  /** Checks that neither array is null or empty. */
  public Example {
    Objects.requireNonNull(input, "input");
    Objects.requireNonNull(target, "target");
    if (input.length == 0 || target.length == 0) {
      throw new IllegalArgumentException("input and target: expected non-empty, got "
          + input.length + " and " + target.length + " floats");
    }
  }
}
