package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;

/**
 * Elementwise arithmetic with PyTorch's broadcasting, and the unary functions, forward and
 * backward side by side. Each public-facing method computes its result in the receiver's arena
 * and, when {@link Autograd#isRecording} holds, records a backward that reads only what it saved.
 *
 * <p>Broadcasting: shapes are aligned at their last dimension; two sizes match when equal or when
 * one is 1 (a missing leading dimension counts as 1). The backward of a broadcast input sums the
 * gradient over the dimensions it was broadcast along ({@link #sumTo}).
 *
 * <p>Every loop walks the operands with strides ({@link Walk}): dimensions of size 1 are dropped
 * and dimensions that are contiguous in every operand are merged, so that one shape, a scalar
 * operand and a broadcast row all become a single long inner loop.
 */
final class ElementwiseOps {
  private ElementwiseOps() {}

  // binary operation codes
  static final int ADD = 0;
  static final int SUB = 1;
  static final int MUL = 2;
  static final int DIV = 3;
  /** out = a (b ignored): broadcasting a copy, for {@link #expand}. */
  static final int COPY = 4;

  private static final String[] BINARY_NAMES = {"Tensor.add", "Tensor.sub", "Tensor.mul",
      "Tensor.div"};

  // ---- arguments

  /** The receiver's arena, where results go; checks the receiver is usable. */
  static Arena arenaOf(Tensor tensor) {
    Checks.usable(tensor.segment(), "tensor");
    Arena arena = tensor.arena();
    if (arena == null) {
      throw new IllegalArgumentException("tensor: it has no arena (it was made by"
          + " Tensor.ofSegment over foreign memory), and results are allocated in the receiver's"
          + " arena; copy it into an arena first (tensor.copy(arena))");
    }
    return arena;
  }

  static Tensor requireOther(Tensor other, String name) {
    if (other == null) {
      throw new NullPointerException(name);
    }
    Checks.usable(other.segment(), name);
    return other;
  }

  /** PyTorch's broadcast of two shapes, or an exception naming {@code other}. */
  static long[] broadcastShape(long[] self, long[] other, String otherName) {
    int rank = Math.max(self.length, other.length);
    long[] out = new long[rank];
    for (int i = 0; i < rank; i++) {
      long a = i < rank - self.length ? 1 : self[i - (rank - self.length)];
      long b = i < rank - other.length ? 1 : other[i - (rank - other.length)];
      if (a != b && a != 1 && b != 1) {
        throw new IllegalArgumentException(otherName + ": cannot broadcast shape "
            + Shape.of(other) + " with " + Shape.of(self) + " (the receiver's): dimension "
            + (i - rank) + " is " + b + " against " + a + " (sizes must be equal or one of them 1)");
      }
      out[i] = a == 1 ? b : a;
    }
    return out;
  }

  /**
   * Strides (in elements) of a dense tensor of shape {@code dims} read as shape {@code outDims}
   * (of equal or higher rank): 0 along dimensions it is broadcast along.
   */
  static long[] broadcastStrides(long[] dims, long[] outDims) {
    int offset = outDims.length - dims.length;
    long[] strides = new long[outDims.length];
    long stride = 1;
    for (int d = dims.length - 1; d >= 0; d--) {
      strides[d + offset] = dims[d] == 1 ? 0 : stride;
      stride *= dims[d];
    }
    return strides;
  }

  // ---- strided walk

  /**
   * Walks rows of several strided operands over one index space: dimensions of size 1 dropped,
   * dimensions contiguous in every operand merged; the last remaining dimension is the inner row.
   */
  static final class Walk {
    private final long[] dims;
    private final long[][] strides;
    private final long[] index;
    private final long[] offsets;
    private final int rank;

    Walk(long[] outDims, long[]... operandStrides) {
      int m = operandStrides.length;
      long[] d = new long[Math.max(1, outDims.length)];
      long[][] s = new long[m][d.length];
      int k = 0;
      for (int i = 0; i < outDims.length; i++) {
        if (outDims[i] == 1) {
          continue;
        }
        boolean merge = k > 0;
        for (int j = 0; j < m && merge; j++) {
          merge = s[j][k - 1] == operandStrides[j][i] * outDims[i];
        }
        if (merge) {
          d[k - 1] *= outDims[i];
          for (int j = 0; j < m; j++) {
            s[j][k - 1] = operandStrides[j][i];
          }
        } else {
          d[k] = outDims[i];
          for (int j = 0; j < m; j++) {
            s[j][k] = operandStrides[j][i];
          }
          k++;
        }
      }
      if (k == 0) {
        d[0] = 1;
        k = 1;
      }
      this.rank = k;
      this.dims = d;
      this.strides = s;
      this.index = new long[k];
      this.offsets = new long[m];
    }

