package org.seq4j.reference;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Float64 reference of PyTorch's {@code nn.RNN}, {@code nn.LSTM} (plus Greff et al.'s peepholes
 * and PyTorch's projection) and {@code nn.GRU}, written from the equations, loop by loop. Shares
 * no code with the kernels. Time-major, row-major flat arrays:
 *
 * <ul>
 *   <li>x {@code (T, N, I)}; output {@code (T, N, D*Hout)}, forward direction first;
 *   <li>h0, hn {@code (L*D, N, Hout)} and c0, cn {@code (L*D, N, H)}, index {@code layer*D + dir};
 *   <li>lengths (optional): PyTorch packed-sequence semantics, outputs past the end are zero, the
 *       backward direction starts at each sample's own last step.
 * </ul>
 */
public final class RecurrentReference {
  private RecurrentReference() {}

  /** The cell kinds. */
  public enum Cell {
    RNN_TANH(1),
    RNN_RELU(1),
    LSTM(4),
    GRU(3);

    final int gates;

    Cell(int gates) {
      this.gates = gates;
    }
  }

  /** Sizes and options, as PyTorch's constructor arguments. */
  public record Config(Cell cell, int inputSize, int hiddenSize, int numLayers,
      boolean bidirectional, boolean bias, boolean peephole, int projSize) {
    /** 2 when bidirectional, else 1. */
    public int directions() {
      return bidirectional ? 2 : 1;
    }

    /** Hout: the projection size when there is one, else the hidden size. */
    public int outputSize() {
      return projSize > 0 ? projSize : hiddenSize;
    }

    int layerInput(int layer) {
      return layer == 0 ? inputSize : directions() * outputSize();
    }
  }

  /** The outputs of a forward pass; cn is null unless LSTM. */
  public record Result(double[] output, double[] hn, double[] cn) {}

  /** Every parameter's PyTorch name and shape, in PyTorch's order, peepholes last. */
  public static LinkedHashMap<String, int[]> parameterShapes(Config c) {
    LinkedHashMap<String, int[]> shapes = new LinkedHashMap<>();
    int rows = c.cell().gates * c.hiddenSize();
    for (int layer = 0; layer < c.numLayers(); layer++) {
      for (int dir = 0; dir < c.directions(); dir++) {
        String suffix = "_l" + layer + (dir == 1 ? "_reverse" : "");
        shapes.put("weight_ih" + suffix, new int[] {rows, c.layerInput(layer)});
        shapes.put("weight_hh" + suffix, new int[] {rows, c.outputSize()});
        if (c.bias()) {
          shapes.put("bias_ih" + suffix, new int[] {rows});
          shapes.put("bias_hh" + suffix, new int[] {rows});
        }
        if (c.projSize() > 0) {
          shapes.put("weight_hr" + suffix, new int[] {c.projSize(), c.hiddenSize()});
        }
        if (c.peephole()) {
          shapes.put("weight_ci" + suffix, new int[] {c.hiddenSize()});
          shapes.put("weight_cf" + suffix, new int[] {c.hiddenSize()});
          shapes.put("weight_co" + suffix, new int[] {c.hiddenSize()});
        }
      }
    }
    return shapes;
  }

  private static double sigmoid(double v) {
    return 1 / (1 + Math.exp(-v));
  }

  /** Σ_j W[row, j] v[j] for a row-major W with {@code columns} columns. */
  private static double dot(double[] w, int row, int columns, double[] v, int offset) {
    double sum = 0;
    for (int j = 0; j < columns; j++) {
      sum += w[row * columns + j] * v[offset + j];
    }
    return sum;
  }

  /**
   * The forward pass.
   *
   * @param params every parameter by name (see {@link #parameterShapes})
   * @param h0 initial hidden states or null for zeros
   * @param c0 initial cell states (LSTM) or null for zeros
   * @param lengths per-sample lengths in [1, T] or null
   */
  public static Result forward(Config c, Map<String, double[]> params, double[] x, int steps,
      int batch, double[] h0, double[] c0, int[] lengths) {
    int d = c.directions();
    int h = c.hiddenSize();
    int hout = c.outputSize();
    boolean lstm = c.cell() == Cell.LSTM;
    double[] hn = new double[c.numLayers() * d * batch * hout];
    double[] cn = lstm ? new double[c.numLayers() * d * batch * h] : null;
    double[] layerInput = x;
    int inputWidth = c.inputSize();
    double[] layerOutput = null;
    for (int layer = 0; layer < c.numLayers(); layer++) {
      layerOutput = new double[steps * batch * d * hout];
      for (int dir = 0; dir < d; dir++) {
        String suffix = "_l" + layer + (dir == 1 ? "_reverse" : "");
        int state = layer * d + dir;
        for (int n = 0; n < batch; n++) {
          int length = lengths == null ? steps : lengths[n];
          double[] hidden = new double[hout];
          double[] cell = new double[h];
          if (h0 != null) {
            System.arraycopy(h0, (state * batch + n) * hout, hidden, 0, hout);
          }
          if (lstm && c0 != null) {
            System.arraycopy(c0, (state * batch + n) * h, cell, 0, h);
          }
          for (int k = 0; k < length; k++) {
            int t = dir == 0 ? k : length - 1 - k;
            int xOffset = (t * batch + n) * inputWidth;
            double[][] next = step(c, params, suffix, layerInput, xOffset, inputWidth, hidden,
                cell);
            hidden = next[0];
            cell = next[1];
            System.arraycopy(hidden, 0, layerOutput, (t * batch + n) * d * hout + dir * hout,
                hout);
          }
          System.arraycopy(hidden, 0, hn, (state * batch + n) * hout, hout);
          if (lstm) {
            System.arraycopy(cell, 0, cn, (state * batch + n) * h, h);
          }
        }
      }
      layerInput = layerOutput;
      inputWidth = d * hout;
    }
    return new Result(layerOutput, hn, cn);
  }

