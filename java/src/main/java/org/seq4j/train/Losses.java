package org.seq4j.train;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;

/**
 * Losses in native code. Each returns the mean loss and, when {@code gradient} is not null, writes
 * the gradient of that mean loss with respect to its first argument into it (same shape): the
 * forward and the backward in one pass, ready to feed a layer's {@code backward}. The
 * gradient must be writable and share no memory with the loss's inputs.
 *
 * <pre>{@code
 * Tensor grad = Tensor.zeros(arena, logits.shape().dims());
 * float loss = Losses.crossEntropy(logits, labels, CrossEntropyOptions.DEFAULT, grad);
 * }</pre>
 *
 * <p>The autograd forms ({@link #crossEntropy(Tensor, long[])}, {@link #nllLoss}, {@link
 * #mseLoss}) return the loss as a scalar tensor recorded in the graph instead:
 *
 * <pre>{@code
 * Tensor loss = Losses.crossEntropy(model.forward(x), targets);
 * loss.backward();
 * }</pre>
 */
public final class Losses {
  private Losses() {}

  /** Options of {@link #crossEntropy}: PyTorch's {@code ignore_index} and {@code label_smoothing}. */
  public record CrossEntropyOptions(long ignoreIndex, float labelSmoothing) {
    /** No smoothing; rows labelled -100 are ignored, as in PyTorch. */
    public static final CrossEntropyOptions DEFAULT = new CrossEntropyOptions(-100, 0f);

    /** Checks the smoothing. */
    public CrossEntropyOptions {
      if (!(labelSmoothing >= 0f && labelSmoothing < 1f)) {
        throw new IllegalArgumentException(
            "labelSmoothing: expected 0 <= e < 1, got " + labelSmoothing);
      }
    }

    /** These options with another ignored label. */
    public CrossEntropyOptions ignoreIndex(long label) {
      return new CrossEntropyOptions(label, labelSmoothing);
    }

    /** These options with label smoothing {@code e}. */
    public CrossEntropyOptions labelSmoothing(float e) {
      return new CrossEntropyOptions(ignoreIndex, e);
    }
  }

  /** {@code mean((prediction - target)²)}; prediction and target have one shape. */
  public static float meanSquaredError(Tensor prediction, Tensor target, Tensor gradient) {
    requireSameShape(prediction, "prediction", target, "target");
    requireGradient(prediction, "prediction", gradient);
    requireDisjoint(gradient, target, "target");
    return NativeBindings.mseLoss(gradientSegment(gradient), prediction.segment(),
        target.segment(), prediction.size());
  }