    /** The number of rows (0 when the index space is empty). */
    long rows() {
      long rows = 1;
      for (int i = 0; i < rank; i++) {
        rows *= dims[i];
      }
      return rows == 0 ? 0 : rows / dims[rank - 1];
    }

    /** The length of a row. */
    long inner() {
      return dims[rank - 1];
    }

    long innerStride(int operand) {
      return strides[operand][rank - 1];
    }

    long offset(int operand) {
      return offsets[operand];
    }

    /** Moves to the next row. */
    void advance() {
      for (int q = rank - 2; q >= 0; q--) {
        index[q]++;
        for (int j = 0; j < offsets.length; j++) {
          offsets[j] += strides[j][q];
        }
        if (index[q] < dims[q]) {
          return;
        }
        for (int j = 0; j < offsets.length; j++) {
          offsets[j] -= strides[j][q] * dims[q];
        }
        index[q] = 0;
      }
    }
  }

  // ---- binary, broadcasting

  static Tensor add(Tensor self, Tensor other) {
    return binary(ADD, self, other);
  }

  static Tensor sub(Tensor self, Tensor other) {
    return binary(SUB, self, other);
  }

  static Tensor mul(Tensor self, Tensor other) {
    return binary(MUL, self, other);
  }

  static Tensor div(Tensor self, Tensor other) {
    return binary(DIV, self, other);
  }

  private static Tensor binary(int op, Tensor a, Tensor b) {
    Arena arena = arenaOf(a);
    requireOther(b, "other");
    long[] aDims = a.shape().dims();
    long[] bDims = b.shape().dims();
    Tensor out = compute(arena, op, a, b);
    List<Tensor> saved = switch (op) {
      case MUL -> List.of(a, b);
      case DIV -> List.of(a, b);
      default -> List.of();
    };
    Autograd.record(BINARY_NAMES[op], List.of(a, b), List.of(out), saved, (scratch, g) -> {
      Tensor grad = g[0];
      if (grad == null) {
        return new Tensor[] {null, null};
      }
      boolean wantA = a.requiresGrad();
      boolean wantB = b.requiresGrad();
      Tensor ga = null;
      Tensor gb = null;
      switch (op) {
        case ADD -> {
          ga = wantA ? sumTo(scratch, grad, aDims) : null;
          gb = wantB ? sumTo(scratch, grad, bDims) : null;
        }
        case SUB -> {
          ga = wantA ? sumTo(scratch, grad, aDims) : null;
          gb = wantB ? negateInPlace(sumToCopy(scratch, grad, bDims)) : null;
        }
        case MUL -> {
          ga = wantA ? sumTo(scratch, compute(scratch, MUL, grad, b), aDims) : null;
          gb = wantB ? sumTo(scratch, compute(scratch, MUL, grad, a), bDims) : null;
        }
        default -> { // DIV: d(a/b)/da = 1/b, d(a/b)/db = -a/b²
          ga = wantA ? sumTo(scratch, compute(scratch, DIV, grad, b), aDims) : null;
          if (wantB) {
            Tensor numerator = compute(scratch, MUL, grad, a);
            Tensor squared = compute(scratch, MUL, b, b);
            gb = negateInPlace(sumToCopy(scratch, compute(scratch, DIV, numerator, squared),
                bDims));
          }
        }
      }
      return new Tensor[] {ga, gb};
    });
    return out;
  }

  /** {@code a op b} broadcast, in a new tensor in {@code arena}; records nothing. */
  static Tensor compute(Arena arena, int op, Tensor a, Tensor b) {
    long[] aDims = a.shape().dims();
    long[] bDims = b.shape().dims();
    long[] outDims = broadcastShape(aDims, bDims, "other");
    Tensor out = Tensor.uninitialized(arena, outDims);
    if (out.size() == 0) {
      return out;
    }
    if (op == ADD && a.shape().equals(b.shape())) {
      NativeBindings.add(out.segment(), a.segment(), b.segment(), out.size());
      return out;
    }
    Walk walk = new Walk(outDims, broadcastStrides(outDims, outDims),
        broadcastStrides(aDims, outDims), broadcastStrides(bDims, outDims));
    MemorySegment o = out.segment();
    MemorySegment x = a.segment();
    MemorySegment y = b.segment();
    long n = walk.inner();
    long os = walk.innerStride(0);
    long xs = walk.innerStride(1);
    long ys = walk.innerStride(2);
    for (long r = 0, rows = walk.rows(); r < rows; r++, walk.advance()) {
      binaryRow(op, o, walk.offset(0), os, x, walk.offset(1), xs, y, walk.offset(2), ys, n);
    }
    return out;
  }

