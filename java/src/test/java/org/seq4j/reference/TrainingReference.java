package org.seq4j.reference;

/**
 * Float64 references of the losses and optimizer rules, written from PyTorch's definitions, loop
 * by loop.
 */
public final class TrainingReference {
  private TrainingReference() {}

  /** mean((p − t)²). */
  public static double meanSquaredError(double[] p, double[] t) {
    double sum = 0;
    for (int i = 0; i < p.length; i++) {
      sum += (p[i] - t[i]) * (p[i] - t[i]);
    }
    return sum / p.length;
  }

  /** Mean over non-ignored rows of −Σ_j q_j log softmax(x)_j, q = (1 − e) one-hot + e / v. */
  public static double crossEntropy(double[] logits, long[] labels, int v, long ignore,
      double smoothing) {
    double total = 0;
    int counted = 0;
    for (int row = 0; row < labels.length; row++) {
      if (labels[row] == ignore) {
        continue;
      }
      counted++;
      double logSum = logSumExp(logits, row, v);
      for (int j = 0; j < v; j++) {
        double logP = logits[row * v + j] - logSum;
        double q = (j == labels[row] ? 1 - smoothing : 0) + smoothing / v;
        total -= q * logP;
      }
    }
    return counted == 0 ? 0 : total / counted;
  }

  /** log Σ_j exp(x_j) over row {@code row} of (rows, v) logits, its maximum subtracted first. */
  static double logSumExp(double[] logits, int row, int v) {
    double max = Double.NEGATIVE_INFINITY;
    for (int j = 0; j < v; j++) {
      max = Math.max(max, logits[row * v + j]);
    }
    double sum = 0;
    for (int j = 0; j < v; j++) {
      sum += Math.exp(logits[row * v + j] - max);
    }
    return max + Math.log(sum);
  }

  /**
   * The gradient of {@link #crossEntropy} with respect to the logits, from its closed form:
   * (softmax(x) − q) / counted for each non-ignored row, zero for the ignored ones (for shapes too
   * large for finite differences; the small ones are checked against those).
   */
  public static double[] crossEntropyGradient(double[] logits, long[] labels, int v, long ignore,
      double smoothing) {
    double[] grad = new double[logits.length];
    int counted = 0;
    for (long label : labels) {
      counted += label == ignore ? 0 : 1;
    }
    for (int row = 0; row < labels.length; row++) {
      if (labels[row] == ignore) {
        continue;
      }
      double logSum = logSumExp(logits, row, v);
      for (int j = 0; j < v; j++) {
        double p = Math.exp(logits[row * v + j] - logSum);
        double q = (j == labels[row] ? 1 - smoothing : 0) + smoothing / v;
        grad[row * v + j] = (p - q) / counted;
      }
    }
    return grad;
  }

  /**
   * {@link #binaryCrossEntropyWithLogits} for logits of any size: −t log σ(x) − (1 − t) log(1 −
   * σ(x)) = log(1 + e^x) − x t, written max(x, 0) − x t + log(1 + e^−|x|) (log(1 + e^x) = max(x, 0)
   * + log(1 + e^−|x|)), in which nothing saturates; with Java's log1p.
   */
  public static double binaryCrossEntropyWithLogitsStable(double[] x, double[] t) {
    double sum = 0;
    for (int i = 0; i < x.length; i++) {
      sum += Math.max(x[i], 0) - x[i] * t[i] + Math.log1p(Math.exp(-Math.abs(x[i])));
    }
    return sum / x.length;
  }

  /** mean(−t log σ(x) − (1 − t) log(1 − σ(x))). */
  public static double binaryCrossEntropyWithLogits(double[] x, double[] t) {
    double sum = 0;
    for (int i = 0; i < x.length; i++) {
      double s = 1 / (1 + Math.exp(-x[i]));
      sum -= t[i] * Math.log(s) + (1 - t[i]) * Math.log(1 - s);
    }
    return sum / x.length;
  }

  /** PyTorch's SGD, several steps on p with gradients grads[step]; returns the final p. */
  public static double[] sgd(double[] p, double[][] grads, double lr, double momentum,
      double dampening, double weightDecay, boolean nesterov) {
    double[] param = p.clone();
    double[] buf = new double[p.length];
    for (int step = 0; step < grads.length; step++) {
      for (int i = 0; i < p.length; i++) {
        double d = grads[step][i] + weightDecay * param[i];
        if (momentum != 0) {
          buf[i] = step == 0 ? d : momentum * buf[i] + (1 - dampening) * d;
          d = nesterov ? d + momentum * buf[i] : buf[i];
        }
        param[i] -= lr * d;
      }
    }
    return param;
  }

  /** PyTorch's Adam (decoupled = AdamW), several steps; returns the final p. */
  public static double[] adam(double[] p, double[][] grads, double lr, double beta1,
      double beta2, double eps, double weightDecay, boolean decoupled) {
    double[] param = p.clone();
    double[] m = new double[p.length];
    double[] v = new double[p.length];
    for (int step = 1; step <= grads.length; step++) {
      for (int i = 0; i < p.length; i++) {
        double g = grads[step - 1][i];
        if (decoupled) {
          param[i] *= 1 - lr * weightDecay;
        } else {
          g += weightDecay * param[i];
        }
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        double mHat = m[i] / (1 - Math.pow(beta1, step));
        double vHat = v[i] / (1 - Math.pow(beta2, step));
        param[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
      }
    }
    return param;
  }
}
