package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.Tolerances;

/** Tensor.matmul (torch.matmul semantics) forward and backward against a float64 reference. */
class MatmulOpsTest {

  /**
   * torch.matmul in float64, from the definition: rank-1 operands promoted to a row (left) or a
   * column (right), batch dimensions right-aligned and broadcast, one dot product per output.
   */
  static double[] reference(double[] a, long[] aDims, double[] b, long[] bDims) {
    long[] pa = aDims.length == 1 ? new long[] {1, aDims[0]} : aDims;
    long[] pb = bDims.length == 1 ? new long[] {bDims[0], 1} : bDims;
    int batchRank = Math.max(pa.length, pb.length) - 2;
    long[] batch = new long[batchRank];
    for (int i = 0; i < batchRank; i++) {
      long da = dimFromRight(pa, batchRank - i + 2);
      long db = dimFromRight(pb, batchRank - i + 2);
      batch[i] = Math.max(da, db);
    }
    long m = pa[pa.length - 2];
    long k = pa[pa.length - 1];
    long n = pb[pb.length - 1];
    int batches = GradCheck.size(batch);
    double[] out = new double[(int) (batches * m * n)];
    for (int t = 0; t < batches; t++) {
      long[] bi = GradCheck.unravel(t, batch);
      for (long i = 0; i < m; i++) {
        for (long j = 0; j < n; j++) {
          double sum = 0;
          for (long p = 0; p < k; p++) {
            sum += a[operand(pa, bi, i, p)] * b[operand(pb, bi, p, j)];
          }
          out[(int) ((t * m + i) * n + j)] = sum;
        }
      }
    }
    return out;
  }

  /** The size of the dimension {@code fromRight} places from the end (1 when absent). */
  private static long dimFromRight(long[] dims, int fromRight) {
    int a = dims.length - fromRight;
    return a < 0 ? 1 : dims[a];
  }

  /** The position of element (row, column) of the operand's matrix at batch coordinates bi. */
  private static int operand(long[] dims, long[] bi, long row, long column) {
    long[] index = new long[dims.length];
    int own = dims.length - 2;
    for (int a = 0; a < own; a++) {
      long coordinate = bi[bi.length - own + a];
      index[a] = dims[a] == 1 ? 0 : coordinate;
    }
    index[own] = row;
    index[own + 1] = column;
    return GradCheck.ravel(index, dims);
  }

  static Stream<Arguments> shapes() {
    return Stream.of(
        Arguments.of(new long[] {3, 5}, new long[] {5, 4}, new long[] {3, 4}),
        Arguments.of(new long[] {1, 1}, new long[] {1, 1}, new long[] {1, 1}),
        Arguments.of(new long[] {1, 17}, new long[] {17, 3}, new long[] {1, 3}),
        Arguments.of(new long[] {2, 3, 5}, new long[] {5, 4}, new long[] {2, 3, 4}),
        Arguments.of(new long[] {5}, new long[] {5, 4}, new long[] {4}),
        Arguments.of(new long[] {3, 5}, new long[] {5}, new long[] {3}),
        Arguments.of(new long[] {5}, new long[] {5}, new long[] {}),
        Arguments.of(new long[] {2, 3, 5}, new long[] {5}, new long[] {2, 3}),
        Arguments.of(new long[] {5}, new long[] {2, 5, 3}, new long[] {2, 3}),
        Arguments.of(new long[] {3, 5}, new long[] {2, 5, 4}, new long[] {2, 3, 4}),
        Arguments.of(new long[] {2, 1, 3, 5}, new long[] {3, 5, 4}, new long[] {2, 3, 3, 4}),
        Arguments.of(new long[] {4, 1, 3, 5}, new long[] {1, 3, 5, 2}, new long[] {4, 3, 3, 2}),
        Arguments.of(new long[] {3, 2, 3}, new long[] {3, 3, 1}, new long[] {3, 2, 1}),
        Arguments.of(new long[] {2, 3, 0}, new long[] {0, 4}, new long[] {2, 3, 4}));
  }

