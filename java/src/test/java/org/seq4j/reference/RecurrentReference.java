package org.seq4j.reference;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Float64 reference of PyTorch's {@code nn.RNN}, {@code nn.LSTM} (with its projection, plus Greff
 * et al.'s peepholes) and {@code nn.GRU}, written from the equations, loop by loop. Used only by
 * tests; shares no code with the kernels.
 *
 * <p>Every array is time-major and row-major, flattened:
 *
 * <ul>
 *   <li>x {@code (T, N, I)};
 *   <li>output {@code (T, N, D*Hout)}: the forward direction's {@code Hout} values, then the
 *       backward direction's;
 *   <li>h0, hn {@code (L*D, N, Hout)} and c0, cn {@code (L*D, N, H)} (LSTM only), indexed by
 *       {@code layer*D + direction};
 *   <li>lengths (optional) {@code (N)}, each in {@code [1, T]}: PyTorch's packed-sequence
 *       semantics. Sample n's forward direction runs over steps {@code 0 .. len-1}, its backward
 *       direction starts at step {@code len-1} from the initial state and runs down to 0, outputs
 *       at steps {@code t >= len} are zero in every layer and direction, and its final state is
 *       the state after its own last processed step. Inputs at steps {@code t >= len} are never
 *       read.
 * </ul>
 *
 * <p>Parameters are passed by PyTorch's names (see {@link #parameterShapes}); gate row blocks are
 * in PyTorch's order: LSTM i, f, g, o; GRU r, z, n.
 */
public final class RecurrentReference {
  private RecurrentReference() {}

  /** The cell kinds: PyTorch's {@code nn.RNN} with tanh or relu, {@code nn.LSTM}, {@code nn.GRU}. */
  public enum Cell {
    RNN_TANH,
    RNN_RELU,
    LSTM,
    GRU
  }

  /**
   * Sizes and options, as PyTorch's constructor arguments (without dropout and batch_first).
   *
   * @param cell the cell kind
   * @param inputSize I, the features of x
   * @param hiddenSize H, the size of each gate and of the cell state
   * @param numLayers L, stacked layers; layer k > 0 reads the outputs of layer k-1
   * @param bidirectional D = 2 when true, else 1
   * @param bias whether bias_ih and bias_hh exist
   * @param peephole LSTM only: the peephole weights weight_ci, weight_cf, weight_co
   * @param projSize LSTM only: P, the size of the projected hidden state; 0 for none
   */
  public record Config(Cell cell, int inputSize, int hiddenSize, int numLayers,
      boolean bidirectional, boolean bias, boolean peephole, int projSize) {
    /** Checks every size and that peepholes and projection are only asked of an LSTM. */
    public Config {
      if (cell == null) {
        throw new IllegalArgumentException("cell must not be null");
      }
      if (inputSize < 1) {
        throw new IllegalArgumentException("inputSize must be >= 1, got " + inputSize);
      }
      if (hiddenSize < 1) {
        throw new IllegalArgumentException("hiddenSize must be >= 1, got " + hiddenSize);
      }
      if (numLayers < 1) {
        throw new IllegalArgumentException("numLayers must be >= 1, got " + numLayers);
      }
      if (projSize < 0) {
        throw new IllegalArgumentException("projSize must be >= 0, got " + projSize);
      }
      if (cell != Cell.LSTM && peephole) {
        throw new IllegalArgumentException("peephole is for LSTM only, got " + cell);
      }
      if (cell != Cell.LSTM && projSize > 0) {
        throw new IllegalArgumentException("projSize is for LSTM only, got " + cell);
      }
    }

    /** D: 2 when bidirectional, else 1. */
    public int directions() {
      return bidirectional ? 2 : 1;
    }

    /** Hout: the projection size when there is one, else the hidden size. */
    public int outputSize() {
      return projSize > 0 ? projSize : hiddenSize;
    }

    /** G: the number of gate row blocks in weight_ih and weight_hh. */
    public int gates() {
      return switch (cell) {
        case RNN_TANH, RNN_RELU -> 1;
        case LSTM -> 4;
        case GRU -> 3;
      };
    }

    /** The features layer k reads: I for layer 0, D*Hout above it. */
    public int layerInputSize(int layer) {
      return layer == 0 ? inputSize : directions() * outputSize();
    }
  }

  /**
   * The outputs of a forward pass.
   *
   * @param output {@code (T, N, D*Hout)}
   * @param hn {@code (L*D, N, Hout)}
   * @param cn {@code (L*D, N, H)}; null unless LSTM
   */
  public record Result(double[] output, double[] hn, double[] cn) {}

