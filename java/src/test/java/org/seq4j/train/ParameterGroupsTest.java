package org.seq4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;
import org.seq4j.reference.Tolerances;
import org.seq4j.train.TrainerFixtures.SignSgd;

/**
 * Parameter groups step as PyTorch's per-group formulas say (written here in float64, apart
 * from the optimizers' code); learning rates scale per group; a user's optimizer plugs in.
 */
class ParameterGroupsTest {
  static final int STEPS = 4;

  static Parameter parameter(Arena arena, String name, long seed, int size) {
    return Parameter.of(name, Tensor.randomNormal(arena, seed, size), Tensor.zeros(arena, size));
  }

  /** Deterministic gradients: {@code grad[s][i] = sin(1 + s + 0.7·i + offset)}. */
  static double[] gradient(int step, int size, double offset) {
    double[] g = new double[size];
    for (int i = 0; i < size; i++) {
      g[i] = (float) Math.sin(1 + step + 0.7 * i + offset);
    }
    return g;
  }

  static void setGradient(Parameter p, double[] g) {
    float[] f = new float[g.length];
    for (int i = 0; i < g.length; i++) {
      f[i] = (float) g[i];
    }
    try (Arena scratch = Arena.ofConfined()) {
      p.grad().copyFrom(Tensor.fromArray(scratch, f, f.length));
    }
  }

  /** PyTorch's SGD on one parameter, float64. */
  static double[] sgd(double[] p, int steps, double offset, double lr, double momentum,
      double weightDecay) {
    double[] w = p.clone();
    double[] v = new double[w.length];
    for (int s = 0; s < steps; s++) {
      double[] g = gradient(s, w.length, offset);
      for (int i = 0; i < w.length; i++) {
        double d = g[i] + weightDecay * w[i];
        if (momentum != 0) {
          v[i] = s == 0 ? d : momentum * v[i] + d;
          d = v[i];
        }
        w[i] -= lr * d;
      }
    }
    return w;
  }

