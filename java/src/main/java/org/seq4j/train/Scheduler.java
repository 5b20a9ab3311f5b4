package org.seq4j.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.LongToDoubleFunction;

/**
 * A learning-rate scheduler attached to an optimizer, as PyTorch's {@code LRScheduler}: when made
 * it sets every group's rate for step 0, and each {@link #step()} (after the optimizer's step, per
 * batch or per epoch as you choose) advances its count and sets the rates again. Every group
 * follows the same {@link Rule} relative to its own {@link ParameterGroup#baseLearningRate() base
 * rate}, so groups with different rates keep their ratio under a multiplicative schedule.
 *
 * <pre>{@code
 * Scheduler schedule = Scheduler.of(adam, Scheduler.Rule.warmupCosine(100, 10_000, 0.01));
 * for (...) { ...; adam.step(); schedule.step(); }
 * }</pre>
 */
public final class Scheduler {
  private final Optimizer optimizer;
  private final Rule rule;
  private long count;

  /** A group's learning rate at a step of the schedule, from the group's base rate. */
  @FunctionalInterface
  public interface Rule {
    /** The learning rate of a group whose base rate is {@code baseRate} at {@code step}. */
    double rate(double baseRate, long step);

    /** {@code baseRate · factor(step)}, as PyTorch's {@code LambdaLR}. */
    static Rule lambda(LongToDoubleFunction factor) {
      Objects.requireNonNull(factor, "factor");
      return (base, step) -> base * factor.applyAsDouble(step);
    }

    /** {@code baseRate · gamma^⌊step / stepSize⌋}, as PyTorch's {@code StepLR}. */
    static Rule step(long stepSize, double gamma) {
      if (stepSize < 1) {
        throw new IllegalArgumentException("stepSize: expected >= 1, got " + stepSize);
      }
      if (!(gamma > 0) || Double.isInfinite(gamma)) {
        throw new IllegalArgumentException("gamma: expected a finite value > 0, got " + gamma);
      }
      return (base, step) -> base * Math.pow(gamma, Math.floorDiv(step, stepSize));
    }

    /**
     * {@code baseRate · (start + (end − start) · min(step, totalSteps) / totalSteps)}, as
     * PyTorch's {@code LinearLR(start_factor, end_factor, total_iters)}.
     */
    static Rule linear(double startFactor, double endFactor, long totalSteps) {
      requireFactor(startFactor, "startFactor");
      requireFactor(endFactor, "endFactor");
      if (totalSteps < 1) {
        throw new IllegalArgumentException("totalSteps: expected >= 1, got " + totalSteps);
      }
      return (base, step) -> base * (startFactor
          + (endFactor - startFactor) * Math.min(step, totalSteps) / totalSteps);
    }

    /**
     * Cosine annealing from the base rate to {@code minimum} (an absolute rate, PyTorch's {@code
     * eta_min}) over {@code totalSteps}: {@code min + (base − min)(1 + cos(π·step/total))/2}, as
     * PyTorch's {@code CosineAnnealingLR}; after {@code totalSteps} it stays at {@code minimum}
     * (PyTorch's would rise again).
     */
    static Rule cosine(long totalSteps, double minimum) {
      ParameterGroup.requireRate(minimum, "minimum");
      if (totalSteps < 1) {
        throw new IllegalArgumentException("totalSteps: expected >= 1, got " + totalSteps);
      }
      return (base, step) -> step >= totalSteps ? minimum
          : minimum + (base - minimum) * (1 + Math.cos(Math.PI * step / totalSteps)) / 2;
    }

    /**
     * {@code rules[i]} from step {@code milestones[i − 1]} on, seeing its steps counted from
     * there, as PyTorch's {@code SequentialLR}: {@code sequential(List.of(warm, cos), 100)}.
     */
    static Rule sequential(List<Rule> rules, long... milestones) {
      List<Rule> copy = List.copyOf(rules);
      if (copy.isEmpty() || milestones.length != copy.size() - 1) {
        throw new IllegalArgumentException("milestones: expected " + (copy.size() - 1)
            + " milestones (one fewer than the " + copy.size() + " rules), got "
            + milestones.length);
      }
      long[] at = milestones.clone();
      for (int i = 0; i < at.length; i++) {
        if (at[i] < 1 || (i > 0 && at[i] <= at[i - 1])) {
          throw new IllegalArgumentException("milestones: expected increasing values >= 1, got "
              + java.util.Arrays.toString(at));
        }
      }
      return (base, step) -> {
        int i = 0;
        while (i < at.length && step >= at[i]) {
          i++;
        }
        return copy.get(i).rate(base, i == 0 ? step : step - at[i - 1]);
      };
    }

