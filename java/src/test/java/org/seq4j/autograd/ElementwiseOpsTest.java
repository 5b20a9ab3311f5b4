package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.function.DoubleBinaryOperator;
import java.util.function.DoubleUnaryOperator;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.ActivationReference;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.BroadcastReference;
import org.seq4j.reference.Tolerances;

class ElementwiseOpsTest {
  private static final double FORWARD = Tolerances.ELEMENTWISE_FORWARD;
  private static final double BACKWARD = Tolerances.ELEMENTWISE_BACKWARD;

  // ---- binary, broadcast

  static Stream<Arguments> binaryCases() {
    long[][][] pairs = {
      {{3, 1, 5}, {4, 1}}, {{2, 3}, {2, 3}}, {{2, 3}, {}}, {{}, {2, 3}}, {{1}, {3, 4}},
      {{5}, {3, 1}}, {{2, 1, 3}, {1, 4, 1}}, {{17}, {17}}, {{3, 4}, {4}}, {{1, 1}, {1}},
      {{0, 3}, {3}}
    };
    String[] ops = {"add", "sub", "mul", "div"};
    List<Arguments> cases = new ArrayList<>();
    for (String op : ops) {
      for (long[][] pair : pairs) {
        cases.add(Arguments.of(op, pair[0], pair[1]));
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1} {2}")
  @MethodSource("binaryCases")
  void binaryOpsBroadcastForwardAndBackward(String op, long[] aDims, long[] bDims) {
    int aSize = BroadcastReference.size(aDims);
    int bSize = BroadcastReference.size(bDims);
    double[] a = OpCheck.normal(1, aSize);
    double[] b = op.equals("div") ? OpCheck.awayFromZero(2, bSize, 0.5, false)
        : OpCheck.normal(2, bSize);
    DoubleBinaryOperator f = switch (op) {
      case "add" -> (x, y) -> x + y;
      case "sub" -> (x, y) -> x - y;
      case "mul" -> (x, y) -> x * y;
      default -> (x, y) -> x / y;
    };
    Function<Tensor[], Tensor> call = switch (op) {
      case "add" -> t -> t[0].add(t[1]);
      case "sub" -> t -> t[0].sub(t[1]);
      case "mul" -> t -> t[0].mul(t[1]);
      default -> t -> t[0].div(t[1]);
    };
    OpCheck.check(op + " " + java.util.Arrays.toString(aDims) + " "
            + java.util.Arrays.toString(bDims), new double[][] {a, b},
        new long[][] {aDims, bDims}, BroadcastReference.shape(aDims, bDims), call,
        v -> BroadcastReference.apply(v[0], aDims, v[1], bDims, f), FORWARD, BACKWARD);
  }

  @Test
  void aLongBroadcastRowTakesTheStridedPath() {
    // (3, 1, 70) with (4, 1): an inner row of 70 broadcast against a column, both directions
    long[] aDims = {3, 1, 70};
    long[] bDims = {4, 1};
    OpCheck.check("mul long rows", new double[][] {OpCheck.normal(3, 210), OpCheck.normal(4, 4)},
        new long[][] {aDims, bDims}, new long[] {3, 4, 70}, t -> t[0].mul(t[1]),
        v -> BroadcastReference.apply(v[0], aDims, v[1], bDims, (x, y) -> x * y), FORWARD,
        BACKWARD);
  }

  // ---- unary and scalar

  record Unary(String name, Function<Tensor, Tensor> op, DoubleUnaryOperator reference,
      boolean positive) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Unary> unaryCases() {
    return Stream.of(
        new Unary("add(2.5)", t -> t.add(2.5f), x -> x + 2.5, false),
        new Unary("sub(0.75)", t -> t.sub(0.75f), x -> x - 0.75, false),
        new Unary("mul(-1.5)", t -> t.mul(-1.5f), x -> x * -1.5, false),
        new Unary("div(3)", t -> t.div(3f), x -> x / 3, false),
        new Unary("neg", Tensor::neg, x -> -x, false),
        new Unary("pow(2)", t -> t.pow(2f), x -> x * x, false),
        new Unary("pow(3)", t -> t.pow(3f), x -> x * x * x, false),
        new Unary("pow(-1)", t -> t.pow(-1f), x -> 1 / x, true),
        new Unary("pow(0.5)", t -> t.pow(0.5f), Math::sqrt, true),
        new Unary("sqrt", Tensor::sqrt, Math::sqrt, true),
        new Unary("exp", Tensor::exp, Math::exp, false),
        new Unary("log", Tensor::log, Math::log, true),
        new Unary("tanh", Tensor::tanh,
            x -> (Math.exp(2 * x) - 1) / (Math.exp(2 * x) + 1), false),
        new Unary("sigmoid", Tensor::sigmoid, x -> 1 / (1 + Math.exp(-x)), false),
        new Unary("relu", Tensor::relu, ActivationReference::relu, false),
        new Unary("gelu", Tensor::gelu, ActivationReference::gelu, false),
        new Unary("gelu(tanh)", t -> t.gelu("tanh"), ActivationReference::geluTanh, false),
        new Unary("abs", Tensor::abs, x -> x < 0 ? -x : x, false),
        new Unary("clamp(-0.5, 0.7)", t -> t.clamp(-0.5f, 0.7f),
            x -> x < -0.5 ? -0.5 : x > 0.7 ? 0.7 : x, false));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("unaryCases")
  void unaryOpsForwardAndBackward(Unary unary) {
    long[][] shapes = {{3, 1, 5}, {17}, {}, {2, 0}};
    for (long[] dims : shapes) {
      int n = BroadcastReference.size(dims);
      // away from 0 (kinks of relu, abs; poles of log, 1/x) by more than the finite step
      double[] x = unary.positive ? OpCheck.awayFromZero(5, n, 0.3, true)
          : OpCheck.awayFromZero(5, n, 0.05, false);
      for (int i = 0; i < n; i++) {
        x[i] *= unary.positive ? 1 : 1.6;
      }
      OpCheck.check(unary.name + " " + java.util.Arrays.toString(dims), new double[][] {x},
          new long[][] {dims}, dims, t -> unary.op.apply(t[0]), v -> {
            double[] y = new double[v[0].length];
            for (int i = 0; i < y.length; i++) {
              y[i] = unary.reference.applyAsDouble(v[0][i]);
            }
            return y;
          }, FORWARD, BACKWARD);
    }
  }

  @Test
  void powWithExponentZeroIsOneWithGradientZero() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {0f, 2f, -3f}, 3).requiresGrad(true);
      Tensor y = x.pow(0f);
      assertArrayEquals(new float[] {1f, 1f, 1f}, y.toArray());
      y.sum().backward();
      assertArrayEquals(new float[] {0f, 0f, 0f}, x.grad().toArray());
    }
  }