  /** PyTorch's AdamW on one parameter, float64. */
  static double[] adamW(double[] p, int steps, double offset, double lr, double beta1,
      double beta2, double eps, double weightDecay) {
    double[] w = p.clone();
    double[] m = new double[w.length];
    double[] v = new double[w.length];
    for (int s = 1; s <= steps; s++) {
      double[] g = gradient(s - 1, w.length, offset);
      for (int i = 0; i < w.length; i++) {
        w[i] *= 1 - lr * weightDecay;
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        double mHat = m[i] / (1 - Math.pow(beta1, s));
        double vHat = v[i] / (1 - Math.pow(beta2, s));
        w[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
      }
    }
    return w;
  }

  @Test
  void sgdGroupsStepWithTheirOwnOptions() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter a = parameter(arena, "encoder.weight", 1, 7);
      Parameter b = parameter(arena, "head.weight", 2, 5);
      double[] a0 = doubles(a.data());
      double[] b0 = doubles(b.data());
      try (Sgd sgd = Sgd.builder().momentum(0.9)
          .group(List.of(a), g -> g.learningRate(0.05))
          .group(List.of(b), g -> g.learningRate(0.2).momentum(0).weightDecay(0.1)).build()) {
        assertEquals(2, sgd.groups().size());
        assertEquals(Map.of("momentum", 0.0, "dampening", 0.0, "weight_decay", 0.1,
            "nesterov", false), sgd.groups().get(1).options());
        assertEquals(List.of("momentum_buffer.encoder.weight"), List.copyOf(sgd.state().keySet()),
            "only the group with momentum keeps a buffer, under PyTorch's name");
        for (int s = 0; s < STEPS; s++) {
          setGradient(a, gradient(s, 7, 0));
          setGradient(b, gradient(s, 5, 3));
          sgd.step();
        }
      }
      assertClose(sgd(a0, STEPS, 0, 0.05, 0.9, 0), doubles(a.data()), Tolerances.OPTIMIZER_STEPS,
          "group 0");
      assertClose(sgd(b0, STEPS, 3, 0.2, 0, 0.1), doubles(b.data()), Tolerances.OPTIMIZER_STEPS,
          "group 1");
    }
  }

  @Test
  void adamGroupsStepWithTheirOwnOptions() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter a = parameter(arena, "a", 3, 6);
      Parameter b = parameter(arena, "b", 4, 3);
      double[] a0 = doubles(a.data());
      double[] b0 = doubles(b.data());
      try (Adam adam = Adam.adamW().learningRate(0.01)
          .group(List.of(a))
          .group(List.of(b), g -> g.learningRate(0.03).betas(0.8, 0.99).eps(1e-6)
              .weightDecay(0))
          .build()) {
        assertEquals(0.01, adam.groups().get(0).options().get("weight_decay"));
        for (int s = 0; s < STEPS; s++) {
          setGradient(a, gradient(s, 6, 1));
          setGradient(b, gradient(s, 3, 2));
          adam.step();
        }
      }
      assertClose(adamW(a0, STEPS, 1, 0.01, 0.9, 0.999, 1e-8, 0.01), doubles(a.data()),
          Tolerances.OPTIMIZER_STEPS, "group 0");
      assertClose(adamW(b0, STEPS, 2, 0.03, 0.8, 0.99, 1e-6, 0), doubles(b.data()),
          Tolerances.OPTIMIZER_STEPS, "group 1");
    }
  }

  @Test
  void settingTheLearningRateScalesEveryGroupFromItsBase() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter a = parameter(arena, "a", 5, 2);
      Parameter b = parameter(arena, "b", 6, 2);
      try (Sgd sgd = Sgd.builder().group(List.of(a), g -> g.learningRate(0.1))
          .group(List.of(b), g -> g.learningRate(0.01)).build()) {
        sgd.setLearningRate(0.05);
        assertEquals(0.05, sgd.learningRate());
        assertEquals(0.005, sgd.groups().get(1).learningRate(), 1e-18);
        assertEquals(0.1, sgd.groups().get(0).baseLearningRate());
        assertEquals(List.of(a, b), sgd.parameters());
        var e = assertThrows(IllegalArgumentException.class, () -> sgd.setLearningRate(-1));
        assertEquals("learningRate: expected a finite value >= 0, got -1.0", e.getMessage());
      }
      var e = assertThrows(IllegalArgumentException.class,
          () -> Sgd.builder().group(List.of(a)).group(List.of(a)).build());
      assertEquals("parameters: the values of a share memory with the values of a (the same"
          + " parameter twice, or two views of one tensor): each step would update that memory"
          + " twice", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> Adam.builder().build());
      assertEquals("groups: expected at least one parameter group", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Sgd.builder().group(List.of(a), g -> g.nesterov(true)).build());
      assertEquals("nesterov: needs momentum > 0 and dampening 0, got momentum 0.0 and"
          + " dampening 0.0", e.getMessage());
    }
  }

  @Test
  void aUserOptimizerStepsByItsOwnRule() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter p = Parameter.of("w", Tensor.fromArray(arena, new float[] {1, 2, 3}, 3),
          Tensor.fromArray(arena, new float[] {-0.5f, 0, 4}, 3));
      try (SignSgd sign = new SignSgd(List.of(p), 0.25)) {
        Optimizer optimizer = sign;
        optimizer.setLearningRate(0.5);
        optimizer.step();
        assertEquals(List.of(p), optimizer.parameters());
        assertEquals(Map.of(), optimizer.state());
        assertEquals(1, optimizer.steps());
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[] {1.5f, 2, 2.5f},
            p.data().toArray());
        optimizer.zeroGrad();
        org.junit.jupiter.api.Assertions.assertArrayEquals(new float[3], p.grad().toArray());
      }
    }
  }
}