    /**
     * A linear warm-up from {@code base/warmupSteps} to the base rate over {@code warmupSteps}
     * (step {@code s} gets {@code base·(s + 1)/warmupSteps}), then cosine annealing to {@code
     * base·minimumFactor} at {@code totalSteps}, then that minimum.
     */
    static Rule warmupCosine(long warmupSteps, long totalSteps, double minimumFactor) {
      if (warmupSteps < 0) {
        throw new IllegalArgumentException("warmupSteps: expected >= 0, got " + warmupSteps);
      }
      if (totalSteps <= warmupSteps) {
        throw new IllegalArgumentException("totalSteps: expected > warmupSteps (" + warmupSteps
            + "), got " + totalSteps);
      }
      requireFactor(minimumFactor, "minimumFactor");
      long decay = totalSteps - warmupSteps;
      return (base, step) -> {
        if (step < warmupSteps) {
          return base * (step + 1) / warmupSteps;
        }
        double min = base * minimumFactor;
        return step >= totalSteps ? min
            : min + (base - min) * (1 + Math.cos(Math.PI * (step - warmupSteps) / decay)) / 2;
      };
    }

    private static void requireFactor(double factor, String name) {
      if (!(factor >= 0) || Double.isInfinite(factor)) {
        throw new IllegalArgumentException(name + ": expected a finite value >= 0, got " + factor);
      }
    }
  }

  private Scheduler(Optimizer optimizer, Rule rule) {
    this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
    this.rule = Objects.requireNonNull(rule, "rule");
    apply();
  }

  /** Attaches {@code rule} to every group of {@code optimizer} and sets the rates of step 0. */
  public static Scheduler of(Optimizer optimizer, Rule rule) {
    return new Scheduler(optimizer, rule);
  }

  /**
   * Attaches an absolute {@link LearningRateSchedule}: the first group gets {@code
   * schedule.rate(step)} and every other group the same multiple of its base rate (see {@link
   * Optimizer#setLearningRate}).
   */
  public static Scheduler of(Optimizer optimizer, LearningRateSchedule schedule) {
    Objects.requireNonNull(optimizer, "optimizer");
    Objects.requireNonNull(schedule, "schedule");
    double first = optimizer.groups().get(0).baseLearningRate();
    return new Scheduler(optimizer, (base, step) -> first == 0 ? schedule.rate(step)
        : base * (schedule.rate(step) / first));
  }

  /** Advances the schedule by one step (or epoch) and sets every group's rate. */
  public void step() {
    count++;
    apply();
  }

  /** Steps taken so far ({@code last_epoch} in PyTorch). */
  public long count() {
    return count;
  }

  /**
   * Sets the count, when resuming from a checkpoint, and the rates of that step.
   *
   * @throws IllegalArgumentException if {@code count} is negative
   */
  public void restoreCount(long count) {
    if (count < 0) {
      throw new IllegalArgumentException("count: expected >= 0, got " + count);
    }
    this.count = count;
    apply();
  }

  /** Every group's current rate, as PyTorch's {@code get_last_lr()}. */
  public List<Double> lastRates() {
    List<Double> rates = new ArrayList<>();
    for (ParameterGroup g : optimizer.groups()) {
      rates.add(g.learningRate());
    }
    return rates;
  }

  /** The optimizer it drives. */
  public Optimizer optimizer() {
    return optimizer;
  }

  private void apply() {
    for (ParameterGroup g : optimizer.groups()) {
      double rate = rule.rate(g.baseLearningRate(), count);
      if (!(rate >= 0) || Double.isInfinite(rate)) {
        throw new IllegalStateException("the schedule gave the learning rate " + rate
            + " at step " + count + " (base rate " + g.baseLearningRate() + ")");
      }
      g.setLearningRate(rate);
    }
  }
}
