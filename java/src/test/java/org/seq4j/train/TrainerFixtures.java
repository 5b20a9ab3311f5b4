package org.seq4j.train;

import java.lang.foreign.Arena;
import java.util.List;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.data.MiniBatches;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Module;
import org.seq4j.nn.Parameter;

/** A small regression task, a scalar MSE recorded by hand, and a user-written optimizer. */
final class TrainerFixtures {
  private TrainerFixtures() {}

  static final int SAMPLES = 64;
  static final int FEATURES = 3;
  static final double[] TRUE_WEIGHT = {1.0, -2.0, 0.5};
  static final double TRUE_BIAS = 0.3;

  /** A batch in its own arena: the trainer closes it after the step. */
  record Batch(Arena arena, Tensor x, Tensor y, int[] closes) implements AutoCloseable {
    @Override
    public void close() {
      closes[0]++;
      arena.close();
    }
  }

  /** A two-part model, so that parameters have dotted names. */
  static final class Net extends Module {
    final Linear body = register("body", new Linear(FEATURES, 4, true, 11));
    final Linear head = register("head", new Linear(4, 1, true, 12));

    Tensor forward(Tensor x) {
      return head.forward(body.forward(x));
    }
  }

  /** The inputs (seeded) and the exact targets {@code x·w + b}. */
  static float[][] inputs(long seed) {
    java.util.Random random = new java.util.Random(seed);
    float[][] x = new float[SAMPLES][FEATURES];
    for (float[] row : x) {
      for (int j = 0; j < FEATURES; j++) {
        row[j] = (float) random.nextGaussian();
      }
    }
    return x;
  }

  static float target(float[] row) {
    double y = TRUE_BIAS;
    for (int j = 0; j < FEATURES; j++) {
      y += TRUE_WEIGHT[j] * row[j];
    }
    return (float) y;
  }

  /** Shuffled batches of 16, each made in a fresh confined arena. */
  static MiniBatches<Batch> batches(float[][] x, long seed, int[] closes) {
    return MiniBatches.shuffled(x.length, 16, seed, indices -> batch(x, indices, closes));
  }

  /** The samples {@code indices} as one batch in a fresh confined arena. */
  static Batch batch(float[][] x, int[] indices, int[] closes) {
    return batchIn(Arena.ofConfined(), x, indices, closes);
  }

  /** The samples {@code indices} as one batch in {@code arena}, which the caller closes. */
  static Batch batchIn(Arena arena, float[][] x, int[] indices) {
    return batchIn(arena, x, indices, new int[1]);
  }

  private static Batch batchIn(Arena arena, float[][] x, int[] indices, int[] closes) {
    float[] xs = new float[indices.length * FEATURES];
    float[] ys = new float[indices.length];
    for (int i = 0; i < indices.length; i++) {
      System.arraycopy(x[indices[i]], 0, xs, i * FEATURES, FEATURES);
      ys[i] = target(x[indices[i]]);
    }
    return new Batch(arena, Tensor.fromArray(arena, xs, indices.length, FEATURES),
        Tensor.fromArray(arena, ys, indices.length, 1), closes);
  }

  /** {@code mean((y − target)²)} as a one-element tensor, recorded with its backward. */
  static Tensor mse(Tensor y, Tensor target) {
    float[] a = y.toArray();
    float[] b = target.toArray();
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      sum += (a[i] - b[i]) * (double) (a[i] - b[i]);
    }
    int n = a.length;
    Tensor out = Tensor.fromArray(y.arena(), new float[] {(float) (sum / n)}, 1);
    Autograd.record("test.mse", List.of(y), List.of(out), List.of(y, target), (arena, g) -> {
      float scale = g[0] == null ? 0f : g[0].toArray()[0];
      float[] grad = new float[n];
      for (int i = 0; i < n; i++) {
        grad[i] = (float) (2.0 * (a[i] - b[i]) / n) * scale;
      }
      return new Tensor[] {Tensor.fromArray(arena, grad, y.shape().dims())};
    });
    return out;
  }

  /** signSGD, written as a user would: {@code p −= lr·sign(grad)}. */
  static final class SignSgd implements Optimizer {
    private final List<ParameterGroup> groups;
    private long steps;

    SignSgd(List<Parameter> parameters, double learningRate) {
      groups = List.of(ParameterGroup.of(parameters, learningRate, java.util.Map.of()));
    }

    @Override
    public List<ParameterGroup> groups() {
      return groups;
    }

    @Override
    public void step() {
      for (ParameterGroup g : groups) {
        for (Parameter p : g.parameters()) {
          float[] w = p.data().toArray();
          float[] grad = p.grad().toArray();
          for (int i = 0; i < w.length; i++) {
            w[i] -= (float) g.learningRate() * Math.signum(grad[i]);
          }
          try (Arena scratch = Arena.ofConfined()) {
            p.data().copyFrom(Tensor.fromArray(scratch, w, p.shape().dims()));
          }
          p.markChanged();
        }
      }
      steps++;
    }

    @Override
    public long steps() {
      return steps;
    }

    @Override
    public void restoreSteps(long steps) {
      this.steps = steps;
    }
  }
}