  private static void assertArrayEquals(float[] expected, float[] actual) {
    org.junit.jupiter.api.Assertions.assertArrayEquals(expected, actual);
  }

  // ---- NaN and Inf

  @Test
  void nanAndInfPropagateAsInPyTorch() {
    try (Arena arena = Arena.ofConfined()) {
      float nan = Float.NaN;
      Tensor x = Tensor.fromArray(arena, new float[] {nan, -1f, 0f, 2f}, 4);
      Tensor y = Tensor.fromArray(arena, new float[] {1f, 0f, 0f, nan}, 4);
      assertArrayEquals(new float[] {nan, -1f, 0f, nan}, x.add(y).toArray());
      assertArrayEquals(new float[] {nan, Float.NEGATIVE_INFINITY, nan, nan},
          x.div(y).toArray());
      assertArrayEquals(new float[] {nan, 0f, 0f, 2f}, x.relu().toArray());
      assertArrayEquals(new float[] {nan, nan, Float.NEGATIVE_INFINITY, (float) Math.log(2)},
          x.log().toArray());
      assertArrayEquals(new float[] {nan, -0.5f, 0f, 0.5f}, x.clamp(-0.5f, 0.5f).toArray());
      assertArrayEquals(new float[] {nan, nan, 0f, (float) Math.sqrt(2)}, x.sqrt().toArray());
      assertTrue(Float.isNaN(x.exp().toArray()[0]));
      assertTrue(Float.isNaN(x.sigmoid().toArray()[0]));
      assertTrue(Float.isNaN(x.tanh().toArray()[0]));
      assertTrue(Float.isNaN(x.gelu().toArray()[0]));
      Tensor big = Tensor.fromArray(arena, new float[] {100f, -200f}, 2);
      assertArrayEquals(new float[] {Float.POSITIVE_INFINITY, 0f}, big.exp().toArray());
      assertArrayEquals(new float[] {1f, 0f}, big.sigmoid().toArray());
    }
  }

