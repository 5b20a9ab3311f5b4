package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.seq4j.internal.Checks;

/**
 * Shape operations with their backward: concat, stack, split, transpose, permute, and the views
 * unsqueeze, squeeze and flatten. The copying ones write a new contiguous tensor; their backward
 * is the inverse copy (split for concat, concat for split, the inverse permutation for permute).
 * Also the argument checks that the other ops-b families share (dims, arenas).
 */
final class ShapeOps {
  private ShapeOps() {}

  // ---- shared checks

  /** The arena results of an op on {@code t} go to; a tensor over foreign memory has none. */
  static Arena arenaOf(Tensor t, String name) {
    Arena arena = t.arena();
    if (arena == null) {
      throw new IllegalArgumentException(name + ": it has no arena to allocate the result in (a"
          + " tensor made by Tensor.ofSegment); copy it into an arena first (tensor.copy(arena))");
    }
    return arena;
  }

  /** Checks that {@code t} is not null and usable now. */
  static Tensor usable(Tensor t, String name) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    Checks.usable(t.segment(), name);
    return t;
  }

  /** {@code dim} resolved against {@code rank} (negative counts from the end). */
  static int resolveDim(int dim, int rank, String name) {
    int resolved = dim < 0 ? dim + rank : dim;
    if (resolved < 0 || resolved >= rank) {
      throw new IndexOutOfBoundsException(name + ": expected " + (-rank) + " <= " + name + " < "
          + rank + " for a tensor of rank " + rank + ", got " + dim);
    }
    return resolved;
  }

  /** The product of {@code dims[from, to)}. */
  static long product(long[] dims, int from, int to) {
    long p = 1;
    for (int i = from; i < to; i++) {
      p *= dims[i];
    }
    return p;
  }

  // ---- concat and stack

  /** torch.cat: the tensors joined along {@code dim}; result in the first tensor's arena. */
  static Tensor concat(List<Tensor> tensors, int dim) {
    if (tensors == null) {
      throw new NullPointerException("tensors");
    }
    if (tensors.isEmpty()) {
      throw new IllegalArgumentException("tensors: expected at least one tensor, got none");
    }
    Tensor[] inputs = new Tensor[tensors.size()];
    for (int i = 0; i < inputs.length; i++) {
      inputs[i] = usable(tensors.get(i), "tensors[" + i + "]");
    }
    Arena arena = arenaOf(inputs[0], "tensors[0]");
    long[] first = inputs[0].shape().dims();
    if (first.length == 0) {
      throw new IllegalArgumentException("tensors[0]: a scalar (rank 0) cannot be concatenated;"
          + " unsqueeze it or use stack");
    }
    int d = resolveDim(dim, first.length, "dim");
    long[] sizes = new long[inputs.length];
    long total = 0;
    for (int i = 0; i < inputs.length; i++) {
      long[] dims = inputs[i].shape().dims();
      boolean matches = dims.length == first.length;
      for (int a = 0; matches && a < dims.length; a++) {
        matches = a == d || dims[a] == first[a];
      }
      if (!matches) {
        throw new IllegalArgumentException("tensors[" + i + "]: expected the shape of tensors[0] "
            + inputs[0].shape() + " in every dimension but " + d + ", got " + inputs[i].shape());
      }
      sizes[i] = dims[d];
      total = Math.addExact(total, dims[d]);
    }
    long[] outDims = first.clone();
    outDims[d] = total;
    Tensor out = Tensor.uninitialized(arena, outDims);
    concatInto(inputs, d, out);
    Autograd.record("Tensor.concat", Arrays.asList(inputs), List.of(out), List.of(),
        (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[inputs.length];
          }
          return splitInto(scratch, g[0], d, sizes);
        });
    return out;
  }

  /** torch.stack: the same-shaped tensors joined along a new dimension {@code dim}. */
  static Tensor stack(List<Tensor> tensors, int dim) {
    if (tensors == null) {
      throw new NullPointerException("tensors");
    }
    if (tensors.isEmpty()) {
      throw new IllegalArgumentException("tensors: expected at least one tensor, got none");
    }
    Tensor[] inputs = new Tensor[tensors.size()];
    for (int i = 0; i < inputs.length; i++) {
      inputs[i] = usable(tensors.get(i), "tensors[" + i + "]");
    }
    Arena arena = arenaOf(inputs[0], "tensors[0]");
    Shape shape = inputs[0].shape();
    int d = resolveDim(dim, shape.rank() + 1, "dim");
    Tensor[] expanded = new Tensor[inputs.length];
    for (int i = 0; i < inputs.length; i++) {
      if (!inputs[i].shape().equals(shape)) {
        throw new IllegalArgumentException("tensors[" + i + "]: expected shape " + shape
            + " (the shape of tensors[0]), got " + inputs[i].shape());
      }
      expanded[i] = inputs[i].view(insert(shape.dims(), d, 1));
    }
    long[] outDims = insert(shape.dims(), d, inputs.length);
    Tensor out = Tensor.uninitialized(arena, outDims);
    concatInto(expanded, d, out);
    long[] ones = new long[inputs.length];
    Arrays.fill(ones, 1);
    long[] inputDims = shape.dims();
    Autograd.record("Tensor.stack", Arrays.asList(inputs), List.of(out), List.of(),
        (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[inputs.length];
          }
          Tensor[] parts = splitInto(scratch, g[0], d, ones);
          for (int i = 0; i < parts.length; i++) {
            parts[i] = parts[i].view(inputDims);
          }
          return parts;
        });
    return out;
  }

  private static long[] insert(long[] dims, int at, long value) {
    long[] out = new long[dims.length + 1];
    System.arraycopy(dims, 0, out, 0, at);
    out[at] = value;
    System.arraycopy(dims, at, out, at + 1, dims.length - at);
    return out;
  }

  /** Copies the inputs, which agree but in {@code d}, side by side along {@code d} into out. */
  private static void concatInto(Tensor[] inputs, int d, Tensor out) {
    long[] outDims = out.shape().dims();
    long outer = product(outDims, 0, d);
    long inner = product(outDims, d + 1, outDims.length) * Float.BYTES;
    long outRow = outDims[d] * inner;
    long offset = 0;
    for (Tensor input : inputs) {
      long chunk = input.dim(d) * inner;
      for (long o = 0; o < outer; o++) {
        MemorySegment.copy(input.segment(), o * chunk, out.segment(), o * outRow + offset, chunk);
      }
      offset += chunk;
    }
  }

  /** New tensors in {@code arena}: {@code x} cut along {@code d} into pieces of {@code sizes}. */
  private static Tensor[] splitInto(Arena arena, Tensor x, int d, long[] sizes) {
    long[] dims = x.shape().dims();
    long outer = product(dims, 0, d);
    long inner = product(dims, d + 1, dims.length) * Float.BYTES;
    long row = dims[d] * inner;
    Tensor[] parts = new Tensor[sizes.length];
    long offset = 0;
    for (int i = 0; i < sizes.length; i++) {
      long[] partDims = dims.clone();
      partDims[d] = sizes[i];
      parts[i] = Tensor.uninitialized(arena, partDims);
      long chunk = sizes[i] * inner;
      for (long o = 0; o < outer; o++) {
        MemorySegment.copy(x.segment(), o * row + offset, parts[i].segment(), o * chunk, chunk);
      }
      offset += chunk;
    }
    return parts;
  }

  // ---- split

  /** torch.split with one size: pieces of {@code size} along dim, the last one smaller. */
  static List<Tensor> split(Tensor x, long size, int dim) {
    usable(x, "tensor");
    if (x.shape().rank() == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) cannot be split");
    }
    int d = resolveDim(dim, x.shape().rank(), "dim");
    long length = x.dim(d);
    if (size <= 0 && !(size == 0 && length == 0)) {
      throw new IllegalArgumentException("size: expected a positive size, got " + size);
    }
    long count = length == 0 ? 1 : (length + size - 1) / size;
    if (count > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("size: " + size + " cuts dimension " + d + " of "
          + length + " into too many pieces for a list");
    }
    long[] sizes = new long[(int) count];
    for (int i = 0; i < sizes.length; i++) {
      sizes[i] = Math.min(size, length - i * size);
    }
    return splitRecorded(x, sizes, d);
  }

  /** torch.split with sizes: one piece per size along dim; the sizes sum to its length. */
  static List<Tensor> split(Tensor x, long[] sizes, int dim) {
    usable(x, "tensor");
    if (sizes == null) {
      throw new NullPointerException("sizes");
    }
    if (x.shape().rank() == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) cannot be split");
    }
    int d = resolveDim(dim, x.shape().rank(), "dim");
    long sum = 0;
    for (int i = 0; i < sizes.length; i++) {
      if (sizes[i] < 0) {
        throw new IllegalArgumentException("sizes[" + i + "]: expected >= 0, got " + sizes[i]);
      }
      sum += sizes[i];
    }
    if (sum != x.dim(d)) {
      throw new IllegalArgumentException("sizes: expected sizes summing to " + x.dim(d)
          + " (dimension " + d + " of shape " + x.shape() + "), got " + Arrays.toString(sizes)
          + " summing to " + sum);
    }
    return splitRecorded(x, sizes.clone(), d);
  }

  private static List<Tensor> splitRecorded(Tensor x, long[] sizes, int d) {
    Arena arena = arenaOf(x, "tensor");
    Tensor[] parts = splitInto(arena, x, d, sizes);
    long[] dims = x.shape().dims();
    Autograd.record("Tensor.split", List.of(x), Arrays.asList(parts), List.of(),
        (scratch, g) -> {
          Tensor[] pieces = new Tensor[g.length];
          boolean any = false;
          for (int i = 0; i < g.length; i++) {
            any |= g[i] != null;
            if (g[i] != null) {
              pieces[i] = g[i];
            } else {
              long[] partDims = dims.clone();
              partDims[d] = sizes[i];
              pieces[i] = Tensor.zeros(scratch, partDims);
            }
          }
          if (!any) {
            return new Tensor[] {null};
          }
          Tensor whole = Tensor.uninitialized(scratch, dims);
          concatInto(pieces, d, whole);
          return new Tensor[] {whole};
        });
    return List.of(parts);
  }

  // ---- transpose and permute

  /** torch.transpose, copied into a new contiguous tensor. */
  static Tensor transpose(Tensor x, int dim0, int dim1) {
    usable(x, "tensor");
    int rank = x.shape().rank();
    int a = resolveDim(dim0, rank, "dim0");
    int b = resolveDim(dim1, rank, "dim1");
    int[] order = new int[rank];
    for (int i = 0; i < rank; i++) {
      order[i] = i;
    }
    order[a] = b;
    order[b] = a;
    return permuteRecorded(x, order, "Tensor.transpose");
  }

  /** torch.permute, copied into a new contiguous tensor: out dim i is input dim dims[i]. */
  static Tensor permute(Tensor x, int[] dims) {
    usable(x, "tensor");
    if (dims == null) {
      throw new NullPointerException("dims");
    }
    int rank = x.shape().rank();
    if (dims.length != rank) {
      throw new IllegalArgumentException("dims: expected " + rank + " dims (a permutation of the"
          + " dimensions of shape " + x.shape() + "), got " + Arrays.toString(dims));
    }
    int[] order = new int[rank];
    boolean[] seen = new boolean[rank];
    for (int i = 0; i < rank; i++) {
      order[i] = resolveDim(dims[i], rank, "dims[" + i + "]");
      if (seen[order[i]]) {
        throw new IllegalArgumentException("dims: expected a permutation of 0.." + (rank - 1)
            + ", got " + Arrays.toString(dims) + " (dimension " + order[i] + " twice)");
      }
      seen[order[i]] = true;
    }
    return permuteRecorded(x, order, "Tensor.permute");
  }

  private static Tensor permuteRecorded(Tensor x, int[] order, String operation) {
    Arena arena = arenaOf(x, "tensor");
    Tensor out = permuteInto(arena, x, order);
    int[] inverse = new int[order.length];
    for (int i = 0; i < order.length; i++) {
      inverse[order[i]] = i;
    }
    Autograd.record(operation, List.of(x), List.of(out), List.of(),
        (scratch, g) -> new Tensor[] {g[0] == null ? null : permuteInto(scratch, g[0], inverse)});
    return out;
  }

  /** A new tensor in arena whose dimension i is x's dimension order[i]. */
  static Tensor permuteInto(Arena arena, Tensor x, int[] order) {
    long[] in = x.shape().dims();
    int rank = in.length;
    long[] inStrides = new long[rank];
    long stride = 1;
    for (int a = rank - 1; a >= 0; a--) {
      inStrides[a] = stride;
      stride *= in[a];
    }
    long[] outDims = new long[rank];
    long[] strides = new long[rank]; // input stride of each output dimension
    for (int i = 0; i < rank; i++) {
      outDims[i] = in[order[i]];
      strides[i] = inStrides[order[i]];
    }
    Tensor out = Tensor.uninitialized(arena, outDims);
    long size = out.size();
    if (size == 0) {
      return out;
    }
    MemorySegment src = x.segment();
    MemorySegment dst = out.segment();
    if (rank == 0) {
      MemorySegment.copy(src, 0, dst, 0, Float.BYTES);
      return out;
    }
    long rowLength = outDims[rank - 1];
    long rowStride = strides[rank - 1];
    long[] counter = new long[rank];
    long base = 0; // input offset of the current output row's first element
    for (long row = 0, position = 0; position < size; row++, position += rowLength) {
      if (rowStride == 1) {
        MemorySegment.copy(src, base * Float.BYTES, dst, position * Float.BYTES,
            rowLength * Float.BYTES);
      } else {
        for (long j = 0; j < rowLength; j++) {
          float value = src.getAtIndex(JAVA_FLOAT, base + j * rowStride);
          dst.setAtIndex(JAVA_FLOAT, position + j, value);
        }
      }
      // advance the counter over the output dimensions before the last one
      for (int a = rank - 2; a >= 0; a--) {
        counter[a]++;
        base += strides[a];
        if (counter[a] < outDims[a]) {
          break;
        }
        base -= counter[a] * strides[a];
        counter[a] = 0;
      }
    }
    return out;
  }

  // ---- views

  /** torch.unsqueeze: a view with a dimension of size 1 inserted at dim (in [-rank-1, rank]). */
  static Tensor unsqueeze(Tensor x, int dim) {
    usable(x, "tensor");
    long[] dims = x.shape().dims();
    int d = resolveDim(dim, dims.length + 1, "dim");
    return x.reshape(insert(dims, d, 1));
  }

  /** torch.squeeze(dim): a view without dimension dim if its size is 1; else x itself. */
  static Tensor squeeze(Tensor x, int dim) {
    usable(x, "tensor");
    long[] dims = x.shape().dims();
    if (dims.length == 0) {
      resolveDim(dim, 1, "dim"); // PyTorch accepts 0 and -1 on a scalar
      return x;
    }
    int d = resolveDim(dim, dims.length, "dim");
    if (dims[d] != 1) {
      return x;
    }
    long[] out = new long[dims.length - 1];
    System.arraycopy(dims, 0, out, 0, d);
    System.arraycopy(dims, d + 1, out, d, dims.length - d - 1);
    return x.reshape(out);
  }

  /** torch.squeeze(): a view without every dimension of size 1. */
  static Tensor squeeze(Tensor x) {
    usable(x, "tensor");
    long[] dims = Arrays.stream(x.shape().dims()).filter(s -> s != 1).toArray();
    return dims.length == x.shape().rank() ? x : x.reshape(dims);
  }

  /** torch.flatten(startDim, endDim): a view with dimensions startDim..endDim merged into one. */
  static Tensor flatten(Tensor x, int startDim, int endDim) {
    usable(x, "tensor");
    long[] dims = x.shape().dims();
    if (dims.length == 0) {
      return x.reshape(1);
    }
    int s = resolveDim(startDim, dims.length, "startDim");
    int e = resolveDim(endDim, dims.length, "endDim");
    if (s > e) {
      throw new IllegalArgumentException("startDim, endDim: expected startDim <= endDim, got"
          + " startDim=" + startDim + " endDim=" + endDim + " for shape " + x.shape());
    }
    List<Long> out = new ArrayList<>();
    for (int i = 0; i < s; i++) {
      out.add(dims[i]);
    }
    out.add(product(dims, s, e + 1));
    for (int i = e + 1; i < dims.length; i++) {
      out.add(dims[i]);
    }
    return x.reshape(out.stream().mapToLong(Long::longValue).toArray());
  }
}