  private static void binaryRow(int op, MemorySegment o, long oo, long os, MemorySegment x,
      long xo, long xs, MemorySegment y, long yo, long ys, long n) {
    switch (op) {
      case ADD -> {
        for (long i = 0; i < n; i++) {
          o.setAtIndex(JAVA_FLOAT, oo + i * os,
              x.getAtIndex(JAVA_FLOAT, xo + i * xs) + y.getAtIndex(JAVA_FLOAT, yo + i * ys));
        }
      }
      case SUB -> {
        for (long i = 0; i < n; i++) {
          o.setAtIndex(JAVA_FLOAT, oo + i * os,
              x.getAtIndex(JAVA_FLOAT, xo + i * xs) - y.getAtIndex(JAVA_FLOAT, yo + i * ys));
        }
      }
      case MUL -> {
        for (long i = 0; i < n; i++) {
          o.setAtIndex(JAVA_FLOAT, oo + i * os,
              x.getAtIndex(JAVA_FLOAT, xo + i * xs) * y.getAtIndex(JAVA_FLOAT, yo + i * ys));
        }
      }
      case DIV -> {
        for (long i = 0; i < n; i++) {
          o.setAtIndex(JAVA_FLOAT, oo + i * os,
              x.getAtIndex(JAVA_FLOAT, xo + i * xs) / y.getAtIndex(JAVA_FLOAT, yo + i * ys));
        }
      }
      default -> {
        for (long i = 0; i < n; i++) {
          o.setAtIndex(JAVA_FLOAT, oo + i * os, x.getAtIndex(JAVA_FLOAT, xo + i * xs));
        }
      }
    }
  }

  /** {@code t} broadcast to {@code dims}, in a new tensor in {@code arena}. */
  static Tensor expand(Arena arena, Tensor t, long[] dims) {
    if (t.shape().equals(Shape.of(dims))) {
      return t;
    }
    Tensor out = Tensor.uninitialized(arena, dims);
    if (out.size() == 0) {
      return out;
    }
    Walk walk = new Walk(dims, broadcastStrides(dims, dims),
        broadcastStrides(t.shape().dims(), dims));
    long n = walk.inner();
    for (long r = 0, rows = walk.rows(); r < rows; r++, walk.advance()) {
      binaryRow(COPY, out.segment(), walk.offset(0), walk.innerStride(0), t.segment(),
          walk.offset(1), walk.innerStride(1), null, 0, 0, n);
    }
    return out;
  }

  /**
   * {@code g} summed down to {@code dims} (a shape that broadcasts to g's): the backward of a
   * broadcast. Returns g itself when the shapes agree (the engine never writes a gradient it did
   * not allocate).
   */
  static Tensor sumTo(Arena arena, Tensor g, long[] dims) {
    if (g.shape().equals(Shape.of(dims))) {
      return g;
    }
    return sumToCopy(arena, g, dims);
  }

  /** As {@link #sumTo}, always into a new tensor. */
  static Tensor sumToCopy(Arena arena, Tensor g, long[] dims) {
    Tensor out = Tensor.uninitialized(arena, dims);
    sumInto(g, dims, out.segment());
    return out;
  }

  /**
   * Sums {@code g} into {@code out}, a dense tensor of shape {@code dims} (broadcasting to g's
   * shape; its rank may be lower), in double: the float result is the correctly rounded sum of
   * the float64 sum, more accurate than a float accumulation of long rows.
   */
  static void sumInto(Tensor g, long[] dims, MemorySegment out) {
    long[] gDims = g.shape().dims();
    long outSize = Shape.of(dims).size();
    if (outSize > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("dims: a reduction to " + outSize + " elements is too"
          + " large for its float64 accumulators");
    }
    double[] acc = new double[(int) outSize];
    if (g.size() > 0) {
      // the index space is g's (a dense walk over g); the accumulator has zero strides
      long[] accStrides = broadcastStrides(dims, gDims);
      Walk walk = new Walk(gDims, broadcastStrides(gDims, gDims), accStrides);
      MemorySegment x = g.segment();
      long n = walk.inner();
      long xs = walk.innerStride(0);
      long as = walk.innerStride(1);
      for (long r = 0, rows = walk.rows(); r < rows; r++, walk.advance()) {
        long xo = walk.offset(0);
        int ao = (int) walk.offset(1);
        if (as == 0) {
          double s = 0;
          for (long i = 0; i < n; i++) {
            s += x.getAtIndex(JAVA_FLOAT, xo + i * xs);
          }
          acc[ao] += s;
        } else {
          for (long i = 0; i < n; i++) {
            acc[(int) (ao + i * as)] += x.getAtIndex(JAVA_FLOAT, xo + i * xs);
          }
        }
      }
    }
    for (int i = 0; i < acc.length; i++) {
      out.setAtIndex(JAVA_FLOAT, i, (float) acc[i]);
    }
  }