  /** The suffix of layer k's parameter names: {@code _l{k}}, plus {@code _reverse} backward. */
  private static String suffix(int layer, int direction) {
    return "_l" + layer + (direction == 1 ? "_reverse" : "");
  }

  /**
   * Every parameter's PyTorch name and shape, in PyTorch's order: per layer, forward then
   * {@code _reverse}; per direction weight_ih {@code (G*H, in_k)}, weight_hh {@code (G*H, Hout)},
   * bias_ih {@code (G*H)}, bias_hh {@code (G*H)}, weight_hr {@code (P, H)}, then the peepholes
   * weight_ci, weight_cf, weight_co {@code (H)} each (which PyTorch lacks).
   */
  public static LinkedHashMap<String, int[]> parameterShapes(Config c) {
    LinkedHashMap<String, int[]> shapes = new LinkedHashMap<>();
    int rows = c.gates() * c.hiddenSize();
    for (int layer = 0; layer < c.numLayers(); layer++) {
      for (int direction = 0; direction < c.directions(); direction++) {
        String suffix = suffix(layer, direction);
        shapes.put("weight_ih" + suffix, new int[] {rows, c.layerInputSize(layer)});
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

  /** The parameters of one layer and direction; absent ones (bias, projection, peepholes) null. */
  private record Weights(double[] weightIh, double[] weightHh, double[] biasIh, double[] biasHh,
      double[] weightHr, double[] weightCi, double[] weightCf, double[] weightCo) {
    static Weights of(Map<String, double[]> params, int layer, int direction) {
      String s = suffix(layer, direction);
      return new Weights(params.get("weight_ih" + s), params.get("weight_hh" + s),
          params.get("bias_ih" + s), params.get("bias_hh" + s), params.get("weight_hr" + s),
          params.get("weight_ci" + s), params.get("weight_cf" + s), params.get("weight_co" + s));
    }
  }

  /**
   * The forward pass of the whole stack, every layer and direction.
   *
   * @param c sizes and options
   * @param params every parameter of {@link #parameterShapes}, by name, row-major; no others
   * @param x the input {@code (T, N, I)}
   * @param steps T, at least 1
   * @param batch N, at least 1
   * @param h0 the initial hidden states {@code (L*D, N, Hout)}, or null for zeros
   * @param c0 the initial cell states {@code (L*D, N, H)} (LSTM only), or null for zeros
   * @param lengths each sample's length in {@code [1, T]}, or null for T everywhere
   * @return the output and the final states
   */
  public static Result forward(Config c, Map<String, double[]> params, double[] x, int steps,
      int batch, double[] h0, double[] c0, int[] lengths) {
    checkArguments(c, params, x, steps, batch, h0, c0, lengths);
    int directions = c.directions();
    int hidden = c.hiddenSize();
    int hout = c.outputSize();
    boolean lstm = c.cell() == Cell.LSTM;
    double[] hn = new double[c.numLayers() * directions * batch * hout]; // (L*D, N, Hout)
    double[] cn = lstm ? new double[c.numLayers() * directions * batch * hidden] : null;

    double[] layerInput = x; // (T, N, in_k)
    double[] layerOutput = null; // (T, N, D*Hout), zero where a sample has ended
    for (int layer = 0; layer < c.numLayers(); layer++) {
      int inputWidth = c.layerInputSize(layer);
      layerOutput = new double[steps * batch * directions * hout];
      for (int direction = 0; direction < directions; direction++) {
        Weights w = Weights.of(params, layer, direction);
        int state = layer * directions + direction;
        for (int n = 0; n < batch; n++) {
          int length = lengths == null ? steps : lengths[n];
          // the initial state: h0[state, n], c0[state, n], or zeros
          double[] h = h0 == null ? new double[hout]
              : Arrays.copyOfRange(h0, (state * batch + n) * hout, (state * batch + n + 1) * hout);
          double[] cell = !lstm ? null : c0 == null ? new double[hidden]
              : Arrays.copyOfRange(c0, (state * batch + n) * hidden,
                  (state * batch + n + 1) * hidden);
          for (int k = 0; k < length; k++) {
            // forward: t = 0 .. len-1; backward: t = len-1 .. 0
            int t = direction == 0 ? k : length - 1 - k;
            double[] xt = Arrays.copyOfRange(layerInput, (t * batch + n) * inputWidth,
                (t * batch + n + 1) * inputWidth);
            switch (c.cell()) {
              case RNN_TANH, RNN_RELU -> h = rnnStep(c, w, xt, h);
              case GRU -> h = gruStep(c, w, xt, h);
              case LSTM -> {
                double[][] next = lstmStep(c, w, xt, h, cell);
                h = next[0];
                cell = next[1];
              }
            }
            // output[t, n, direction*Hout .. (direction+1)*Hout) = h
            System.arraycopy(h, 0, layerOutput, (t * batch + n) * directions * hout
                + direction * hout, hout);
          }
          System.arraycopy(h, 0, hn, (state * batch + n) * hout, hout);
          if (lstm) {
            System.arraycopy(cell, 0, cn, (state * batch + n) * hidden, hidden);
          }
        }
      }
      layerInput = layerOutput;
    }
    return new Result(layerOutput, hn, cn);
  }

  /** Row {@code row} of the input part of a gate: Σ_k W_ih[row, k] x[k] + b_ih[row]. */
  private static double inputPart(Weights w, int row, double[] x) {
    double sum = w.biasIh() == null ? 0 : w.biasIh()[row];
    for (int k = 0; k < x.length; k++) {
      sum += w.weightIh()[row * x.length + k] * x[k];
    }
    return sum;
  }

  /** Row {@code row} of the recurrent part of a gate: Σ_k W_hh[row, k] h[k] + b_hh[row]. */
  private static double recurrentPart(Weights w, int row, double[] h) {
    double sum = w.biasHh() == null ? 0 : w.biasHh()[row];
    for (int k = 0; k < h.length; k++) {
      sum += w.weightHh()[row * h.length + k] * h[k];
    }
    return sum;
  }

  private static double sigmoid(double v) {
    return 1 / (1 + Math.exp(-v));
  }

  /** h' = act(W_ih x + b_ih + W_hh h + b_hh), act = tanh or relu. */
  private static double[] rnnStep(Config c, Weights w, double[] x, double[] h) {
    double[] next = new double[c.hiddenSize()];
    for (int j = 0; j < c.hiddenSize(); j++) {
      double a = inputPart(w, j, x) + recurrentPart(w, j, h);
      next[j] = c.cell() == Cell.RNN_TANH ? Math.tanh(a) : Math.max(0, a);
    }
    return next;
  }

  /**
   * PyTorch's GRU, the reset gate applied after the recurrent product and its bias:
   *
   * <pre>
   * r  = σ(W_ir x + b_ir + W_hr h + b_hr)
   * z  = σ(W_iz x + b_iz + W_hz h + b_hz)
   * n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
   * h' = (1 − z) ⊙ n + z ⊙ h
   * </pre>
   */
  private static double[] gruStep(Config c, Weights w, double[] x, double[] h) {
    int hidden = c.hiddenSize();
    double[] next = new double[hidden];
    for (int j = 0; j < hidden; j++) {
      double r = sigmoid(inputPart(w, j, x) + recurrentPart(w, j, h));
      double z = sigmoid(inputPart(w, hidden + j, x) + recurrentPart(w, hidden + j, h));
      double n = Math.tanh(inputPart(w, 2 * hidden + j, x)
          + r * recurrentPart(w, 2 * hidden + j, h));
      next[j] = (1 - z) * n + z * h[j];
    }
    return next;
  }

  /**
   * The vanilla LSTM of Greff et al. (PyTorch's when the peepholes are off), with PyTorch's
   * projection:
   *
   * <pre>
   * i  = σ(W_ii x + b_ii + W_hi h + b_hi + w_ci ⊙ c)
   * f  = σ(W_if x + b_if + W_hf h + b_hf + w_cf ⊙ c)
   * g  = tanh(W_ig x + b_ig + W_hg h + b_hg)
   * c' = f ⊙ c + i ⊙ g
   * o  = σ(W_io x + b_io + W_ho h + b_ho + w_co ⊙ c')     the output gate sees the new cell
   * h' = o ⊙ tanh(c'),  or with projection h' = W_hr (o ⊙ tanh(c'))
   * </pre>
   *
   * @return {h' (Hout), c' (H)}
   */
  private static double[][] lstmStep(Config c, Weights w, double[] x, double[] h, double[] cell) {
    int hidden = c.hiddenSize();
    double[] newCell = new double[hidden];
    double[] unprojected = new double[hidden]; // o ⊙ tanh(c')
    for (int j = 0; j < hidden; j++) {
      double peepholeI = w.weightCi() == null ? 0 : w.weightCi()[j] * cell[j];
      double peepholeF = w.weightCf() == null ? 0 : w.weightCf()[j] * cell[j];
      double i = sigmoid(inputPart(w, j, x) + recurrentPart(w, j, h) + peepholeI);
      double f = sigmoid(inputPart(w, hidden + j, x) + recurrentPart(w, hidden + j, h)
          + peepholeF);
      double g = Math.tanh(inputPart(w, 2 * hidden + j, x) + recurrentPart(w, 2 * hidden + j, h));
      newCell[j] = f * cell[j] + i * g;
      double peepholeO = w.weightCo() == null ? 0 : w.weightCo()[j] * newCell[j];
      double o = sigmoid(inputPart(w, 3 * hidden + j, x) + recurrentPart(w, 3 * hidden + j, h)
          + peepholeO);
      unprojected[j] = o * Math.tanh(newCell[j]);
    }
    if (c.projSize() == 0) {
      return new double[][] {unprojected, newCell};
    }
    // h'[p] = Σ_j W_hr[p, j] (o ⊙ tanh(c'))[j]
    double[] projected = new double[c.projSize()];
    for (int p = 0; p < c.projSize(); p++) {
      double sum = 0;
      for (int j = 0; j < hidden; j++) {
        sum += w.weightHr()[p * hidden + j] * unprojected[j];
      }
      projected[p] = sum;
    }
    return new double[][] {projected, newCell};
  }

  /**
   * Σ output⊙gOut + Σ hn⊙gHn + Σ cn⊙gCn, a null weight skipping its term: a scalar loss whose
   * gradients with respect to output, hn and cn are gOut, gHn and gCn, so that {@link
   * FiniteDifferences} gives the reference gradient of any input, initial state or parameter.
   */
  public static double weightedLoss(Result r, double[] gOut, double[] gHn, double[] gCn) {
    return weightedSum(r.output(), gOut, "gOut") + weightedSum(r.hn(), gHn, "gHn")
        + weightedSum(r.cn(), gCn, "gCn");
  }

  private static double weightedSum(double[] values, double[] weights, String name) {
    if (weights == null) {
      return 0;
    }
    if (values == null || values.length != weights.length) {
      throw new IllegalArgumentException(name + " has " + weights.length + " values, expected "
          + (values == null ? "none (no such output)" : values.length));
    }
    double sum = 0;
    for (int i = 0; i < values.length; i++) {
      sum += values[i] * weights[i];
    }
    return sum;
  }

  /** Every size and name checked, so that a mistake in a test fails loudly, not silently. */
  private static void checkArguments(Config c, Map<String, double[]> params, double[] x,
      int steps, int batch, double[] h0, double[] c0, int[] lengths) {
    if (steps < 1 || batch < 1) {
      throw new IllegalArgumentException("steps and batch must be >= 1, got " + steps + ", "
          + batch);
    }
    checkLength("x", x, steps * batch * c.inputSize());
    int states = c.numLayers() * c.directions() * batch;
    if (h0 != null) {
      checkLength("h0", h0, states * c.outputSize());
    }
    if (c0 != null) {
      if (c.cell() != Cell.LSTM) {
        throw new IllegalArgumentException("c0 is for LSTM only, got " + c.cell());
      }
      checkLength("c0", c0, states * c.hiddenSize());
    }
    if (lengths != null) {
      if (lengths.length != batch) {
        throw new IllegalArgumentException("lengths has " + lengths.length + " values, expected "
            + batch);
      }
      for (int n = 0; n < batch; n++) {
        if (lengths[n] < 1 || lengths[n] > steps) {
          throw new IllegalArgumentException("lengths[" + n + "] = " + lengths[n]
              + " is outside [1, " + steps + "]");
        }
      }
    }
    Map<String, int[]> shapes = parameterShapes(c);
    for (Map.Entry<String, int[]> entry : shapes.entrySet()) {
      int size = 1;
      for (int dimension : entry.getValue()) {
        size *= dimension;
      }
      double[] value = params.get(entry.getKey());
      if (value == null) {
        throw new IllegalArgumentException("missing parameter " + entry.getKey());
      }
      checkLength(entry.getKey() + " " + Arrays.toString(entry.getValue()), value, size);
    }
    for (String name : params.keySet()) {
      if (!shapes.containsKey(name)) {
        throw new IllegalArgumentException("unexpected parameter " + name + " for " + c);
      }
    }
  }

  private static void checkLength(String name, double[] values, int expected) {
    if (values.length != expected) {
      throw new IllegalArgumentException(name + " has " + values.length + " values, expected "
          + expected);
    }
  }
}
