package org.seq4j;

import java.util.Arrays;

/**
 * The dimensions of a dense row-major {@link Tensor}: an immutable list of non-negative sizes.
 * The last dimension varies fastest. A shape of rank 0 has one element (a scalar).
 */
public final class Shape {
  private final long[] dims;
  private final long size;

  private Shape(long[] dims) {
    this.dims = dims;
    long product = 1;
    for (int i = 0; i < dims.length; i++) {
      if (dims[i] < 0) {
        throw new IllegalArgumentException(
            "shape: dimension " + i + " must be >= 0, got " + dims[i] + " in " + format(dims));
      }
      try {
        product = Math.multiplyExact(product, dims[i]);
      } catch (ArithmeticException overflow) {
        throw new IllegalArgumentException(
            "shape: " + format(dims) + " has more than " + Long.MAX_VALUE + " elements", overflow);
      }
    }
    this.size = product;
  }

  /**
   * A shape with the given dimensions.
   *
   * @throws IllegalArgumentException if a dimension is negative or the size overflows a long
   */
  public static Shape of(long... dims) {
    return new Shape(dims.clone());
  }

  /** The number of dimensions. */
  public int rank() {
    return dims.length;
  }

  /** The size of dimension {@code axis}; negative axes count from the end. */
  public long dim(int axis) {
    int resolved = axis < 0 ? axis + dims.length : axis;
    if (resolved < 0 || resolved >= dims.length) {
      throw new IndexOutOfBoundsException(
          "axis: expected -" + dims.length + " <= axis < " + dims.length + ", got " + axis);
    }
    return dims[resolved];
  }

  /** A copy of the dimensions. */
  public long[] dims() {
    return dims.clone();
  }

  /** The number of elements: the product of the dimensions. */
  public long size() {
    return size;
  }

  /** Row-major offset (in elements) of an index with one coordinate per dimension. */
  long offsetOf(long... index) {
    if (index.length != dims.length) {
      throw new IllegalArgumentException(
          "index: expected " + dims.length + " coordinates for shape " + this + ", got "
              + index.length);
    }
    long offset = 0;
    for (int i = 0; i < dims.length; i++) {
      if (index[i] < 0 || index[i] >= dims[i]) {
        throw new IndexOutOfBoundsException(
            "index: coordinate " + i + " must be in [0, " + dims[i] + "), got " + index[i]
                + " for shape " + this);
      }
      offset = offset * dims[i] + index[i];
    }
    return offset;
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Shape shape && Arrays.equals(dims, shape.dims);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(dims);
  }

  /** Formats as {@code (2, 3, 4)}. */
  @Override
  public String toString() {
    return format(dims);
  }

  private static String format(long[] dims) {
    StringBuilder text = new StringBuilder("(");
    for (int i = 0; i < dims.length; i++) {
      text.append(i == 0 ? "" : ", ").append(dims[i]);
    }
    return text.append(dims.length == 1 ? ",)" : ")").toString();
  }
}