  @ParameterizedTest
  @MethodSource("shapes")
  void forwardAndBackwardMatchTheReference(long[] aDims, long[] bDims, long[] outDims) {
    try (Arena arena = Arena.ofConfined()) {
      double[] a = GradCheck.values(1, GradCheck.size(aDims));
      double[] b = GradCheck.values(2, GradCheck.size(bDims));
      Tensor ta = GradCheck.leaf(arena, a, aDims);
      Tensor tb = GradCheck.leaf(arena, b, bDims);
      Tensor out = ta.matmul(tb);
      assertArrayEquals(outDims, out.shape().dims());
      assertTrue(out.requiresGrad());
      Arrays64.assertClose(reference(a, aDims, b, bDims), Arrays64.doubles(out),
          Tolerances.MATMUL_OPS_FORWARD, "matmul " + Arrays.toString(aDims) + " x "
              + Arrays.toString(bDims));
      GradCheck.checkGradient(arena, out, 3, new double[][] {a, b}, new Tensor[] {ta, tb},
          in -> reference(in[0], aDims, in[1], bDims), Tolerances.MATMUL_OPS_BACKWARD,
          "matmul " + Arrays.toString(aDims) + " x " + Arrays.toString(bDims));
    }
  }

  @Test
  void onlyTheOperandThatRequiresAGradientGetsOne() {
    try (Arena arena = Arena.ofConfined()) {
      double[] a = GradCheck.values(4, 2 * 3 * 5);
      double[] b = GradCheck.values(5, 5 * 2);
      Tensor ta = Arrays64.tensor(arena, a, 2, 3, 5);
      Tensor tb = GradCheck.leaf(arena, b, 5, 2);
      Tensor out = ta.matmul(tb);
      GradCheck.checkGradient(arena, out, 6, new double[][] {a, b}, new Tensor[] {null, tb},
          in -> reference(in[0], new long[] {2, 3, 5}, in[1], new long[] {5, 2}),
          Tolerances.MATMUL_OPS_BACKWARD, "matmul (b only)");
      assertEquals(null, ta.grad());
    }
  }

  @Test
  void anOperandChangedInPlaceAfterTheForwardIsDetected() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3).requiresGrad(true);
      Tensor b = Tensor.ones(arena, 3, 2);
      Tensor out = a.matmul(b);
      b.set(5f, 0, 0); // the backward needs b as it was
      var e = assertThrows(IllegalStateException.class,
          () -> out.backward(Tensor.ones(arena, 2, 2)));
      assertTrue(e.getMessage().startsWith("Tensor.matmul:"), e.getMessage());
    }
  }

  @Test
  void noGradRecordsNothing() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3).requiresGrad(true);
      Tensor b = Tensor.ones(arena, 3, 2).requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        Tensor out = a.matmul(b);
        assertFalse(out.requiresGrad());
        assertEquals(3f, out.get(1, 1));
      }
      assertTrue(a.matmul(b).requiresGrad());
    }
  }

  @Test
  void errorsNameTheirArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3);
      var e = assertThrows(IllegalArgumentException.class,
          () -> a.matmul(Tensor.ones(arena, 4, 2)));
      assertTrue(e.getMessage().startsWith("other:") && e.getMessage().contains("(4, 2)"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.ones(arena, 2, 2, 3).matmul(Tensor.ones(arena, 3, 3, 2)));
      assertTrue(e.getMessage().startsWith("other:") && e.getMessage().contains("broadcast"),
          e.getMessage());
      var npe = assertThrows(NullPointerException.class, () -> a.matmul(null));
      assertEquals("other", npe.getMessage());
      Tensor foreign = Tensor.ofSegment(a.segment(), 2, 3);
      e = assertThrows(IllegalArgumentException.class,
          () -> foreign.matmul(Tensor.ones(arena, 3, 2)));
      assertTrue(e.getMessage().startsWith("tensor:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> a.matmul(Tensor.zeros(arena)));
      assertTrue(e.getMessage().startsWith("other:"), e.getMessage());
    }
    Tensor closed;
    try (Arena other = Arena.ofConfined()) {
      closed = Tensor.ones(other, 3, 2);
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3);
      var e = assertThrows(IllegalStateException.class, () -> a.matmul(closed));
      assertTrue(e.getMessage().startsWith("other:"), e.getMessage());
    }
  }
}
