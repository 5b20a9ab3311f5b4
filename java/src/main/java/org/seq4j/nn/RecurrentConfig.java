package org.seq4j.nn;

import org.seq4j.Backend;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.Checks;

/** The sizes and options of a recurrent network, checked when built. */
record RecurrentConfig(Cell cell, long inputSize, long hiddenSize, int numLayers,
    boolean bidirectional, boolean bias, boolean peephole, long projSize, float dropout,
    boolean batchFirst, long seed, Backend backend, StepWeights stepWeights) {

  /** The cell kinds, with their {@code SEQ4J_CELL_*} code and number of gates. */
  enum Cell {
    RNN_TANH(AbiConstants.CELL_RNN_TANH, 1),
    RNN_RELU(AbiConstants.CELL_RNN_RELU, 1),
    LSTM(AbiConstants.CELL_LSTM, 4),
    GRU(AbiConstants.CELL_GRU, 3);

    final int code;
    final int gates;

    Cell(int code, int gates) {
      this.code = code;
      this.gates = gates;
    }
  }

  RecurrentConfig {
    requirePositive("inputSize", inputSize);
    requirePositive("hiddenSize", hiddenSize);
    requirePositive("numLayers", numLayers);
    if (projSize < 0 || (projSize > 0 && projSize >= hiddenSize)) {
      throw new IllegalArgumentException(
          "projSize: expected 0 (none) or 0 < projSize < hiddenSize = " + hiddenSize
              + ", got " + projSize);
    }
    if (!(dropout >= 0f && dropout < 1f)) {
      throw new IllegalArgumentException("dropout: expected 0 <= p < 1, got " + dropout);
    }
    checkSizes(cell, inputSize, hiddenSize, numLayers, bidirectional, projSize);
  }

  /**
   * Checked arithmetic on every size derived from the builder's (gate rows {@code gates * H},
   * output width {@code D * Hout}, states {@code numLayers * D}, and the bytes of the largest
   * weight), so that a huge {@code hiddenSize} is an exception naming it rather than a size that
   * wrapped around.
   */
  private static void checkSizes(Cell cell, long inputSize, long hiddenSize, int numLayers,
      boolean bidirectional, long projSize) {
    String what = "(inputSize=" + inputSize + ", hiddenSize=" + hiddenSize
        + (projSize > 0 ? ", projSize=" + projSize : "") + ", numLayers=" + numLayers
        + (bidirectional ? ", bidirectional" : "") + ")";
    int directions = bidirectional ? 2 : 1;
    long outputSize = projSize > 0 ? projSize : hiddenSize;
    long gateRows = Checks.multiply(cell.gates, hiddenSize, "hiddenSize", what);
    long width = Checks.multiply(directions, outputSize, "hiddenSize", what);
    Checks.multiply(numLayers, directions, "numLayers", what);
    long widestInput = Math.max(Math.max(inputSize, width), outputSize);
    String blamed = inputSize > width ? "inputSize, hiddenSize" : "hiddenSize";
    long weightElements = Checks.multiply(gateRows, widestInput, blamed, what);
    Checks.multiply(weightElements, Float.BYTES, blamed, what);
  }

  static void requirePositive(String name, long value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + ": expected >= 1, got " + value);
    }
  }

  /** 2 when bidirectional, else 1. */
  int directions() {
    return bidirectional ? 2 : 1;
  }

  /** Hout: the projection size of an LSTM with projection, else the hidden size. */
  long outputSize() {
    return projSize > 0 ? projSize : hiddenSize;
  }

  /** The features of one step of all directions' output: {@code D * Hout}. */
  long outputWidth() {
    return directions() * outputSize();
  }

  /** The features layer {@code layer} reads per step. */
  long layerInputSize(int layer) {
    return layer == 0 ? inputSize : outputWidth();
  }

  /** Whether there is a cell state (LSTM). */
  boolean hasCell() {
    return cell == Cell.LSTM;
  }

  /** {@code numLayers * D}: the first dimension of every state. */
  long states() {
    return (long) numLayers * directions();
  }

  /** A PyTorch-like description, {@code Lstm(200, 200, numLayers=2, ...)}. */
  String describe(String typeName) {
    StringBuilder text = new StringBuilder(typeName).append("(").append(inputSize)
        .append(", ").append(hiddenSize);
    if (numLayers > 1) {
      text.append(", numLayers=").append(numLayers);
    }
    if (bidirectional) {
      text.append(", bidirectional");
    }
    if (projSize > 0) {
      text.append(", projSize=").append(projSize);
    }
    if (peephole) {
      text.append(", peepholes");
    }
    if (!bias) {
      text.append(", bias=false");
    }
    if (dropout > 0) {
      text.append(", dropout=").append(dropout);
    }
    if (batchFirst) {
      text.append(", batchFirst");
    }
    return text.append(")").toString();
  }
}
