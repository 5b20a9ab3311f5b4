package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The tick algorithm: round steps, labels without spurious digits, log ticks. */
class PlotTicksTest {
  private static List<String> labels(Plot.Axis axis) {
    return axis.ticks().stream().map(Plot.Tick::label).toList();
  }

  @Test
  void linearTicksAreRoundAndCoverTheData() {
    Plot.Axis axis = Plot.linearAxis(0.41, 1.02, 8, false, true);
    assertEquals(List.of("0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1", "1.1"), labels(axis));
    assertEquals(0.4, axis.min(), 1e-12);
    assertEquals(1.1, axis.max(), 1e-12);

    assertEquals(List.of("0", "0.2", "0.4", "0.6", "0.8", "1"),
        labels(Plot.linearAxis(0, 1, 8, false, true)));
    assertEquals(List.of("0", "2.5", "5", "7.5", "10"),
        labels(Plot.linearAxis(0, 10, 4, false, true)));
    assertEquals(List.of("-1", "-0.5", "0", "0.5", "1"),
        labels(Plot.linearAxis(-1, 1, 5, false, true)));
    assertEquals(List.of("2e-5", "4e-5", "6e-5", "8e-5", "1e-4"),
        labels(Plot.linearAxis(2.6e-5, 1e-4, 4, false, true)));
    assertEquals(List.of("2.5e-5", "5e-5", "7.5e-5", "1e-4"),
        labels(Plot.linearAxis(2.6e-5, 1e-4, 3, false, true)));
  }

  @Test
  void integerAxesSpanTheDataWithWholeSteps() {
    Plot.Axis epochs = Plot.linearAxis(0, 29, 10, true, false);
    assertEquals(List.of("0", "5", "10", "15", "20", "25"), labels(epochs));
    assertEquals(0, epochs.min());
    assertEquals(29, epochs.max());
    assertEquals(List.of("0", "1", "2", "3"), labels(Plot.linearAxis(0, 3, 10, true, false)));
    assertEquals(List.of("0", "2", "4", "6", "8", "10", "12"),
        labels(Plot.linearAxis(0, 13, 10, true, false)));
  }

  @Test
  void randomRangesGiveNiceStepsAndShortLabels() {
    Random random = new Random(42);
    for (int trial = 0; trial < 2000; trial++) {
      double scale = Math.pow(10, random.nextInt(14) - 7);
      double a = (random.nextDouble() * 2 - 1) * scale;
      double b = a + random.nextDouble() * scale + 1e-3 * scale;
      Plot.Axis axis = Plot.linearAxis(a, b, 8, false, true);
      List<Plot.Tick> ticks = axis.ticks();
      assertTrue(ticks.size() >= 2 && ticks.size() <= 9, a + ".." + b + ": " + ticks);
      assertTrue(axis.min() <= a && axis.max() >= b, a + ".." + b + " in " + axis);
      BigDecimal step = new BigDecimal(ticks.get(1).label())
          .subtract(new BigDecimal(ticks.get(0).label())).stripTrailingZeros();
      String mantissa = step.movePointLeft(step.precision() - step.scale() - 1).toPlainString();
      assertTrue(List.of("1", "2", "2.5", "5").contains(mantissa),
          "step " + step + " for " + a + ".." + b);
      for (Plot.Tick t : ticks) {
        BigDecimal label = new BigDecimal(t.label());
        assertTrue(label.stripTrailingZeros().scale() <= Math.max(0, step.scale()),
            "label " + t.label() + " has more decimals than the step " + step);
        assertEquals(t.value(), label.doubleValue(), step.doubleValue() * 1e-9);
      }
    }
  }

  @Test
  void logTicksAreOneTwoFiveOrDecades() {
    Plot.Axis narrow = Plot.logAxis(0.05, 0.6);
    assertEquals(List.of("0.05", "0.1", "0.2", "0.5", "1"), labels(narrow));
    assertEquals(0.05, narrow.min(), 1e-15);
    assertEquals(1, narrow.max(), 1e-15);
    assertTrue(narrow.log());
    assertEquals(List.of("1e-5", "1e-4", "0.001", "0.01", "0.1", "1", "10").size(),
        labels(Plot.logAxis(2e-5, 3)).size());
    assertEquals(List.of("1e-5", "1e-4", "0.001", "0.01", "0.1", "1", "10"),
        labels(Plot.logAxis(2e-5, 3)));
    List<String> wide = labels(Plot.logAxis(1e-12, 1e6));
    assertEquals(List.of("1e-12", "1e-9", "1e-6", "0.001", "1", "1000", "1e6"), wide);
  }

  @Test
  void formatWritesNoSpuriousDigits() {
    assertEquals("0.3", Plot.format(new BigDecimal("0.30"), false));
    assertEquals("0", Plot.format(new BigDecimal("-0.00"), false));
    assertEquals("1200", Plot.format(new BigDecimal("1.2E+3"), false));
    assertEquals("2.5e-7", Plot.format(new BigDecimal("0.00000025"), true));
    assertEquals("1e6", Plot.format(new BigDecimal("1000000"), true));
  }

  @Test
  void logOnlyWhereThePositiveRangeSpansADecade() {
    double[] narrow = {0.9, 0.5, 0.2, 0.1};
    double[] wide = {0.9, 0.5, 0.2, 0.09};
    assertFalse(Plot.usesLogScale(Plot.Scale.AUTO, narrow), "9x: linear");
    assertTrue(Plot.usesLogScale(Plot.Scale.AUTO, wide), "10x: log");
    assertTrue(Plot.usesLogScale(Plot.Scale.AUTO, new double[] {1, 10}), "exactly 10x: log");
    assertFalse(Plot.usesLogScale(Plot.Scale.AUTO, new double[] {0, 1, 100}), "a zero: linear");
    assertFalse(Plot.usesLogScale(Plot.Scale.AUTO, new double[] {-1, 100}), "negative: linear");
    assertTrue(Plot.usesLogScale(Plot.Scale.AUTO, new double[] {1, Double.NaN, 100}), "NaN skipped");
    assertFalse(Plot.usesLogScale(Plot.Scale.LINEAR, wide));
    assertTrue(Plot.usesLogScale(Plot.Scale.LOG, narrow));
    assertFalse(new Plot("t", "x", "y", true).line("a", narrow).logScale());
    assertTrue(new Plot("t", "x", "y", true).line("a", narrow).line("b", wide).logScale());
    assertFalse(new Plot("t", "x", "y", false).line("a", wide).logScale());
    assertTrue(new Plot("t", "x", "y").line("a", wide).logScale());
  }
}
