package org.seq4j;

/** The element type of a {@link Tensor}. Only 32-bit floats exist so far. */
public enum DType {
  /** IEEE 754 binary32. */
  F32(4);

  private final int byteSize;

  DType(int byteSize) {
    this.byteSize = byteSize;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }
}
