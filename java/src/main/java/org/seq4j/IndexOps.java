package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * torch.gather and torch.index_select with their backward, a scatter-add of the output's gradient
 * into zeros of the input's shape (an index that appears twice receives both gradients).
 *
 * <p>Indices are {@code long[]} (row-major, with the index's shape beside it) or, to compose with
 * {@link Tensor#argmax} and {@link Tensor#topk}, a float tensor of integral values, which is exact
 * for indices below 2^24.
 */
final class IndexOps {
  private IndexOps() {}

  /** Largest index a float holds exactly (and every integer below it). */
  static final long FLOAT_EXACT = 1L << 24;

  /** The integral values of a float index tensor, checked. */
  static long[] indices(Tensor index, String name) {
    ShapeOps.usable(index, name);
    if (index.size() > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException(name + ": " + index.size() + " indices do not fit in a"
          + " Java array");
    }
    MemorySegment s = index.segment();
    long[] out = new long[(int) index.size()];
    for (int i = 0; i < out.length; i++) {
      float v = s.getAtIndex(JAVA_FLOAT, i);
      if (v != Math.rint(v) || Math.abs(v) > FLOAT_EXACT) {
        throw new IllegalArgumentException(name + "[" + i + "]: expected an integral value of"
            + " magnitude at most 2^24 (exact in float), got " + v);
      }
      out[i] = (long) v;
    }
    return out;
  }

  /** torch.gather with a float index tensor of the result's shape. */
  static Tensor gather(Tensor x, int dim, Tensor index) {
    ShapeOps.usable(x, "tensor");
    long[] values = indices(index, "index");
    return gather(x, dim, values, index.shape().dims());
  }

  /**
   * torch.gather: {@code out[i0..., j, ...] = x[i0..., index[i0..., j, ...], ...]} along dim;
   * index has x's rank and, in every dimension but dim, at most x's size.
   */
  static Tensor gather(Tensor x, int dim, long[] index, long[] indexDims) {
    ShapeOps.usable(x, "tensor");
    if (index == null) {
      throw new NullPointerException("index");
    }
    if (indexDims == null) {
      throw new NullPointerException("indexShape");
    }
    Arena arena = ShapeOps.arenaOf(x, "tensor");
    long[] dims = x.shape().dims();
    Shape indexShape = Shape.of(indexDims);
    if (indexShape.size() != index.length) {
      throw new IllegalArgumentException("index: expected " + indexShape.size() + " indices for"
          + " indexShape " + indexShape + ", got " + index.length);
    }
    if (dims.length == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) has no dimension to gather"
          + " along");
    }
    int d = ShapeOps.resolveDim(dim, dims.length, "dim");
    boolean fits = indexDims.length == dims.length;
    for (int a = 0; fits && a < dims.length; a++) {
      fits = a == d || indexDims[a] <= dims[a];
    }
    if (!fits) {
      throw new IllegalArgumentException("index: expected shape of rank " + dims.length
          + " with sizes at most " + x.shape() + " in every dimension but " + d + ", got "
          + indexShape);
    }
    for (int i = 0; i < index.length; i++) {
      if (index[i] < 0 || index[i] >= dims[d]) {
        throw new IndexOutOfBoundsException("index[" + i + "]: expected 0 <= index < " + dims[d]
            + " (dimension " + d + " of shape " + x.shape() + "), got " + index[i]);
      }
    }
    long[] idx = index.clone();
    Tensor out = Tensor.uninitialized(arena, indexDims);
    long[] inStrides = strides(dims);
    MemorySegment src = x.segment();
    MemorySegment dst = out.segment();
    forEach(indexDims, d, inStrides, idx, (position, offset) ->
        dst.setAtIndex(JAVA_FLOAT, position, src.getAtIndex(JAVA_FLOAT, offset)));
    Autograd.record("Tensor.gather", List.of(x), List.of(out), List.of(), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[1];
      }
      Tensor grad = Tensor.zeros(scratch, dims);
      MemorySegment gs = g[0].segment();
      MemorySegment gx = grad.segment();
      forEach(indexDims, d, inStrides, idx, (position, offset) -> gx.setAtIndex(JAVA_FLOAT,
          offset, gx.getAtIndex(JAVA_FLOAT, offset) + gs.getAtIndex(JAVA_FLOAT, position)));
      return new Tensor[] {grad};
    });
    return out;
  }

  private interface Visit {
    void at(long position, long offset);
  }

  /**
   * Calls {@code visit(position, offset)} for every element of an index of shape indexDims:
   * position in the index (and the output), offset of the element it selects in the input.
   */
  private static void forEach(long[] indexDims, int d, long[] inStrides, long[] index,
      Visit visit) {
    int rank = indexDims.length;
    long[] counter = new long[rank];
    long base = 0; // input offset of the counter's coordinates, dimension d excluded
    for (int position = 0; position < index.length; position++) {
      visit.at(position, base + index[position] * inStrides[d]);
      for (int a = rank - 1; a >= 0; a--) {
        counter[a]++;
        if (a != d) {
          base += inStrides[a];
        }
        if (counter[a] < indexDims[a]) {
          break;
        }
        if (a != d) {
          base -= counter[a] * inStrides[a];
        }
        counter[a] = 0;
      }
    }
  }

  static long[] strides(long[] dims) {
    long[] strides = new long[dims.length];
    long stride = 1;
    for (int a = dims.length - 1; a >= 0; a--) {
      strides[a] = stride;
      stride *= dims[a];
    }
    return strides;
  }

  /** torch.index_select: the slices {@code indices[j]} of x along dim, in that order. */
  static Tensor indexSelect(Tensor x, int dim, long[] indices) {
    ShapeOps.usable(x, "tensor");
    if (indices == null) {
      throw new NullPointerException("indices");
    }
    Arena arena = ShapeOps.arenaOf(x, "tensor");
    long[] dims = x.shape().dims();
    if (dims.length == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) has no dimension to select"
          + " along");
    }
    int d = ShapeOps.resolveDim(dim, dims.length, "dim");
    for (int i = 0; i < indices.length; i++) {
      if (indices[i] < 0 || indices[i] >= dims[d]) {
        throw new IndexOutOfBoundsException("indices[" + i + "]: expected 0 <= index < "
            + dims[d] + " (dimension " + d + " of shape " + x.shape() + "), got " + indices[i]);
      }
    }
    long[] idx = indices.clone();
    long[] outDims = dims.clone();
    outDims[d] = idx.length;
    Tensor out = Tensor.uninitialized(arena, outDims);
    long outer = ShapeOps.product(dims, 0, d);
    long inner = ShapeOps.product(dims, d + 1, dims.length);
    long chunk = inner * Float.BYTES;
    for (long o = 0; o < outer; o++) {
      for (int j = 0; j < idx.length; j++) {
        MemorySegment.copy(x.segment(), ((o * dims[d]) + idx[j]) * chunk, out.segment(),
            ((o * idx.length) + j) * chunk, chunk);
      }
    }
    Autograd.record("Tensor.indexSelect", List.of(x), List.of(out), List.of(), (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[1];
      }
      Tensor grad = Tensor.zeros(scratch, dims);
      MemorySegment gs = g[0].segment();
      MemorySegment gx = grad.segment();
      for (long o = 0; o < outer; o++) {
        for (int j = 0; j < idx.length; j++) {
          long from = (o * idx.length + j) * inner;
          long to = (o * dims[d] + idx[j]) * inner;
          for (long e = 0; e < inner; e++) {
            gx.setAtIndex(JAVA_FLOAT, to + e,
                gx.getAtIndex(JAVA_FLOAT, to + e) + gs.getAtIndex(JAVA_FLOAT, from + e));
          }
        }
      }
      return new Tensor[] {grad};
    });
    return out;
  }

  /** The values of a long index array as a float tensor (for the sampling ops' results). */
  static Tensor floatIndices(Arena arena, long[] values, long[] dims) {
    Tensor out = Tensor.uninitialized(arena, dims);
    for (int i = 0; i < values.length; i++) {
      out.segment().setAtIndex(JAVA_FLOAT, i, (float) values[i]);
    }
    return out;
  }
}
