package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.Tolerances;

/** concat, stack, split, transpose, permute and the views, forward and backward. */
class ShapeOpsTest {

  /** torch.permute in float64: output coordinate i is input coordinate order[i]. */
  static double[] permuteReference(double[] x, long[] dims, int[] order) {
    long[] outDims = new long[dims.length];
    for (int i = 0; i < dims.length; i++) {
      outDims[i] = dims[order[i]];
    }
    double[] out = new double[x.length];
    for (int p = 0; p < out.length; p++) {
      long[] o = GradCheck.unravel(p, outDims);
      long[] in = new long[dims.length];
      for (int i = 0; i < dims.length; i++) {
        in[order[i]] = o[i];
      }
      out[p] = x[GradCheck.ravel(in, dims)];
    }
    return out;
  }

  /** torch.cat in float64: each output coordinate along d falls in one input. */
  static double[] concatReference(double[][] xs, long[][] dims, int d) {
    long[] outDims = dims[0].clone();
    outDims[d] = 0;
    for (long[] ds : dims) {
      outDims[d] += ds[d];
    }
    double[] out = new double[GradCheck.size(outDims)];
    for (int p = 0; p < out.length; p++) {
      long[] o = GradCheck.unravel(p, outDims);
      long along = o[d];
      int t = 0;
      while (along >= dims[t][d]) {
        along -= dims[t][d];
        t++;
      }
      long[] in = o.clone();
      in[d] = along;
      out[p] = xs[t][GradCheck.ravel(in, dims[t])];
    }
    return out;
  }

  @Test
  void permuteAndTransposeMatchTheReference() {
    long[] dims = {2, 3, 1, 5};
    int[][] orders = {{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}, {0, 1, 3, 2}, {2, 0, 3, 1}};
    for (int[] order : orders) {
      try (Arena arena = Arena.ofConfined()) {
        double[] x = GradCheck.values(7, GradCheck.size(dims));
        Tensor t = GradCheck.leaf(arena, x, dims);
        Tensor out = t.permute(order);
        Arrays64.assertClose(permuteReference(x, dims, order), Arrays64.doubles(out), 0,
            "permute " + Arrays.toString(order));
        GradCheck.checkGradient(arena, out, 8, new double[][] {x}, new Tensor[] {t},
            in -> permuteReference(in[0], dims, order), Tolerances.COPY_OPS,
            "permute " + Arrays.toString(order));
      }
    }
    try (Arena arena = Arena.ofConfined()) {
      double[] x = GradCheck.values(9, 3 * 4 * 5);
      Tensor t = GradCheck.leaf(arena, x, 3, 4, 5);
      Tensor out = t.transpose(-1, 0);
      assertArrayEquals(new long[] {5, 4, 3}, out.shape().dims());
      GradCheck.checkGradient(arena, out, 10, new double[][] {x}, new Tensor[] {t},
          in -> permuteReference(in[0], new long[] {3, 4, 5}, new int[] {2, 1, 0}),
          Tolerances.COPY_OPS, "transpose");
      assertEquals(t.get(2, 1, 4), out.get(4, 1, 2));
    }
  }

