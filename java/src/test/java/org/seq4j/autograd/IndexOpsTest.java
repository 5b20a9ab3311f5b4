package org.seq4j.autograd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.reference.Arrays64;
import org.seq4j.reference.Tolerances;

/** gather and indexSelect forward and backward (a scatter-add) against float64 references. */
class IndexOpsTest {

  /** torch.gather in float64: out[p] = x at p's coordinates with coordinate d = index[p]. */
  static double[] gatherReference(double[] x, long[] dims, int d, long[] index, long[] indexDims) {
    double[] out = new double[index.length];
    for (int p = 0; p < index.length; p++) {
      long[] at = GradCheck.unravel(p, indexDims);
      at[d] = index[p];
      out[p] = x[GradCheck.ravel(at, dims)];
    }
    return out;
  }

  /** torch.index_select in float64. */
  static double[] indexSelectReference(double[] x, long[] dims, int d, long[] indices) {
    long[] outDims = dims.clone();
    outDims[d] = indices.length;
    double[] out = new double[GradCheck.size(outDims)];
    for (int p = 0; p < out.length; p++) {
      long[] at = GradCheck.unravel(p, outDims);
      at[d] = indices[(int) at[d]];
      out[p] = x[GradCheck.ravel(at, dims)];
    }
    return out;
  }

  @Test
  void gatherMatchesTheReferenceWithRepeatedIndices() {
    long[] dims = {3, 4, 5};
    for (int d = 0; d < 3; d++) {
      long[] indexDims = {2, 3, 5}; // smaller than the input in dims 0 and 1, as torch allows
      indexDims[d] = 7; // longer than the input along d: indices repeat
      SplittableRandom random = new SplittableRandom(70 + d);
      long[] index = new long[GradCheck.size(indexDims)];
      for (int i = 0; i < index.length; i++) {
        index[i] = random.nextLong(dims[d]);
      }
      try (Arena arena = Arena.ofConfined()) {
        double[] x = GradCheck.values(80 + d, GradCheck.size(dims));
        Tensor t = GradCheck.leaf(arena, x, dims);
        Tensor out = t.gather(d, index, indexDims);
        assertArrayEquals(indexDims, out.shape().dims());
        Arrays64.assertClose(gatherReference(x, dims, d, index, indexDims),
            Arrays64.doubles(out), 0, "gather dim " + d);
        final int dim = d;
        GradCheck.checkGradient(arena, out, 90 + d, new double[][] {x}, new Tensor[] {t},
            in -> gatherReference(in[0], dims, dim, index, indexDims), Tolerances.COPY_OPS,
            "gather dim " + d);
        // the float-tensor index gives the same result
        float[] asFloats = new float[index.length];
        for (int i = 0; i < index.length; i++) {
          asFloats[i] = index[i];
        }
        Tensor viaTensor = t.gather(d, Tensor.fromArray(arena, asFloats, indexDims));
        assertArrayEquals(out.toArray(), viaTensor.toArray());
      }
    }
  }

  @Test
  void indexSelectMatchesTheReferenceAndDuplicatesAccumulate() {
    long[] dims = {4, 3, 2};
    long[] indices = {3, 0, 3, 3, 1};
    for (int d = 0; d < 3; d++) {
      long[] picks = new long[indices.length];
      for (int i = 0; i < picks.length; i++) {
        picks[i] = indices[i] % dims[d];
      }
      try (Arena arena = Arena.ofConfined()) {
        double[] x = GradCheck.values(100 + d, GradCheck.size(dims));
        Tensor t = GradCheck.leaf(arena, x, dims);
        Tensor out = t.indexSelect(d - 3, picks);
        Arrays64.assertClose(indexSelectReference(x, dims, d, picks), Arrays64.doubles(out), 0,
            "indexSelect dim " + d);
        final int dim = d;
        GradCheck.checkGradient(arena, out, 110 + d, new double[][] {x}, new Tensor[] {t},
            in -> indexSelectReference(in[0], dims, dim, picks), Tolerances.COPY_OPS,
            "indexSelect dim " + d);
      }
    }
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 3, 2).requiresGrad(true);
      t.indexSelect(0, new long[] {2, 2, 2}).backward(Tensor.ones(arena, 3, 2));
      assertArrayEquals(new float[] {0, 0, 0, 0, 3, 3}, t.grad().toArray());
    }
  }

  @Test
  void noGradRecordsNothing() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 2, 3).requiresGrad(true);
      try (var off = Autograd.noGrad()) {
        assertFalse(t.gather(1, new long[] {0, 2}, 2, 1).requiresGrad());
        assertFalse(t.indexSelect(1, new long[] {1}).requiresGrad());
      }
      assertTrue(t.indexSelect(1, new long[] {1}).requiresGrad());
    }
  }

  @Test
  void errorsNameTheirArgument() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 2, 3);
      var ioobe = assertThrows(IndexOutOfBoundsException.class,
          () -> t.gather(1, new long[] {0, 1, 2, 3}, 2, 2));
      assertTrue(ioobe.getMessage().startsWith("index[3]:"), ioobe.getMessage());
      ioobe = assertThrows(IndexOutOfBoundsException.class,
          () -> t.indexSelect(0, new long[] {1, -1}));
      assertTrue(ioobe.getMessage().startsWith("indices[1]:"), ioobe.getMessage());
      ioobe = assertThrows(IndexOutOfBoundsException.class,
          () -> t.indexSelect(2, new long[] {0}));
      assertTrue(ioobe.getMessage().startsWith("dim:"), ioobe.getMessage());
      var e = assertThrows(IllegalArgumentException.class,
          () -> t.gather(1, new long[] {0, 0, 0}, 3, 1));
      assertTrue(e.getMessage().startsWith("index:") && e.getMessage().contains("(3, 1)"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> t.gather(1, new long[] {0, 0, 0}, 2, 1));
      assertTrue(e.getMessage().startsWith("index:"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> t.gather(1, Tensor.full(arena, 0.5f, 2, 1)));
      assertTrue(e.getMessage().startsWith("index[0]:"), e.getMessage());
      var npe = assertThrows(NullPointerException.class, () -> t.indexSelect(0, null));
      assertEquals("indices", npe.getMessage());
      npe = assertThrows(NullPointerException.class, () -> t.gather(0, (Tensor) null));
      assertEquals("index", npe.getMessage());
    }
  }
}