  /**
   * Softmax cross-entropy of {@code logits} whose last dimension is the vocabulary (every other
   * dimension is a row) against one label per row, averaged over the rows not ignored.
   *
   * @param logits {@code (..., V)}
   * @param labels one per row, each in {@code [0, V)} or equal to the ignored label
   * @param options ignored label and label smoothing
   * @param gradient null, or a tensor shaped like {@code logits} that receives the gradient
   */
  public static float crossEntropy(Tensor logits, long[] labels, CrossEntropyOptions options,
      Tensor gradient) {
    if (logits == null) {
      throw new NullPointerException("logits");
    }
    if (logits.shape().rank() < 1 || logits.dim(-1) < 1) {
      throw new IllegalArgumentException(
          "logits: expected (..., V) with V >= 1, got shape " + logits.shape());
    }
    long vocabulary = logits.dim(-1);
    long rows = logits.size() / vocabulary;
    if (labels == null) {
      throw new NullPointerException("labels");
    }
    if (options == null) {
      throw new NullPointerException("options");
    }
    if (labels.length != rows) {
      throw new IllegalArgumentException("labels: expected " + rows + " labels (one per row of "
          + "logits " + logits.shape() + "), got " + labels.length);
    }
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] != options.ignoreIndex() && (labels[i] < 0 || labels[i] >= vocabulary)) {
        throw new IllegalArgumentException("labels[" + i + "]: expected 0 <= label < " + vocabulary
            + " or " + options.ignoreIndex() + " (ignored), got " + labels[i]);
      }
    }
    Checks.usable(logits.segment(), "logits");
    requireGradient(logits, "logits", gradient);
    return NativeBindings.crossEntropyLoss(gradientSegment(gradient), logits.segment(), labels,
        rows, vocabulary, options.ignoreIndex(), options.labelSmoothing());
  }

  /** {@link #crossEntropy(Tensor, long[], CrossEntropyOptions, Tensor)} with the defaults. */
  public static float crossEntropy(Tensor logits, long[] labels, Tensor gradient) {
    return crossEntropy(logits, labels, CrossEntropyOptions.DEFAULT, gradient);
  }

  /**
   * Binary cross-entropy of {@code sigmoid(logits)} against targets in {@code [0, 1]}, computed
   * from the logits so that it never overflows; mean over every element.
   */
  public static float binaryCrossEntropyWithLogits(Tensor logits, Tensor targets,
      Tensor gradient) {
    requireSameShape(logits, "logits", targets, "targets");
    requireGradient(logits, "logits", gradient);
    requireDisjoint(gradient, targets, "targets");
    return NativeBindings.bceWithLogitsLoss(gradientSegment(gradient), logits.segment(),
        targets.segment(), logits.size());
  }

  // ---- autograd forms: a single-element tensor (shape ()) recorded in the graph

  /** PyTorch's default {@code ignore_index}: rows whose target is -100 do not count. */
  public static final long IGNORE_INDEX = -100;

  /**
   * Softmax cross-entropy, mean over the rows, as PyTorch's {@code F.cross_entropy(logits,
   * targets)}: {@code logits} is {@code (N, C)} or {@code (..., C)} (every leading index a row),
   * with one target per row in {@code [0, C)}; rows whose target is {@link #IGNORE_INDEX} do not
   * count (every row ignored gives NaN, as in PyTorch). The result is a scalar (shape {@code ()})
   * in the logits' arena, recorded when the logits require a gradient.
   *
   * @throws IllegalArgumentException if there are no rows, or the number of targets differs
   * @throws IndexOutOfBoundsException naming {@code targets[i]} if one is outside {@code [0, C)}
   */
  public static Tensor crossEntropy(Tensor logits, long[] targets) {
    return crossEntropy(logits, targets, IGNORE_INDEX);
  }

  /** {@link #crossEntropy(Tensor, long[])} with another ignored target. */
  public static Tensor crossEntropy(Tensor logits, long[] targets, long ignoreIndex) {
    long classes = requireRows(logits, "logits", targets, ignoreIndex);
    long rows = targets.length;
    long[] labels = targets.clone();
    int counted = counted(labels, ignoreIndex);
    Tensor loss = Tensor.uninitialized(arenaOf(logits, "logits"));
    float value = NativeBindings.crossEntropyLoss(MemorySegment.NULL, logits.segment(), labels,
        rows, classes, ignoreIndex, 0f);
    loss.segment().set(JAVA_FLOAT, 0, counted == 0 ? Float.NaN : value);
    Autograd.record("Losses.crossEntropy", List.of(logits), List.of(loss), List.of(logits),
        (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[] {null};
          }
          // the fused kernel's gradient of the mean, (softmax − one-hot) / counted, times g
          Tensor grad = Tensor.uninitialized(scratch, logits.shape().dims());
          NativeBindings.crossEntropyLoss(grad.segment(), logits.segment(), labels, rows, classes,
              ignoreIndex, 0f);
          float scale = g[0].segment().get(JAVA_FLOAT, 0);
          if (scale != 1f) {
            NativeBindings.scale(grad.segment(), grad.segment(), scale, grad.size());
          }
          return new Tensor[] {grad};
        });
    return loss;
  }

  /**
   * Negative log-likelihood, mean over the rows, as PyTorch's {@code F.nll_loss(logProbs,
   * targets)}: {@code -mean(logProbs[i, targets[i]])} over the rows not ignored, for {@code
   * logProbs} {@code (N, C)} or {@code (..., C)} (typically a {@code logSoftmax(-1)}). Result,
   * arena, ignored rows and errors as {@link #crossEntropy(Tensor, long[])}.
   */
  public static Tensor nllLoss(Tensor logProbs, long[] targets) {
    return nllLoss(logProbs, targets, IGNORE_INDEX);
  }

  /** {@link #nllLoss(Tensor, long[])} with another ignored target. */
  public static Tensor nllLoss(Tensor logProbs, long[] targets, long ignoreIndex) {
    long classes = requireRows(logProbs, "logProbs", targets, ignoreIndex);
    long[] labels = targets.clone();
    int counted = counted(labels, ignoreIndex);
    MemorySegment p = logProbs.segment();
    double total = 0;
    for (int i = 0; i < labels.length; i++) {
      if (labels[i] != ignoreIndex) {
        total -= p.getAtIndex(JAVA_FLOAT, i * classes + labels[i]);
      }
    }
    Tensor loss = Tensor.uninitialized(arenaOf(logProbs, "logProbs"));
    loss.segment().set(JAVA_FLOAT, 0, (float) (total / counted)); // 0/0: NaN, as PyTorch's
    long[] dims = logProbs.shape().dims();
    Autograd.record("Losses.nllLoss", List.of(logProbs), List.of(loss), List.of(),
        (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[] {null};
          }
          Tensor grad = Tensor.zeros(scratch, dims);
          float share = -g[0].segment().get(JAVA_FLOAT, 0) / counted;
          for (int i = 0; i < labels.length; i++) {
            if (labels[i] != ignoreIndex) {
              grad.segment().setAtIndex(JAVA_FLOAT, i * classes + labels[i], share);
            }
          }
          return new Tensor[] {grad};
        });
    return loss;
  }

  /**
   * Mean squared error {@code mean((input − target)²)}, as PyTorch's {@code F.mse_loss}; both of
   * one shape with at least one element. The result is a scalar (shape {@code ()}) in the input's
   * arena; gradients flow to whichever of the two requires one.
   */
  public static Tensor mseLoss(Tensor input, Tensor target) {
    requireSameShape(input, "input", target, "target");
    long n = input.size();
    MemorySegment x = input.segment();
    MemorySegment t = target.segment();
    double total = 0;
    for (long i = 0; i < n; i++) {
      double d = (double) x.getAtIndex(JAVA_FLOAT, i) - t.getAtIndex(JAVA_FLOAT, i);
      total += d * d;
    }
    Tensor loss = Tensor.uninitialized(arenaOf(input, "input"));
    loss.segment().set(JAVA_FLOAT, 0, (float) (total / n));
    long[] dims = input.shape().dims();
    Autograd.record("Losses.mseLoss", List.of(input, target), List.of(loss),
        List.of(input, target), (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[] {null, null};
          }
          double scale = 2.0 * g[0].segment().get(JAVA_FLOAT, 0) / n;
          Tensor dx = input.requiresGrad() ? Tensor.uninitialized(scratch, dims) : null;
          Tensor dt = target.requiresGrad() ? Tensor.uninitialized(scratch, dims) : null;
          for (long i = 0; i < n; i++) {
            double d = scale * ((double) x.getAtIndex(JAVA_FLOAT, i) - t.getAtIndex(JAVA_FLOAT, i));
            if (dx != null) {
              dx.segment().setAtIndex(JAVA_FLOAT, i, (float) d);
            }
            if (dt != null) {
              dt.segment().setAtIndex(JAVA_FLOAT, i, (float) -d);
            }
          }
          return new Tensor[] {dx, dt};
        });
    return loss;
  }

  /** Checks a (..., C) input against one target per row; returns C. */
  private static long requireRows(Tensor input, String name, long[] targets, long ignoreIndex) {
    if (input == null) {
      throw new NullPointerException(name);
    }
    if (targets == null) {
      throw new NullPointerException("targets");
    }
    Checks.usable(input.segment(), name);
    if (input.shape().rank() < 1 || input.dim(-1) < 1) {
      throw new IllegalArgumentException(name + ": expected (N, C) or (..., C) with C >= 1, got"
          + " shape " + input.shape());
    }
    long classes = input.dim(-1);
    long rows = input.size() / classes;
    if (rows == 0) {
      throw new IllegalArgumentException(name + ": expected at least one row, got shape "
          + input.shape() + " (a mean over zero rows is undefined)");
    }
    if (targets.length != rows) {
      throw new IllegalArgumentException("targets: expected " + rows + " targets (one per row of "
          + name + " " + input.shape() + "), got " + targets.length);
    }
    for (int i = 0; i < targets.length; i++) {
      if (targets[i] != ignoreIndex && (targets[i] < 0 || targets[i] >= classes)) {
        throw new IndexOutOfBoundsException("targets[" + i + "]: expected 0 <= target < "
            + classes + " (or " + ignoreIndex + ", ignored), got " + targets[i]);
      }
    }
    return classes;
  }

  private static int counted(long[] labels, long ignoreIndex) {
    int counted = 0;
    for (long label : labels) {
      counted += label == ignoreIndex ? 0 : 1;
    }
    return counted;
  }

  private static Arena arenaOf(Tensor input, String name) {
    Arena arena = input.arena();
    if (arena == null) {
      throw new IllegalArgumentException(name + ": it has no arena (it was made by"
          + " Tensor.ofSegment over foreign memory), and the loss is allocated in its arena; copy"
          + " it into an arena first (Tensor.copy(arena))");
    }
    return arena;
  }

  private static void requireSameShape(Tensor a, String aName, Tensor b, String bName) {
    if (a == null) {
      throw new NullPointerException(aName);
    }
    if (b == null) {
      throw new NullPointerException(bName);
    }
    if (!a.shape().equals(b.shape())) {
      throw new IllegalArgumentException(bName + ": expected shape " + a.shape() + " (the shape of "
          + aName + "), got " + b.shape());
    }
    if (a.size() == 0) {
      throw new IllegalArgumentException(aName + ": expected at least one element, got shape "
          + a.shape());
    }
    Checks.usable(a.segment(), aName);
    Checks.usable(b.segment(), bName);
  }

  private static void requireGradient(Tensor input, String inputName, Tensor gradient) {
    if (gradient == null) {
      return;
    }
    if (!gradient.shape().equals(input.shape())) {
      throw new IllegalArgumentException("gradient: expected shape " + input.shape()
          + " (the shape of " + inputName + "), got " + gradient.shape());
    }
    Checks.writable(gradient.segment(), "gradient");
    Checks.disjoint(gradient.segment(), "gradient", input.segment(), inputName);
  }

  /** The gradient is written while {@code other} is read: they must not overlap. */
  private static void requireDisjoint(Tensor gradient, Tensor other, String otherName) {
    if (gradient != null) {
      Checks.disjoint(gradient.segment(), "gradient", other.segment(), otherName);
    }
  }

  private static MemorySegment gradientSegment(Tensor gradient) {
    return gradient == null ? MemorySegment.NULL : gradient.segment();
  }
}
