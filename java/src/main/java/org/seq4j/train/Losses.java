package org.seq4j.train;

import java.lang.foreign.MemorySegment;
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