  @Test
  void aNanGradientFlowsBack() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {Float.NaN, 1f}, 2).requiresGrad(true);
      x.mul(x).sum().backward();
      assertTrue(Float.isNaN(x.grad().toArray()[0]));
      assertEquals(2f, x.grad().toArray()[1]);
    }
  }

  // ---- composition

  @Test
  void twoGradientContributionsToOneTensorAdd() {
    long[] dims = {3, 4};
    double[] xs = OpCheck.rounded(OpCheck.normal(7, 12));
    double[] ys = OpCheck.rounded(OpCheck.normal(8, 12));
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Arrays64.tensor(arena, xs, dims).requiresGrad(true);
      Tensor y = Arrays64.tensor(arena, ys, dims).requiresGrad(true);
      Tensor loss = x.mul(y).add(x).sum();
      assertEquals(0, loss.shape().rank());
      loss.backward();
      double[] expectedX = new double[12];
      for (int i = 0; i < 12; i++) {
        expectedX[i] = ys[i] + 1;
      }
      Arrays64.assertClose(expectedX, Arrays64.doubles(x.grad()), BACKWARD, "dx = y + 1");
      Arrays64.assertClose(xs, Arrays64.doubles(y.grad()), BACKWARD, "dy = x");
    }
  }

  @Test
  void aTensorUsedTwiceInOneOpAndAcrossOps() {
    double[] xs = OpCheck.rounded(OpCheck.normal(9, 5));
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Arrays64.tensor(arena, xs, 5).requiresGrad(true);
      Tensor square = x.mul(x);
      // square feeds two ops: its gradient is the sum of both
      square.exp().add(square.mul(3f)).sum().backward();
      double[] expected = new double[5];
      for (int i = 0; i < 5; i++) {
        expected[i] = (Math.exp(xs[i] * xs[i]) + 3) * 2 * xs[i];
      }
      Arrays64.assertClose(expected, Arrays64.doubles(x.grad()), BACKWARD, "d(e^x² + 3x²)");
    }
  }

  @Test
  void gradientsChainThroughSliceAndReshape() {
    double[] xs = OpCheck.rounded(OpCheck.normal(10, 12));
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Arrays64.tensor(arena, xs, 4, 3).requiresGrad(true);
      Tensor b = Tensor.fromArray(arena, new float[] {1f, 2f}, 2, 1);
      // rows 1 and 2, as (2, 3), times a broadcast column, flattened, exp, summed
      x.slice(1, 3).reshape(2, 3).mul(b).reshape(6).exp().sum().backward();
      double[] expected = new double[12];
      for (int i = 3; i < 9; i++) {
        double scale = i < 6 ? 1 : 2;
        expected[i] = scale * Math.exp(scale * xs[i]);
      }
      Arrays64.assertClose(expected, Arrays64.doubles(x.grad()), BACKWARD, "through views");
    }
  }

  @Test
  void aLeafGradientAccumulatesOverBackwards() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {1f, 2f}, 2).requiresGrad(true);
      x.mul(2f).sum().backward();
      x.mul(3f).sum().backward();
      assertArrayEquals(new float[] {5f, 5f}, x.grad().toArray());
    }
  }

  // ---- recording, arenas, in-place changes

  @Test
  void noGradRecordsNothing() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 2, 3).requiresGrad(true);
      Tensor y = Tensor.ones(arena, 3).requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        assertFalse(x.add(y).requiresGrad());
        assertFalse(x.mul(2f).exp().requiresGrad());
        assertFalse(x.gelu().requiresGrad());
        assertFalse(x.sum().requiresGrad());
      }
      assertTrue(x.add(y).requiresGrad());
      assertFalse(Tensor.ones(arena, 2).exp().requiresGrad());
      assertTrue(x.exp().isLeaf() == false);
    }
  }

  @Test
  void resultsLiveInTheReceiversArena() {
    try (Arena first = Arena.ofConfined(); Arena second = Arena.ofConfined()) {
      Tensor x = Tensor.ones(first, 2, 3);
      Tensor y = Tensor.ones(second, 3);
      assertSame(first, x.add(y).arena());
      assertSame(second, y.add(x).arena());
      assertSame(first, x.exp().arena());
    }
  }

  @Test
  void anInPlaceChangeToASavedInputIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {1f, 2f}, 2).requiresGrad(true);
      Tensor loss = x.log().sum();
      x.fill(3f);
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().startsWith("Tensor.log:"), e.getMessage());
    }
  }

  @Test
  void anInPlaceChangeToASavedOutputIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {1f, 2f}, 2).requiresGrad(true);
      Tensor y = x.exp();
      Tensor loss = y.mul(2f).sum();
      y.set(0f, 1);
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().startsWith("Tensor.exp:"), e.getMessage());
    }
  }

  @Test
  void anInPlaceChangeToAMulOperandIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.fromArray(arena, new float[] {1f, 2f}, 2).requiresGrad(true);
      Tensor w = Tensor.fromArray(arena, new float[] {3f, 4f}, 2);
      Tensor loss = x.mul(w).sum();
      w.fill(0f);
      IllegalStateException e = assertThrows(IllegalStateException.class, loss::backward);
      assertTrue(e.getMessage().startsWith("Tensor.mul:"), e.getMessage());
    }
  }

  // ---- errors

  @Test
  void errorsNameTheArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.ones(arena, 2, 3);
      NullPointerException npe = assertThrows(NullPointerException.class, () -> x.add(null));
      assertEquals("other", npe.getMessage());
      assertThrows(NullPointerException.class, () -> x.mul((Tensor) null));
      IllegalArgumentException broadcast = assertThrows(IllegalArgumentException.class,
          () -> x.add(Tensor.ones(arena, 4, 3)));
      assertTrue(broadcast.getMessage().startsWith(
          "other: cannot broadcast shape (4, 3) with (2, 3) (the receiver's)"),
          broadcast.getMessage());
      assertThrows(IllegalArgumentException.class, () -> x.mul(Tensor.ones(arena, 2)));
      IllegalArgumentException approximate = assertThrows(IllegalArgumentException.class,
          () -> x.gelu("erf"));
      assertTrue(approximate.getMessage().startsWith("approximate:"));
      assertThrows(NullPointerException.class, () -> x.gelu(null));
      IllegalArgumentException bounds = assertThrows(IllegalArgumentException.class,
          () -> x.clamp(Float.NaN, 1f));
      assertTrue(bounds.getMessage().startsWith("min, max:"));
    }
  }

  @Test
  void aReceiverWithoutArenaOrClosedIsNamed() {
    Tensor closed;
    Tensor other;
    try (Arena arena = Arena.ofConfined()) {
      closed = Tensor.ones(arena, 2);
      try (Arena live = Arena.ofConfined()) {
        Tensor foreign = Tensor.ofSegment(live.allocate(8, 4), 2);
        IllegalArgumentException e =
            assertThrows(IllegalArgumentException.class, foreign::exp);
        assertTrue(e.getMessage().startsWith("tensor: it has no arena"), e.getMessage());
        Tensor owned = Tensor.ones(live, 2);
        // a foreign operand is fine: the result goes to the receiver's arena
        assertArrayEquals(new float[] {1f, 1f}, owned.add(foreign).toArray());
      }
    }
    IllegalStateException e = assertThrows(IllegalStateException.class, closed::exp);
    assertEquals("tensor: the tensor's arena is closed", e.getMessage());
    try (Arena arena = Arena.ofConfined()) {
      other = Tensor.ones(arena, 2);
      IllegalStateException o =
          assertThrows(IllegalStateException.class, () -> other.add(closed));
      assertEquals("other: the tensor's arena is closed", o.getMessage());
    }
  }
}