  private static Tensor negateInPlace(Tensor t) {
    MemorySegment s = t.segment();
    for (long i = 0, n = t.size(); i < n; i++) {
      s.setAtIndex(JAVA_FLOAT, i, -s.getAtIndex(JAVA_FLOAT, i));
    }
    return t;
  }

  // ---- unary

  // unary operation codes
  static final int NEG = 0;
  static final int SQRT = 1;
  static final int EXP = 2;
  static final int LOG = 3;
  static final int TANH = 4;
  static final int SIGMOID = 5;
  static final int ABS = 6;
  static final int POW = 7;
  static final int CLAMP = 8;
  static final int ADD_SCALAR = 9;
  static final int MUL_SCALAR = 10;
  static final int DIV_SCALAR = 11;
  static final int RELU = 12;
  static final int GELU = 13;
  static final int GELU_TANH = 14;

  static Tensor neg(Tensor x) {
    return unary(NEG, x, 0, 0, "Tensor.neg");
  }

  static Tensor sqrt(Tensor x) {
    return unary(SQRT, x, 0, 0, "Tensor.sqrt");
  }

  static Tensor exp(Tensor x) {
    return unary(EXP, x, 0, 0, "Tensor.exp");
  }

  static Tensor log(Tensor x) {
    return unary(LOG, x, 0, 0, "Tensor.log");
  }

  static Tensor tanh(Tensor x) {
    return unary(TANH, x, 0, 0, "Tensor.tanh");
  }

  static Tensor sigmoid(Tensor x) {
    return unary(SIGMOID, x, 0, 0, "Tensor.sigmoid");
  }

  static Tensor abs(Tensor x) {
    return unary(ABS, x, 0, 0, "Tensor.abs");
  }

  static Tensor pow(Tensor x, float exponent) {
    return unary(POW, x, exponent, 0, "Tensor.pow");
  }

  static Tensor clamp(Tensor x, float min, float max) {
    if (Float.isNaN(min) || Float.isNaN(max)) {
      throw new IllegalArgumentException("min, max: expected numbers, got min=" + min + " max="
          + max);
    }
    return unary(CLAMP, x, min, max, "Tensor.clamp");
  }

  static Tensor add(Tensor x, float value) {
    return unary(ADD_SCALAR, x, value, 0, "Tensor.add");
  }

  static Tensor sub(Tensor x, float value) {
    return unary(ADD_SCALAR, x, -value, 0, "Tensor.sub");
  }

  static Tensor mul(Tensor x, float value) {
    return unary(MUL_SCALAR, x, value, 0, "Tensor.mul");
  }

  static Tensor div(Tensor x, float value) {
    return unary(DIV_SCALAR, x, value, 0, "Tensor.div");
  }

  static Tensor relu(Tensor x) {
    return unary(RELU, x, 0, 0, "Tensor.relu");
  }

  static Tensor gelu(Tensor x, String approximate) {
    if (approximate == null) {
      throw new NullPointerException("approximate");
    }
    return switch (approximate) {
      case "none" -> unary(GELU, x, 0, 0, "Tensor.gelu");
      case "tanh" -> unary(GELU_TANH, x, 0, 0, "Tensor.gelu");
      default -> throw new IllegalArgumentException(
          "approximate: expected \"none\" or \"tanh\", got \"" + approximate + "\"");
    };
  }

  /** Whether the backward of {@code op} reads the output (else the input, or nothing). */
  private static boolean savesOutput(int op) {
    return op == SQRT || op == EXP || op == TANH || op == SIGMOID;
  }

