package org.seq4j.train;

import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.TrainingReference;
import org.seq4j.train.Losses.CrossEntropyOptions;
import org.seq4j.reference.Tolerances;

/** Losses, optimizers, clipping, schedules and initialisers against float64 references. */
class TrainingToolkitTest {
  /** float32 kernels against float64 references, values of order 1. */
  private static final double TOLERANCE = Tolerances.LOSS_FORWARD;

  @Test
  void meanSquaredErrorAndItsGradient() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor p = Tensor.randomNormal(arena, 1, 7, 3);
      Tensor t = Tensor.randomNormal(arena, 2, 7, 3);
      Tensor grad = Tensor.zeros(arena, 7, 3);
      float loss = Losses.meanSquaredError(p, t, grad);
      double[] pv = doubles(p);
      double[] tv = doubles(t);
      assertEquals(TrainingReference.meanSquaredError(pv, tv), loss, TOLERANCE);
      assertClose(FiniteDifferences.gradient(pv, () -> TrainingReference.meanSquaredError(pv, tv)),
          doubles(grad), Tolerances.LOSS_BACKWARD, "mse gradient");
    }
  }

  @ParameterizedTest(name = "rows={0} vocabulary={1} smoothing={2}")
  @CsvSource({"1, 1, 0", "5, 3, 0", "6, 17, 0.1", "9, 63, 0.3", "4, 1000, 0"})
  void crossEntropyWithIgnoredRowsAndSmoothing(int rows, int vocabulary, float smoothing) {
    try (Arena arena = Arena.ofConfined()) {
      Random random = new Random(rows * 31L + vocabulary);
      Tensor logits = Tensor.randomNormal(arena, rows, rows, vocabulary);
      TensorScale.scale(logits, 3f); // wider logits exercise the max subtraction
      long[] labels = new long[rows];
      for (int i = 0; i < rows; i++) {
        labels[i] = i % 3 == 2 ? -100 : random.nextInt(vocabulary);
      }
      Tensor grad = Tensor.zeros(arena, rows, vocabulary);
      CrossEntropyOptions options = CrossEntropyOptions.DEFAULT.labelSmoothing(smoothing);
      float loss = Losses.crossEntropy(logits, labels, options, grad);
      double[] x = doubles(logits);
      assertEquals(TrainingReference.crossEntropy(x, labels, vocabulary, -100, smoothing), loss,
          TOLERANCE * Math.max(1, loss));
      assertClose(FiniteDifferences.gradient(x,
          () -> TrainingReference.crossEntropy(x, labels, vocabulary, -100, smoothing)),
          doubles(grad), Tolerances.LOSS_BACKWARD, "cross-entropy gradient");
    }
  }

  /**
   * The cross-entropy kernel's vector copies at a size that runs its rows in parallel chunks, a
   * vocabulary that leaves a tail after the 8-wide partial sums, logits spread over ±40 (the
   * softmax's exps span 1e-35 to 1), and one row holding a NaN: against the float64 reference on
   * every copy, the same bits on every copy (the sums keep a fixed order), NaN where PyTorch's
   * math gives it.
   */
  @Test
  void crossEntropyVectorCopiesMatchTheReferenceAndEachOther() {
    int rows = 300;
    int vocabulary = 1003;
    Random random = new Random(1003);
    double[] x = new double[rows * vocabulary];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) ((random.nextDouble() * 2 - 1) * 40);
    }
    long[] labels = new long[rows];
    for (int i = 0; i < rows; i++) {
      labels[i] = i % 7 == 3 ? -100 : random.nextInt(vocabulary);
    }
    double expected = TrainingReference.crossEntropy(x, labels, vocabulary, -100, 0.1f);
    float[] firstGrad = null;
    float firstLoss = Float.NaN;
    for (org.seq4j.KernelIsa isa : org.seq4j.reference.KernelCopies.runnable()) {
      org.seq4j.Seq4j.selectKernels(isa);
      try (Arena arena = Arena.ofConfined()) {
        Tensor logits = Tensor.zeros(arena, rows, vocabulary);
        float[] values = new float[x.length];
        for (int i = 0; i < x.length; i++) {
          values[i] = (float) x[i];
        }
        logits.copyFrom(Tensor.fromArray(arena, values, rows, vocabulary));
        Tensor grad = Tensor.zeros(arena, rows, vocabulary);
        float loss = Losses.crossEntropy(logits, labels,
            CrossEntropyOptions.DEFAULT.labelSmoothing(0.1f), grad);
        assertEquals(expected, loss, TOLERANCE * Math.max(1, Math.abs(expected)), isa + " loss");
        float[] g = grad.toArray();
        double[] softmaxGrad = TrainingReference.crossEntropyGradient(x, labels, vocabulary, -100,
            0.1f);
        assertClose(softmaxGrad, doubles(grad), Tolerances.LOSS_BACKWARD, isa + " gradient");
        if (firstGrad == null) {
          firstGrad = g;
          firstLoss = loss;
        } else {
          assertEquals(Float.floatToIntBits(firstLoss), Float.floatToIntBits(loss), isa + " loss bits");
          org.junit.jupiter.api.Assertions.assertArrayEquals(firstGrad, g, 0f, isa + " gradient bits");
        }
        // a NaN logit makes its row's loss, hence the mean, NaN, and its row's gradient NaN
        values[5 * vocabulary + 17] = Float.NaN;
        logits.copyFrom(Tensor.fromArray(arena, values, rows, vocabulary));
        float nanLoss = Losses.crossEntropy(logits, labels, CrossEntropyOptions.DEFAULT, grad);
        assertTrue(Float.isNaN(nanLoss), isa + ": loss with a NaN logit = " + nanLoss);
        assertTrue(Float.isNaN(grad.get(5, 0)), isa + ": gradient of the NaN row");
        assertTrue(Float.isFinite(grad.get(4, 0)), isa + ": gradient of another row");
      } finally {
        org.seq4j.Seq4j.selectKernels(org.seq4j.KernelIsa.BEST);
      }
    }
  }

  /**
   * BCE with logits in its vector copies: 20 003 logits over ±60 (log1p(e^−|x|) from 1e-26 to
   * log 2), targets in [0, 1], several parallel chunks and a tail: against the float64 reference
   * and the closed-form gradient (σ(x) − t) / n on every copy, the same bits on every copy, and
   * NaN from a NaN logit.
   */
  @Test
  void binaryCrossEntropyVectorCopiesMatchTheReferenceAndEachOther() {
    int n = 20_003;
    Random random = new Random(20_003);
    float[] x = new float[n];
    float[] t = new float[n];
    for (int i = 0; i < n; i++) {
      x[i] = (float) ((random.nextDouble() * 2 - 1) * 60);
      t[i] = i % 5 == 0 ? random.nextFloat() : (i % 2);
    }
    double[] xv = new double[n];
    double[] tv = new double[n];
    double[] expectedGrad = new double[n];
    for (int i = 0; i < n; i++) {
      xv[i] = x[i];
      tv[i] = t[i];
      double sigmoid = x[i] >= 0 ? 1 / (1 + Math.exp(-xv[i]))
          : Math.exp(xv[i]) / (1 + Math.exp(xv[i]));
      expectedGrad[i] = (sigmoid - tv[i]) / n;
    }
    double expected = TrainingReference.binaryCrossEntropyWithLogitsStable(xv, tv);
    float firstLoss = Float.NaN;
    float[] firstGrad = null;
    for (org.seq4j.KernelIsa isa : org.seq4j.reference.KernelCopies.runnable()) {
      org.seq4j.Seq4j.selectKernels(isa);
      try (Arena arena = Arena.ofConfined()) {
        Tensor logits = Tensor.fromArray(arena, x, n);
        Tensor targets = Tensor.fromArray(arena, t, n);
        Tensor grad = Tensor.zeros(arena, n);
        float loss = Losses.binaryCrossEntropyWithLogits(logits, targets, grad);
        assertEquals(expected, loss, TOLERANCE * Math.max(1, Math.abs(expected)), isa + " loss");
        float[] g = grad.toArray();
        for (int i = 0; i < n; i++) {
          // relative to the size of σ(x) and t, which cancel where σ(x) nears t
          double scale = (Math.abs(expectedGrad[i] + tv[i] / n) + tv[i] / n);
          assertEquals(expectedGrad[i], g[i], Tolerances.ELEMENTWISE_RELATIVE * scale,
              isa + " gradient " + i);
        }
        if (firstGrad == null) {
          firstLoss = loss;
          firstGrad = g;
        } else {
          assertEquals(Float.floatToIntBits(firstLoss), Float.floatToIntBits(loss), isa + " loss bits");
          org.junit.jupiter.api.Assertions.assertArrayEquals(firstGrad, g, 0f, isa + " gradient bits");
        }
        // targets that cancel max(x, 0) - x t leave the mean of log(1 + e^-|x|) alone: the
        // kernel's log1p, held to the float rounding of the mean
        float[] near = new float[n];
        float[] side = new float[n];
        double[] nearV = new double[n];
        double[] sideV = new double[n];
        for (int i = 0; i < n; i++) {
          near[i] = (float) ((i - n / 2) * 6.0 / n);
          side[i] = near[i] > 0 ? 1 : 0;
          nearV[i] = near[i];
          sideV[i] = side[i];
        }
        double logTerms = TrainingReference.binaryCrossEntropyWithLogitsStable(nearV, sideV);
        float logLoss = Losses.binaryCrossEntropyWithLogits(Tensor.fromArray(arena, near, n),
            Tensor.fromArray(arena, side, n), null);
        assertEquals(logTerms, logLoss, Tolerances.ELEMENTWISE_RELATIVE * logTerms,
            isa + " mean of log(1 + e^-|x|)");
        x[777] = Float.NaN;
        float nanLoss = Losses.binaryCrossEntropyWithLogits(Tensor.fromArray(arena, x, n), targets,
            grad);
        x[777] = (float) xv[777];
        assertTrue(Float.isNaN(nanLoss), isa + ": loss with a NaN logit = " + nanLoss);
        assertTrue(Float.isNaN(grad.get(777)), isa + ": gradient of the NaN logit");
        assertTrue(Float.isFinite(grad.get(778)), isa + ": gradient of another logit");
      } finally {
        org.seq4j.Seq4j.selectKernels(org.seq4j.KernelIsa.BEST);
      }
    }
  }

  @Test
  void crossEntropyOfEveryRowIgnoredIsZeroWithZeroGradient() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor logits = Tensor.randomNormal(arena, 3, 2, 4);
      Tensor grad = Tensor.full(arena, 9f, 2, 4);
      assertEquals(0f, Losses.crossEntropy(logits, new long[] {-100, -100}, grad));
      for (float g : grad.toArray()) {
        assertEquals(0f, g);
      }
    }
  }

  @Test
  void binaryCrossEntropyWithLogitsIsStableForLargeLogits() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {-80f, -3f, 0f, 2.5f, 80f, 0.1f}, 2, 3);
      Tensor t = Tensor.fromArray(arena, new float[] {0f, 1f, 0.5f, 0f, 1f, 0.3f}, 2, 3);
      Tensor grad = Tensor.zeros(arena, 2, 3);
      float loss = Losses.binaryCrossEntropyWithLogits(x, t, grad);
      assertTrue(Float.isFinite(loss));
      double[] xv = doubles(x);
      double[] tv = doubles(t);
      // the plain float64 formula is exact enough except at ±80, where it saturates
      double[] middle = {xv[1], xv[2], xv[3], xv[5]};
      double[] middleT = {tv[1], tv[2], tv[3], tv[5]};
      double sumMiddle = TrainingReference.binaryCrossEntropyWithLogits(middle, middleT) * 4;
      double extremes = Math.log1p(Math.exp(-80)) + Math.log1p(Math.exp(-80)); // both ≈ 0
      assertEquals((sumMiddle + extremes) / 6, loss, TOLERANCE);
      double[] g = doubles(grad);
      for (int i = 0; i < 6; i++) {
        double sigmoid = 1 / (1 + Math.exp(-xv[i]));
        assertEquals((sigmoid - tv[i]) / 6, g[i], Tolerances.BINARY_CROSS_ENTROPY_GRADIENT,
            "gradient " + i);
      }
    }
  }

  @Test
  void lossErrorsNameTheArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor logits = Tensor.zeros(arena, 2, 5);
      var e = assertThrows(IllegalArgumentException.class,
          () -> Losses.crossEntropy(logits, new long[] {1, 5}, null));
      assertEquals("labels[1]: expected 0 <= label < 5 or -100 (ignored), got 5", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Losses.crossEntropy(logits, new long[] {1}, null));
      assertEquals("labels: expected 2 labels (one per row of logits (2, 5)), got 1",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Losses.meanSquaredError(logits, Tensor.zeros(arena, 5, 2), null));
      assertEquals("target: expected shape (2, 5) (the shape of prediction), got (5, 2)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Losses.crossEntropy(logits, new long[] {1, 2}, Tensor.zeros(arena, 10)));
      assertEquals("gradient: expected shape (2, 5) (the shape of logits), got (10,)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> CrossEntropyOptions.DEFAULT.labelSmoothing(1f));
      assertEquals("labelSmoothing: expected 0 <= e < 1, got 1.0", e.getMessage());
    }
  }

  /** A parameter with seeded values and a gradient filled per step. */
  static Parameter parameter(Arena arena, long seed, int size) {
    return Parameter.of("p", Tensor.randomNormal(arena, seed, size), Tensor.zeros(arena, size));
  }

  static double[][] gradients(int steps, int size, long seed) {
    Random random = new Random(seed);
    double[][] grads = new double[steps][size];
    for (double[] g : grads) {
      for (int i = 0; i < size; i++) {
        g[i] = (float) random.nextGaussian();
      }
    }
    return grads;
  }

  static void run(Optimizer optimizer, Parameter p, double[][] grads) {
    for (double[] g : grads) {
      float[] f = new float[g.length];
      for (int i = 0; i < g.length; i++) {
        f[i] = (float) g[i];
      }
      p.grad().copyFrom(Tensor.fromArray(Arena.ofAuto(), f, f.length));
      optimizer.step();
    }
  }

  @ParameterizedTest(name = "momentum={0} dampening={1} decay={2} nesterov={3}")
  @CsvSource({"0, 0, 0, false", "0.9, 0, 0, false", "0.9, 0, 0.01, true", "0.5, 0.3, 0.1, false"})
  void sgdFollowsPyTorchsRule(double momentum, double dampening, double decay, boolean nesterov) {
    try (Arena arena = Arena.ofConfined()) {
      Parameter p = parameter(arena, 4, 1001);
      double[] start = doubles(p.data());
      double[][] grads = gradients(5, 1001, 7);
      try (Sgd sgd = Sgd.builder(List.of(p)).learningRate(0.05).momentum(momentum)
          .dampening(dampening).weightDecay(decay).nesterov(nesterov).build()) {
        run(sgd, p, grads);
        assertEquals(5, sgd.steps());
      }
      assertClose(TrainingReference.sgd(start, grads, 0.05, momentum, dampening, decay, nesterov),
          doubles(p.data()), Tolerances.OPTIMIZER_STEPS, "sgd");
    }
  }

  @ParameterizedTest(name = "decay={0} decoupled={1}")
  @CsvSource({"0, false", "0.1, false", "0.1, true"})
  void adamAndAdamWFollowPyTorchsRule(double decay, boolean decoupled) {
    try (Arena arena = Arena.ofConfined()) {
      Parameter p = parameter(arena, 5, 777);
      double[] start = doubles(p.data());
      double[][] grads = gradients(6, 777, 8);
      Adam.Builder builder = decoupled ? Adam.adamW(List.of(p)) : Adam.builder(List.of(p));
      try (Adam adam = builder.learningRate(0.01).betas(0.8, 0.95).eps(1e-6).weightDecay(decay)
          .build()) {
        run(adam, p, grads);
      }
      assertClose(TrainingReference.adam(start, grads, 0.01, 0.8, 0.95, 1e-6, decay, decoupled),
          doubles(p.data()), Tolerances.OPTIMIZER_STEPS, "adam");
    }
  }

  @Test
  void optimizerArgumentsAreChecked() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter p = parameter(arena, 1, 3);
      var e = assertThrows(IllegalArgumentException.class,
          () -> Sgd.builder(List.of(p)).nesterov(true).build());
      assertEquals("nesterov: needs momentum > 0 and dampening 0, got momentum 0.0 and dampening"
          + " 0.0", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Adam.builder(List.of(p)).betas(0.9, 1.0));
      assertEquals("beta1, beta2: expected values in [0, 1), got 0.9 and 1.0", e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> Sgd.builder(List.of()));
      assertEquals("parameters: expected at least one parameter", e.getMessage());
      Sgd sgd = Sgd.builder(List.of(p)).build();
      sgd.close();
      var closed = assertThrows(IllegalStateException.class, sgd::step);
      assertEquals("Sgd: the optimizer is closed", closed.getMessage());
    }
  }

  @Test
  void clippingByGlobalNormReturnsTheNormBeforeAndScalesAllGradients() {
    try (Arena arena = Arena.ofConfined()) {
      Parameter a = Parameter.of("a", Tensor.zeros(arena, 2),
          Tensor.fromArray(arena, new float[] {3, 0}, 2));
      Parameter b = Parameter.of("b", Tensor.zeros(arena, 1),
          Tensor.fromArray(arena, new float[] {4}, 1));
      double exact = Tolerances.GLOBAL_NORM_EXACT;
      float clipped = (float) Tolerances.CLIPPED_GRADIENT;
      assertEquals(5.0, GradientClipping.globalNorm(List.of(a, b)), exact);
      assertEquals(5.0, GradientClipping.clipByGlobalNorm(List.of(a, b), 1.0), exact);
      assertEquals(1.0, GradientClipping.globalNorm(List.of(a, b)), clipped);
      assertEquals(0.6f, a.grad().get(0), clipped);
      assertEquals(0.8f, b.grad().get(0), clipped);
      // below the limit: untouched
      assertEquals(1.0, GradientClipping.clipByGlobalNorm(List.of(a, b), 10.0), clipped);
      assertEquals(0.6f, a.grad().get(0), clipped);
      GradientClipping.clipByValue(List.of(a, b), 0.7);
      assertEquals(0.7f, b.grad().get(0));
      assertEquals(0.6f, a.grad().get(0), clipped);
    }
  }

  @Test
  void schedulesGiveTheDocumentedRates() {
    double few = Tolerances.DOUBLE_FEW_OPERATIONS;
    LearningRateSchedule step = LearningRateSchedule.step(0.1, 10, 0.5);
    assertEquals(0.1, step.rate(9), few);
    assertEquals(0.05, step.rate(10), few);
    assertEquals(0.025, step.rate(25), few);
    LearningRateSchedule cosine = LearningRateSchedule.cosine(1.0, 100, 0.0);
    assertEquals(1.0, cosine.rate(0), few);
    assertEquals(0.5, cosine.rate(50), few);
    assertEquals(0.0, cosine.rate(100), few);
    assertEquals(0.0, cosine.rate(1000), few);
    LearningRateSchedule warm = LearningRateSchedule.linearWarmup(4, cosine);
    assertEquals(0.25 * cosine.rate(4), warm.rate(0), few);
    assertEquals(cosine.rate(4), warm.rate(3), few);
    assertEquals(cosine.rate(7), warm.rate(7), few);
    var e = assertThrows(IllegalArgumentException.class,
        () -> LearningRateSchedule.step(0.1, 0, 0.5));
    assertEquals("stepSize: expected >= 1, got 0", e.getMessage());
  }

  @Test
  void initialisersHaveTheirDefiningProperties() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor wide = Initializers.orthogonal(Tensor.zeros(arena, 5, 12), 2.0, 1);
      Tensor tall = Initializers.orthogonal(Tensor.zeros(arena, 12, 5), 1.0, 1);
      checkOrthonormal(doubles(wide), 5, 12, 2.0, true);
      checkOrthonormal(doubles(tall), 12, 5, 1.0, false);
      Tensor xavier = Initializers.xavierUniform(Tensor.zeros(arena, 30, 20), 1.0, 3);
      double bound = Math.sqrt(6.0 / 50);
      double max = 0;
      for (float v : xavier.toArray()) {
        assertTrue(Math.abs(v) <= bound, "within the Xavier bound: " + v);
        max = Math.max(max, Math.abs(v));
      }
      assertTrue(max > 0.9 * bound, "fills the range");
      Tensor again = Initializers.xavierUniform(Tensor.zeros(arena, 30, 20), 1.0, 3);
      org.junit.jupiter.api.Assertions.assertArrayEquals(xavier.toArray(), again.toArray());
      var e = assertThrows(IllegalArgumentException.class,
          () -> Initializers.orthogonal(Tensor.zeros(arena, 4), 1, 1));
      assertEquals("tensor: expected at least 2 dimensions, got shape (4,)", e.getMessage());
    }
  }

  private static void checkOrthonormal(double[] m, int rows, int columns, double gain,
      boolean byRows) {
    int count = byRows ? rows : columns;
    for (int a = 0; a < count; a++) {
      for (int b = 0; b < count; b++) {
        double dot = 0;
        int length = byRows ? columns : rows;
        for (int k = 0; k < length; k++) {
          double x = byRows ? m[a * columns + k] : m[k * columns + a];
          double y = byRows ? m[b * columns + k] : m[k * columns + b];
          dot += x * y;
        }
        assertEquals(a == b ? gain * gain : 0, dot, Tolerances.ORTHOGONAL_GRAM,
            "Gram matrix at " + a + ", " + b);
      }
    }
  }

  /** In-place scaling through the public API. */
  static final class TensorScale {
    static void scale(Tensor t, float factor) {
      org.seq4j.TensorOps.scale(t, factor, t);
    }
  }
}