  @Test
  void concatMatchesTheReferenceAlongEveryDim() {
    for (int d = 0; d < 3; d++) {
      long[][] dims = {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}};
      dims[0][d] = 1;
      dims[2][d] = 5;
      try (Arena arena = Arena.ofConfined()) {
        double[][] xs = new double[3][];
        Tensor[] ts = new Tensor[3];
        for (int i = 0; i < 3; i++) {
          xs[i] = GradCheck.values(20 + i, GradCheck.size(dims[i]));
          ts[i] = i == 1 ? Arrays64.tensor(arena, xs[i], dims[i])
              : GradCheck.leaf(arena, xs[i], dims[i]);
        }
        final int dim = d;
        Tensor out = Tensor.concat(List.of(ts), d - 3); // negative dims count from the end
        Arrays64.assertClose(concatReference(xs, dims, d), Arrays64.doubles(out), 0,
            "concat dim " + d);
        GradCheck.checkGradient(arena, out, 30, xs, ts, in -> concatReference(in, dims, dim),
            Tolerances.COPY_OPS, "concat dim " + d);
        assertEquals(null, ts[1].grad());
      }
    }
  }

  @Test
  void stackMatchesTheReference() {
    long[] dims = {3, 2};
    for (int d = 0; d <= 2; d++) {
      try (Arena arena = Arena.ofConfined()) {
        double[][] xs = {GradCheck.values(40, 6), GradCheck.values(41, 6)};
        Tensor[] ts = {GradCheck.leaf(arena, xs[0], dims), GradCheck.leaf(arena, xs[1], dims)};
        Tensor out = Tensor.stack(List.of(ts), d);
        long[] outDims = new long[3];
        for (int a = 0, s = 0; a < 3; a++) {
          outDims[a] = a == d ? 2 : dims[s++];
        }
        assertArrayEquals(outDims, out.shape().dims());
        final int dim = d;
        // stacking is concatenating the inputs with a size-1 dimension inserted at d
        long[] one = outDims.clone();
        one[d] = 1;
        GradCheck.checkGradient(arena, out, 42, xs, ts,
            in -> concatReference(in, new long[][] {one, one}, dim), Tolerances.COPY_OPS,
            "stack dim " + d);
        Arrays64.assertClose(concatReference(xs, new long[][] {one, one}, d),
            Arrays64.doubles(out), 0, "stack dim " + d);
      }
    }
  }

  @Test
  void splitRoutesEachPiecesGradientAndZerosForUnusedPieces() {
    try (Arena arena = Arena.ofConfined()) {
      double[] x = GradCheck.values(50, 3 * 5);
      Tensor t = GradCheck.leaf(arena, x, 3, 5);
      List<Tensor> pieces = t.split(2, 1);
      assertEquals(3, pieces.size());
      assertArrayEquals(new long[] {3, 1}, pieces.get(2).shape().dims());
      for (int p = 0; p < 3; p++) {
        for (long r = 0; r < 3; r++) {
          for (long c = 0; c < pieces.get(p).dim(1); c++) {
            assertEquals(t.get(r, 2 * p + c), pieces.get(p).get(r, c));
          }
        }
      }
      // only the middle piece feeds the loss: columns 2 and 3 get its gradient, the rest zeros
      GradCheck.checkGradient(arena, pieces.get(1), 51, new double[][] {x}, new Tensor[] {t},
          in -> {
            double[] y = new double[6];
            for (int r = 0; r < 3; r++) {
              y[2 * r] = in[0][r * 5 + 2];
              y[2 * r + 1] = in[0][r * 5 + 3];
            }
            return y;
          }, Tolerances.COPY_OPS, "split");
      float[] g = t.grad().toArray();
      assertEquals(0f, g[0]);
      assertEquals(0f, g[4]);
      assertTrue(g[2] != 0f);
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 4, 3);
      List<Tensor> pieces = t.split(new long[] {1, 0, 3}, 0);
      assertArrayEquals(new long[] {0, 3}, pieces.get(1).shape().dims());
      assertArrayEquals(new long[] {3, 3}, pieces.get(2).shape().dims());
      assertFalse(pieces.get(0).requiresGrad());
    }
  }

  /**
   * matmul → permute → concat → split → concat of the flattened pieces, against the same
   * composition in float64: the gradient reaches all three leaves through every op.
   */
  @Test
  void aComposedChainRoutesGradients() {
    long[] aDims = {2, 3, 4};
    long[] bDims = {4, 5};
    long[] cDims = {1, 2, 3};
    try (Arena arena = Arena.ofConfined()) {
      double[][] in = {GradCheck.values(60, 24), GradCheck.values(61, 20),
          GradCheck.values(62, 6)};
      Tensor a = GradCheck.leaf(arena, in[0], aDims);
      Tensor b = GradCheck.leaf(arena, in[1], bDims);
      Tensor c = GradCheck.leaf(arena, in[2], cDims);
      Tensor product = a.matmul(b); // (2, 3, 5)
      Tensor moved = product.permute(2, 0, 1); // (5, 2, 3)
      Tensor joined = Tensor.concat(List.of(moved, c), 0); // (6, 2, 3)
      List<Tensor> parts = joined.split(new long[] {2, 4}, 0);
      Tensor out = Tensor.concat(List.of(parts.get(1).reshape(-1), parts.get(0).reshape(-1)), 0);
      GradCheck.checkGradient(arena, out, 63, in, new Tensor[] {a, b, c}, v -> {
        double[] p = MatmulOpsTest.reference(v[0], aDims, v[1], bDims);
        double[] m = permuteReference(p, new long[] {2, 3, 5}, new int[] {2, 0, 1});
        double[] j = concatReference(new double[][] {m, v[2]},
            new long[][] {{5, 2, 3}, cDims}, 0);
        double[] y = new double[j.length];
        System.arraycopy(j, 12, y, 0, 24); // parts[1]: rows 2..5 of 6, 6 values each
        System.arraycopy(j, 0, y, 24, 12); // parts[0]
        return y;
      }, Tolerances.MATMUL_OPS_BACKWARD, "chain");
    }
  }

  @Test
  void viewsShareMemoryAndRecordThroughReshape() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 3, 1, 4).requiresGrad(true);
      Tensor u = t.unsqueeze(-1);
      assertArrayEquals(new long[] {3, 1, 4, 1}, u.shape().dims());
      assertArrayEquals(new long[] {1, 3, 1, 4}, t.unsqueeze(0).shape().dims());
      assertArrayEquals(new long[] {3, 4}, t.squeeze(1).shape().dims());
      assertSame(t, t.squeeze(0));
      assertArrayEquals(new long[] {3, 4}, u.squeeze().shape().dims());
      assertArrayEquals(new long[] {3, 4}, t.flatten(1, 2).shape().dims());
      assertEquals(u.segment().address(), t.segment().address());
      Tensor s = t.squeeze(1);
      s.backward(Tensor.full(arena, 2f, 3, 4));
      assertEquals(2f, t.grad().get(2, 0, 3));
    }
  }

  @Test
  void noGradRecordsNothing() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 2, 3).requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        assertFalse(t.permute(1, 0).requiresGrad());
        assertFalse(Tensor.concat(List.of(t, t), 0).requiresGrad());
        assertFalse(Tensor.stack(List.of(t, t), 0).requiresGrad());
        assertFalse(t.split(1, 0).get(0).requiresGrad());
      }
      assertTrue(t.transpose(0, 1).requiresGrad());
    }
  }

  @Test
  void errorsNameTheirArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.ones(arena, 2, 3);
      Tensor b = Tensor.ones(arena, 2, 4);
      var e = assertThrows(IllegalArgumentException.class, () -> Tensor.concat(List.of(a, b), 0));
      assertTrue(e.getMessage().startsWith("tensors[1]:") && e.getMessage().contains("(2, 4)"),
          e.getMessage());
      assertEquals(7, Tensor.concat(List.of(a, b), 1).dim(1));
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.stack(List.of(a, b), 0));
      assertTrue(e.getMessage().startsWith("tensors[1]:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.concat(List.of(), 0));
      assertTrue(e.getMessage().startsWith("tensors:"), e.getMessage());
      List<Tensor> withNull = new ArrayList<>(List.of(a));
      withNull.add(null);
      var npe = assertThrows(NullPointerException.class, () -> Tensor.concat(withNull, 0));
      assertEquals("tensors[1]", npe.getMessage());
      var ioobe = assertThrows(IndexOutOfBoundsException.class, () -> a.transpose(0, 2));
      assertTrue(ioobe.getMessage().startsWith("dim1:"), ioobe.getMessage());
      ioobe = assertThrows(IndexOutOfBoundsException.class, () -> Tensor.concat(List.of(a), 2));
      assertTrue(ioobe.getMessage().startsWith("dim:"), ioobe.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> a.permute(0, 0));
      assertTrue(e.getMessage().startsWith("dims:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> a.permute(0));
      assertTrue(e.getMessage().startsWith("dims:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> a.split(new long[] {1, 1}, 1));
      assertTrue(e.getMessage().startsWith("sizes:") && e.getMessage().contains("3"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> a.split(0, 1));
      assertTrue(e.getMessage().startsWith("size:"), e.getMessage());
      Tensor foreign = Tensor.ofSegment(a.segment(), 2, 3);
      e = assertThrows(IllegalArgumentException.class, () -> foreign.permute(1, 0));
      assertTrue(e.getMessage().startsWith("tensor:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> Tensor.concat(List.of(foreign), 0));
      assertTrue(e.getMessage().startsWith("tensors[0]:"), e.getMessage());
    }
    Tensor closed;
    try (Arena other = Arena.ofConfined()) {
      closed = Tensor.ones(other, 3, 2);
    }
    var e = assertThrows(IllegalStateException.class, () -> closed.transpose(0, 1));
    assertTrue(e.getMessage().startsWith("tensor:"), e.getMessage());
  }
}
