package org.seq4j.train;

/**
 * The learning rate as a function of the step (0-based): set it before each step with {@code
 * optimizer.setLearningRate(schedule.rate(optimizer.steps()))}.
 */
@FunctionalInterface
public interface LearningRateSchedule {
  /** The learning rate of step {@code step} (0-based). */
  double rate(long step);

  /** The same rate at every step. */
  static LearningRateSchedule constant(double rate) {
    requireRate(rate, "rate");
    return step -> rate;
  }

  /** {@code rate · gamma^⌊step / stepSize⌋}, as PyTorch's {@code StepLR}. */
  static LearningRateSchedule step(double rate, long stepSize, double gamma) {
    requireRate(rate, "rate");
    if (stepSize < 1) {
      throw new IllegalArgumentException("stepSize: expected >= 1, got " + stepSize);
    }
    if (!(gamma > 0) || Double.isInfinite(gamma)) {
      throw new IllegalArgumentException("gamma: expected a finite value > 0, got " + gamma);
    }
    return step -> rate * Math.pow(gamma, Math.floorDiv(step, stepSize));
  }

  /**
   * Cosine annealing from {@code rate} to {@code minimum} over {@code totalSteps}, then {@code
   * minimum}, as PyTorch's {@code CosineAnnealingLR} without restarts.
   */
  static LearningRateSchedule cosine(double rate, long totalSteps, double minimum) {
    requireRate(rate, "rate");
    requireRate(minimum, "minimum");
    if (totalSteps < 1) {
      throw new IllegalArgumentException("totalSteps: expected >= 1, got " + totalSteps);
    }
    return step -> step >= totalSteps ? minimum
        : minimum + (rate - minimum) * (1 + Math.cos(Math.PI * step / totalSteps)) / 2;
  }

  /**
   * A linear warm-up: step {@code s < warmupSteps} gets {@code then.rate(warmupSteps) · (s + 1) /
   * warmupSteps}; later steps follow {@code then}.
   */
  static LearningRateSchedule linearWarmup(long warmupSteps, LearningRateSchedule then) {
    if (warmupSteps < 0) {
      throw new IllegalArgumentException("warmupSteps: expected >= 0, got " + warmupSteps);
    }
    java.util.Objects.requireNonNull(then, "then");
    return step -> step < warmupSteps
        ? then.rate(warmupSteps) * (step + 1) / warmupSteps : then.rate(step);
  }

  private static void requireRate(double rate, String name) {
    if (!(rate >= 0) || Double.isInfinite(rate)) {
      throw new IllegalArgumentException(name + ": expected a finite value >= 0, got " + rate);
    }
  }
}