  /** One step of one direction: returns {new hidden, new cell}. */
  private static double[][] step(Config c, Map<String, double[]> p, String suffix, double[] x,
      int xOffset, int inputWidth, double[] hidden, double[] cell) {
    int h = c.hiddenSize();
    int hout = c.outputSize();
    double[] wih = p.get("weight_ih" + suffix);
    double[] whh = p.get("weight_hh" + suffix);
    double[] bih = c.bias() ? p.get("bias_ih" + suffix) : new double[c.cell().gates * h];
    double[] bhh = c.bias() ? p.get("bias_hh" + suffix) : new double[c.cell().gates * h];
    // input part and recurrent part of every gate row, kept apart for the GRU
    double[] fromInput = new double[c.cell().gates * h];
    double[] fromHidden = new double[c.cell().gates * h];
    for (int row = 0; row < c.cell().gates * h; row++) {
      fromInput[row] = dot(wih, row, inputWidth, x, xOffset) + bih[row];
      fromHidden[row] = dot(whh, row, hout, hidden, 0) + bhh[row];
    }
    switch (c.cell()) {
      case RNN_TANH, RNN_RELU -> {
        double[] next = new double[h];
        for (int j = 0; j < h; j++) {
          double a = fromInput[j] + fromHidden[j];
          next[j] = c.cell() == Cell.RNN_TANH ? Math.tanh(a) : Math.max(0, a);
        }
        return new double[][] {next, cell};
      }
      case GRU -> {
        // r = σ(.), z = σ(.), n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)), h' = (1−z) n + z h
        double[] next = new double[h];
        for (int j = 0; j < h; j++) {
          double r = sigmoid(fromInput[j] + fromHidden[j]);
          double z = sigmoid(fromInput[h + j] + fromHidden[h + j]);
          double n = Math.tanh(fromInput[2 * h + j] + r * fromHidden[2 * h + j]);
          next[j] = (1 - z) * n + z * hidden[j];
        }
        return new double[][] {next, cell};
      }
      case LSTM -> {
        double[] wci = c.peephole() ? p.get("weight_ci" + suffix) : null;
        double[] wcf = c.peephole() ? p.get("weight_cf" + suffix) : null;
        double[] wco = c.peephole() ? p.get("weight_co" + suffix) : null;
        double[] newCell = new double[h];
        double[] unprojected = new double[h];
        for (int j = 0; j < h; j++) {
          // i, f see the old cell; o sees the new one (Greff et al.)
          double i = sigmoid(fromInput[j] + fromHidden[j] + (wci == null ? 0 : wci[j] * cell[j]));
          double f = sigmoid(fromInput[h + j] + fromHidden[h + j]
              + (wcf == null ? 0 : wcf[j] * cell[j]));
          double g = Math.tanh(fromInput[2 * h + j] + fromHidden[2 * h + j]);
          newCell[j] = f * cell[j] + i * g;
          double o = sigmoid(fromInput[3 * h + j] + fromHidden[3 * h + j]
              + (wco == null ? 0 : wco[j] * newCell[j]));
          unprojected[j] = o * Math.tanh(newCell[j]);
        }
        if (c.projSize() <= 0) {
          return new double[][] {unprojected, newCell};
        }
        double[] whr = p.get("weight_hr" + suffix);
        double[] projected = new double[hout];
        for (int k = 0; k < hout; k++) {
          projected[k] = dot(whr, k, h, unprojected, 0);
        }
        return new double[][] {projected, newCell};
      }
      default -> throw new IllegalStateException();
    }
  }

  /** Σ output⊙gOut + Σ hn⊙gHn + Σ cn⊙gCn (null weights skipped): a loss whose gradients are g. */
  public static double weightedLoss(Result r, double[] gOut, double[] gHn, double[] gCn) {
    double loss = 0;
    for (int i = 0; i < r.output().length; i++) {
      loss += r.output()[i] * gOut[i];
    }
    if (gHn != null) {
      for (int i = 0; i < r.hn().length; i++) {
        loss += r.hn()[i] * gHn[i];
      }
    }
    if (gCn != null && r.cn() != null) {
      for (int i = 0; i < r.cn().length; i++) {
        loss += r.cn()[i] * gCn[i];
      }
    }
    return loss;
  }
}