  private static boolean savesInput(int op) {
    return op == LOG || op == ABS || op == POW || op == CLAMP || op == RELU || op == GELU
        || op == GELU_TANH;
  }

  private static Tensor unary(int op, Tensor x, float p, float q, String name) {
    Arena arena = arenaOf(x);
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    unaryForward(op, x.segment(), out.segment(), x.size(), p, q);
    List<Tensor> saved = savesOutput(op) ? List.of(out) : savesInput(op) ? List.of(x) : List.of();
    Autograd.record(name, List.of(x), List.of(out), saved, (scratch, g) -> {
      if (g[0] == null) {
        return new Tensor[] {null};
      }
      Tensor dx = Tensor.uninitialized(scratch, x.shape().dims());
      unaryBackward(op, x.segment(), out.segment(), g[0].segment(), dx.segment(), x.size(), p,
          q);
      return new Tensor[] {dx};
    });
    return out;
  }

  private static void unaryForward(int op, MemorySegment x, MemorySegment o, long n, float p,
      float q) {
    switch (op) {
      case RELU -> NativeBindings.activationForward(o, x, n, AbiConstants.ACTIVATION_RELU);
      case GELU -> NativeBindings.activationForward(o, x, n, AbiConstants.ACTIVATION_GELU);
      case GELU_TANH ->
          NativeBindings.activationForward(o, x, n, AbiConstants.ACTIVATION_GELU_TANH);
      case MUL_SCALAR -> NativeBindings.scale(o, x, p, n);
      default -> {
        for (long i = 0; i < n; i++) {
          float v = x.getAtIndex(JAVA_FLOAT, i);
          o.setAtIndex(JAVA_FLOAT, i, unaryValue(op, v, p, q));
        }
      }
    }
  }

  private static float unaryValue(int op, float v, float p, float q) {
    return switch (op) {
      case NEG -> -v;
      case SQRT -> (float) Math.sqrt(v);
      case EXP -> (float) Math.exp(v);
      case LOG -> (float) Math.log(v);
      case TANH -> (float) Math.tanh(v);
      case SIGMOID -> (float) (1 / (1 + Math.exp(-(double) v)));
      case ABS -> Math.abs(v);
      case POW -> (float) Math.pow(v, p);
      // NaN stays NaN: Math.max/min propagate it, as torch.clamp does
      case CLAMP -> Math.min(Math.max(v, p), q);
      case ADD_SCALAR -> v + p;
      case DIV_SCALAR -> v / p;
      default -> throw new AssertionError(op);
    };
  }

  private static void unaryBackward(int op, MemorySegment x, MemorySegment y, MemorySegment g,
      MemorySegment dx, long n, float p, float q) {
    switch (op) {
      case RELU -> NativeBindings.activationBackward(dx, g, x, n, AbiConstants.ACTIVATION_RELU);
      case GELU -> NativeBindings.activationBackward(dx, g, x, n, AbiConstants.ACTIVATION_GELU);
      case GELU_TANH ->
          NativeBindings.activationBackward(dx, g, x, n, AbiConstants.ACTIVATION_GELU_TANH);
      case MUL_SCALAR -> NativeBindings.scale(dx, g, p, n);
      case ADD_SCALAR -> MemorySegment.copy(g, 0, dx, 0, n * Float.BYTES);
      default -> {
        boolean readsX = savesInput(op);
        boolean readsY = savesOutput(op);
        for (long i = 0; i < n; i++) {
          float gi = g.getAtIndex(JAVA_FLOAT, i);
          float v = readsX ? x.getAtIndex(JAVA_FLOAT, i) : 0f;
          float r = readsY ? y.getAtIndex(JAVA_FLOAT, i) : 0f;
          float d = switch (op) {
            case NEG -> -gi;
            case SQRT -> gi / (2 * r);
            case EXP -> gi * r;
            case LOG -> gi / v;
            case TANH -> gi * (1 - r * r);
            case SIGMOID -> gi * r * (1 - r);
            case ABS -> gi * Math.signum(v);
            // PyTorch's: exponent · x^(exponent − 1), masked to 0 where the exponent is 0
            case POW -> p == 0 ? 0f : gi * (float) (p * Math.pow(v, p - 1));
            // the gradient passes where min <= x <= max (not at NaN), as torch.clamp's
            case CLAMP -> v >= p && v <= q ? gi : 0f;
            case DIV_SCALAR -> gi / p;
            default -> throw new AssertionError(op);
          };
          dx.setAtIndex(JAVA_FLOAT, i, d);
        }
      }
    }
  }
}
