package org.seq4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;
import org.seq4j.reference.Tolerances;

/** Schedules against values computed by hand, per group relative to each base rate. */
class SchedulerTest {
  static final double FEW = Tolerances.DOUBLE_FEW_OPERATIONS;

  static Sgd twoGroups(Arena arena) {
    Parameter a = Parameter.of("a", Tensor.zeros(arena, 2), Tensor.zeros(arena, 2));
    Parameter b = Parameter.of("b", Tensor.zeros(arena, 2), Tensor.zeros(arena, 2));
    return Sgd.builder().group(List.of(a), g -> g.learningRate(0.1))
        .group(List.of(b), g -> g.learningRate(0.02)).build();
  }

  @Test
  void rulesGiveTheHandComputedRates() {
    Scheduler.Rule linear = Scheduler.Rule.linear(0.25, 1.0, 4);
    assertEquals(0.025, linear.rate(0.1, 0), FEW);
    assertEquals(0.04375, linear.rate(0.1, 1), FEW); // 0.1·(0.25 + 0.75/4)
    assertEquals(0.1, linear.rate(0.1, 4), FEW);
    assertEquals(0.1, linear.rate(0.1, 9), FEW);
    Scheduler.Rule cosine = Scheduler.Rule.cosine(10, 0.001);
    assertEquals(0.1, cosine.rate(0.1, 0), FEW);
    assertEquals(0.0505, cosine.rate(0.1, 5), FEW); // 0.001 + 0.099·(1 + 0)/2
    assertEquals(0.001 + 0.099 * (1 + Math.sqrt(0.5)) / 2,
        Scheduler.Rule.cosine(8, 0.001).rate(0.1, 2), FEW); // cos(π/4)
    assertEquals(0.001, cosine.rate(0.1, 10), FEW);
    assertEquals(0.001, cosine.rate(0.1, 50), FEW);
    Scheduler.Rule step = Scheduler.Rule.step(3, 0.5);
    assertEquals(0.2, step.rate(0.2, 2), FEW);
    assertEquals(0.1, step.rate(0.2, 3), FEW);
    assertEquals(0.025, step.rate(0.2, 9), FEW);
    Scheduler.Rule warm = Scheduler.Rule.warmupCosine(4, 12, 0.1);
    assertEquals(0.025, warm.rate(0.1, 0), FEW); // 0.1·1/4
    assertEquals(0.1, warm.rate(0.1, 3), FEW);
    assertEquals(0.1, warm.rate(0.1, 4), FEW); // the cosine's start
    assertEquals(0.055, warm.rate(0.1, 8), FEW); // 0.01 + 0.09·(1 + cos(π/2))/2
    assertEquals(0.01, warm.rate(0.1, 12), FEW);
    Scheduler.Rule sequential = Scheduler.Rule.sequential(List.of(linear, step), 4);
    assertEquals(0.025, sequential.rate(0.1, 0), FEW);
    assertEquals(0.1, sequential.rate(0.1, 4), FEW); // step's own step 0
    assertEquals(0.05, sequential.rate(0.1, 7), FEW); // step's step 3
    assertEquals(0.3, Scheduler.Rule.lambda(s -> 1.5 * s).rate(0.1, 2), FEW);
    LearningRateSchedule absolute = LearningRateSchedule.warmupCosine(0.2, 2, 6, 0.02);
    assertEquals(0.1, absolute.rate(0), FEW);
    assertEquals(0.2, absolute.rate(2), FEW);
    assertEquals(0.11, absolute.rate(4), FEW); // 0.02 + 0.18·(1 + cos(π/2))/2
    assertEquals(0.02, absolute.rate(6), FEW);
    var e = assertThrows(IllegalArgumentException.class,
        () -> Scheduler.Rule.sequential(List.of(linear, step), 4, 5));
    assertEquals("milestones: expected 1 milestones (one fewer than the 2 rules), got 2",
        e.getMessage());
  }

  @Test
  void aSchedulerDrivesEveryGroupFromItsOwnBaseRate() {
    try (Arena arena = Arena.ofConfined(); Sgd sgd = twoGroups(arena)) {
      Scheduler scheduler = Scheduler.of(sgd, Scheduler.Rule.linear(0.5, 1.0, 2));
      assertEquals(List.of(0.05, 0.01), scheduler.lastRates(), "step 0 is set at once");
      scheduler.step();
      assertEquals(0.075, sgd.groups().get(0).learningRate(), FEW);
      assertEquals(0.015, sgd.groups().get(1).learningRate(), FEW);
      scheduler.step();
      scheduler.step();
      assertEquals(List.of(0.1, 0.02), scheduler.lastRates());
      assertEquals(3, scheduler.count());
      scheduler.restoreCount(0);
      assertEquals(List.of(0.05, 0.01), scheduler.lastRates());
    }
  }

  @Test
  void anAbsoluteScheduleLeadsTheFirstGroupAndScalesTheOthers() {
    try (Arena arena = Arena.ofConfined(); Sgd sgd = twoGroups(arena)) {
      Scheduler scheduler = Scheduler.of(sgd, LearningRateSchedule.step(0.2, 1, 0.5));
      assertEquals(0.2, sgd.learningRate(), FEW);
      assertEquals(0.04, sgd.groups().get(1).learningRate(), FEW);
      scheduler.step();
      assertEquals(0.1, sgd.learningRate(), FEW);
      assertEquals(0.02, sgd.groups().get(1).learningRate(), FEW);
    }
  }
}
