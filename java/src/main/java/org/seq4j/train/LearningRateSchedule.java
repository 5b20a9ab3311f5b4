package org.seq4j.train;

/**
 * The learning rate as a function of the step (0-based): set it before each step with {@code
 * optimizer.setLearningRate(schedule.rate(optimizer.steps()))}, or attach it with {@link
 * Scheduler#of(Optimizer, LearningRateSchedule)}. These are absolute rates; for a schedule that
 * scales each parameter group's own base rate, see {@link Scheduler.Rule}.
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

  /**
   * A linear warm-up to {@code peak} ({@code peak·(s + 1)/warmupSteps} at step {@code s <
   * warmupSteps}), then cosine annealing from {@code peak} to {@code minimum} at {@code
   * totalSteps}, then {@code minimum}.
   */
  static LearningRateSchedule warmupCosine(double peak, long warmupSteps, long totalSteps,
      double minimum) {
    requireRate(peak, "peak");
    requireRate(minimum, "minimum");
    if (warmupSteps < 0) {
      throw new IllegalArgumentException("warmupSteps: expected >= 0, got " + warmupSteps);
    }
    if (totalSteps <= warmupSteps) {
      throw new IllegalArgumentException("totalSteps: expected > warmupSteps (" + warmupSteps
          + "), got " + totalSteps);
    }
    long decay = totalSteps - warmupSteps;
    return step -> step < warmupSteps ? peak * (step + 1) / warmupSteps
        : step >= totalSteps ? minimum
        : minimum + (peak - minimum) * (1 + Math.cos(Math.PI * (step - warmupSteps) / decay)) / 2;
  }

  private static void requireRate(double rate, String name) {
    if (!(rate >= 0) || Double.isInfinite(rate)) {
      throw new IllegalArgumentException(name + ": expected a finite value >= 0, got " + rate);
    }
  }
}
