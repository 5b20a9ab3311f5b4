package org.seq4j.fuzz;

import static org.seq4j.reference.Arrays64.assertClose;
import static org.seq4j.reference.Arrays64.doubles;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.seq4j.Backend;
import org.seq4j.MatmulOptions;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.nn.Embedding;
import org.seq4j.nn.Gru;
import org.seq4j.nn.LayerNorm;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Mode;
import org.seq4j.nn.MultiHeadAttention;
import org.seq4j.nn.Parameter;
import org.seq4j.nn.RecurrentLayer;
import org.seq4j.nn.RecurrentState;
import org.seq4j.nn.ScaledDotProductAttention;
import org.seq4j.nn.SimpleRnn;
import org.seq4j.reference.AttentionReference;
import org.seq4j.reference.FiniteDifferences;
import org.seq4j.reference.LayerNormReference;
import org.seq4j.reference.MatmulReference;
import org.seq4j.reference.RecurrentReference;
import org.seq4j.reference.RecurrentReference.Cell;
import org.seq4j.reference.Tolerances;
import org.seq4j.reference.TrainingReference;
import org.seq4j.train.Adam;
import org.seq4j.train.Losses;
import org.seq4j.train.Optimizer;
import org.seq4j.train.Sgd;

/**
 * The fuzz's case generators over the public API, one per call family. Each draws sizes, options
 * and values from {@link Fuzz#random}, plants at most one defect (see {@link Fuzz}), runs the call
 * and, when no defect was planted, checks the results against the float64 references of {@code
 * org.seq4j.reference} with the tolerances of {@link Tolerances}. Adding a call family: write a
 * {@code static void name(Fuzz f)} here and list it in {@link #ALL}.
 */
public final class FuzzCases {
  private FuzzCases() {}

  /** A named generator. */
  public record Generator(String kind, Consumer<Fuzz> body) {}

  /** Every generator; a case picks one by its seed. */
  public static final List<Generator> ALL = List.of(
      new Generator("Tensor.create", FuzzCases::tensorCreate),
      new Generator("Tensor.view", FuzzCases::tensorView),
      new Generator("Tensor.copy", FuzzCases::tensorCopy),
      new Generator("Recurrent.into", FuzzCases::recurrentInto),
      new Generator("MultiHeadAttention.step", FuzzCases::multiHeadAttentionStep),
      new Generator("GradientClipping", FuzzCases::clipping),
      new Generator("TensorOps.matmul", FuzzCases::matmul),
      new Generator("TensorOps.elementwise", FuzzCases::elementwise),
      new Generator("Recurrent", FuzzCases::recurrent),
      new Generator("Recurrent", FuzzCases::recurrent),
      new Generator("ScaledDotProductAttention", FuzzCases::attention),
      new Generator("ScaledDotProductAttention", FuzzCases::attention),
      new Generator("MultiHeadAttention", FuzzCases::multiHeadAttention),
      new Generator("Linear", FuzzCases::linear),
      new Generator("LayerNorm", FuzzCases::layerNorm),
      new Generator("Embedding", FuzzCases::embedding),
      new Generator("Losses", FuzzCases::losses),
      new Generator("Optimizer", FuzzCases::optimizer));

  /** The seed of case {@code index} of a run seeded {@code seed}. */
  public static long caseSeed(long seed, long index) {
    long z = seed * 0x9E3779B97F4A7C15L + index * 0xBF58476D1CE4E5B9L + 0x632BE59BD9B4E019L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** The generator case {@code caseSeed} runs. */
  public static Generator generator(long caseSeed) {
    return ALL.get((int) Math.floorMod(caseSeed, (long) ALL.size()));
  }

  /** Runs one case and judges it; never throws (except for VM errors it cannot judge). */
  public static Fuzz.Outcome run(long caseSeed) {
    Generator g = generator(caseSeed);
    Fuzz f = new Fuzz(g.kind(), caseSeed);
    Throwable thrown = null;
    try {
      g.body().accept(f);
    } catch (VirtualMachineError fatal) {
      if (fatal instanceof StackOverflowError || fatal instanceof OutOfMemoryError) {
        thrown = fatal;
      } else {
        throw fatal;
      }
    } catch (Throwable t) {
      thrown = t;
    } finally {
      f.close();
    }
    return f.judge(thrown);
  }

  // ------------------------------------------------------------------ helpers

  private static final Class<IllegalArgumentException> IAE = IllegalArgumentException.class;

  private static long size(Random r) {
    return switch (r.nextInt(10)) {
      case 0 -> 1;
      case 1 -> 17;
      default -> 1 + r.nextInt(5);
    };
  }

  private static long product(long[] dims) {
    long p = 1;
    for (long d : dims) {
      p *= d;
    }
    return p;
  }

  private static double[] d(Tensor t) {
    return doubles(t);
  }

  private static Backend backend(Random r) {
    Backend[] all = Backend.values();
    return all[r.nextInt(all.length)];
  }

  /** rows of an (…, cols) shape. */
  private static long[] leading(Random r, long last) {
    int rank = 1 + r.nextInt(3);
    long[] dims = new long[rank];
    for (int i = 0; i < rank - 1; i++) {
      dims[i] = 1 + r.nextInt(3);
    }
    dims[rank - 1] = last;
    return dims;
  }

  // ------------------------------------------------------------------ tensors

  static void tensorCreate(Fuzz f) {
    Random r = f.random;
    f.names("arena", "dims", "shape", "data", "low", "high");
    int rank = r.nextInt(4);
    long[] dims = new long[rank];
    for (int i = 0; i < rank; i++) {
      dims[i] = r.nextInt(5);
    }
    if (f.plant(0.08, "dims", "a negative size", IAE)) {
      dims = rank == 0 ? new long[] {-1} : dims;
      dims[r.nextInt(dims.length)] = -1 - r.nextInt(3);
    } else if (f.plant(0.05, "dims", "a byte count past Long.MAX_VALUE", IAE)) {
      dims = r.nextBoolean() ? new long[] {1L << 61} : new long[] {1L << 32, 1L << 32, 3};
    }
    Arena arena = f.arena();
    double a = r.nextDouble();
    if (a < 0.04 && f.plant(1, "arena", "closed", IllegalStateException.class)) {
      arena = Arena.ofConfined();
      arena.close();
    } else if (a >= 0.04 && a < 0.08
        && f.plant(1, "arena", "another thread's confined arena", WrongThreadException.class)) {
      arena = Fuzz.foreignArena();
    } else if (a >= 0.08 && a < 0.1 && f.plant(1, "arena", "null", NullPointerException.class)) {
      arena = null;
    }
    int n = (int) Math.max(0, Math.min(product(dims), 1000));
    Tensor t;
    float[] expected = null;
    switch (r.nextInt(7)) {
      case 0 -> {
        t = Tensor.zeros(arena, dims);
        expected = new float[n];
      }
      case 1 -> {
        t = Tensor.ones(arena, dims);
        expected = new float[n];
        java.util.Arrays.fill(expected, 1f);
      }
      case 2 -> {
        float value = (float) r.nextGaussian();
        t = Tensor.full(arena, value, dims);
        expected = new float[n];
        java.util.Arrays.fill(expected, value);
      }
      case 3 -> t = Tensor.uninitialized(arena, dims);
      case 4 -> {
        long seed = r.nextLong();
        t = Tensor.randomNormal(arena, seed, dims);
        expected = Tensor.randomNormal(f.arena(), seed, dims).toArray();
      }
      case 5 -> {
        float low = (float) r.nextGaussian();
        float high = low + (float) r.nextDouble() * 3;
        if (f.plant(0.15, "low", "low >= high, or not finite", IAE)) {
          high = r.nextBoolean() ? low : Float.NaN;
        }
        t = Tensor.randomUniform(arena, r.nextLong(), low, high, dims);
        for (float v : t.toArray()) {
          if (!(v >= low && v < high)) {
            throw new AssertionError("randomUniform: " + v + " outside [" + low + ", " + high + ")");
          }
        }
      }
      default -> {
        float[] data = new float[n];
        for (int i = 0; i < n; i++) {
          data[i] = (float) r.nextGaussian();
        }
        if (f.plant(0.1, "data", "wrong length", IAE)) {
          data = new float[n + 1 + r.nextInt(2)];
        } else if (f.plant(0.05, "data", "null", NullPointerException.class)) {
          data = null;
        }
        t = Tensor.fromArray(arena, data, dims);
        expected = data;
      }
    }
    if (!java.util.Arrays.equals(t.shape().dims(), dims)) {
      throw new AssertionError("shape: expected " + java.util.Arrays.toString(dims) + ", got "
          + t.shape());
    }
    if (expected != null && !java.util.Arrays.equals(expected, t.toArray())) {
      throw new AssertionError("values: differ from what was asked");
    }
  }

  static void tensorView(Fuzz f) {
    Random r = f.random;
    f.names("dims", "start", "end", "index", "tensor");
    int rank = 1 + r.nextInt(3);
    long[] dims = new long[rank];
    for (int i = 0; i < rank; i++) {
      dims[i] = r.nextInt(4) + (i == 0 ? 0 : 1);
    }
    Arena arena = f.arena();
    Tensor t = Tensor.randomNormal(arena, r.nextLong(), dims);
    float[] all = t.toArray();
    long size = t.size();
    switch (r.nextInt(3)) {
      case 0 -> {
        long[] target = switch (r.nextInt(4)) {
          case 0 -> new long[] {size};
          case 1 -> new long[] {1, size, 1};
          case 2 -> new long[] {-1};
          default -> new long[] {size == 0 ? 0 : 1, -1};
        };
        if (size == 0 && target.length == 2) {
          // PyTorch's rule too: -1 beside a 0 could be any size
          f.plantNow("dims", "-1 beside a 0 is ambiguous", IAE);
        }
        if (f.plant(0.15, "dims", "another size", IAE)) {
          target = new long[] {size + 1};
        } else if (f.plant(0.05, "dims", "two -1", IAE)) {
          target = new long[] {-1, -1};
        } else if (f.plant(0.05, "dims", "a size below -1", IAE)) {
          target = new long[] {-2, -(size == 0 ? 1 : size)};
        } else if (f.plant(0.03, "dims", "null", NullPointerException.class)) {
          target = null;
        }
        Tensor view = t.reshape(target);
        if (view.size() != size || !java.util.Arrays.equals(all, view.toArray())) {
          throw new AssertionError("reshape: values differ");
        }
      }
      case 1 -> {
        long rows = dims[0];
        long start = r.nextInt((int) rows + 1);
        long end = start + r.nextInt((int) (rows - start) + 1);
        if (f.plant(0.2, "start", "out of [0, rows]", IndexOutOfBoundsException.class)) {
          switch (r.nextInt(3)) {
            case 0 -> start = -1 - r.nextInt(3);
            case 1 -> end = rows + 1 + r.nextInt(3);
            default -> {
              start = end + 1;
              end = Math.max(0, end - 1) == end ? end : end - 1;
              if (start <= end) {
                start = end + 1;
              }
            }
          }
        }
        Tensor view = t.slice(start, end);
        long row = size / Math.max(1, rows);
        float[] expected = java.util.Arrays.copyOfRange(all, (int) (start * row),
            (int) (end * row));
        if (!java.util.Arrays.equals(expected, view.toArray())) {
          throw new AssertionError("slice: values differ");
        }
      }
      default -> {
        long[] index = new long[rank];
        java.util.Objects.requireNonNull(index);
        for (int i = 0; i < rank; i++) {
          index[i] = dims[i] == 0 ? 0 : r.nextInt((int) dims[i]);
        }
        boolean empty = size == 0;
        if (empty) {
          f.plantNow("index", "into an empty tensor", IndexOutOfBoundsException.class);
        } else if (f.plant(0.2, "index", "out of range", IndexOutOfBoundsException.class)) {
          int axis = r.nextInt(rank);
          index[axis] = r.nextBoolean() ? -1 : dims[axis];
        } else if (f.plant(0.1, "index", "wrong count", IAE)) {
          index = java.util.Arrays.copyOf(index, rank + 1);
        }
        float value = t.get(index);
        long flat = 0;
        for (int i = 0; i < rank; i++) {
          flat = flat * dims[i] + index[i];
        }
        if (value != all[(int) flat]) {
          throw new AssertionError("get: expected " + all[(int) flat] + ", got " + value);
        }
        float v = (float) r.nextGaussian();
        t.set(v, index);
        if (t.get(index) != v) {
          throw new AssertionError("set: not read back");
        }
      }
    }
  }

  static void tensorCopy(Fuzz f) {
    Random r = f.random;
    f.names("segment", "dims", "source", "tensor", "target", "arena", "value");
    Arena arena = f.arena();
    long[] dims = {r.nextInt(4), 1 + r.nextInt(3)};
    long size = dims[0] * dims[1];
    Tensor t = Tensor.randomNormal(arena, r.nextLong(), dims);
    float[] values = t.toArray();
    switch (r.nextInt(4)) {
      case 0 -> {
        java.lang.foreign.MemorySegment segment = t.segment();
        if (f.plant(0.1, "segment", "on the heap", IAE)) {
          segment = java.lang.foreign.MemorySegment.ofArray(new float[(int) size]);
        } else if (size > 0 && f.plant(0.1, "segment", "not 4-byte aligned", IAE)) {
          segment = arena.allocate(size * 4 + 1, 64).asSlice(1, size * 4);
        } else if (f.plant(0.1, "segment", "of another size", IAE)) {
          segment = arena.allocate(size * 4 + 4, 64);
        } else if (f.plant(0.03, "segment", "null", NullPointerException.class)) {
          segment = null;
        }
        boolean readOnly = segment != null && r.nextBoolean();
        Tensor view = Tensor.ofSegment(readOnly ? segment.asReadOnly() : segment, dims);
        if (view.isReadOnly() != readOnly || !java.util.Arrays.equals(values, view.toArray())) {
          throw new AssertionError("ofSegment: values or read-only flag differ");
        }
        if (readOnly && size > 0) {
          f.plantNow("tensor", "read-only", IAE);
          view.fill(1f);
        }
      }
      case 1 -> {
        Tensor target = f.hostile(Tensor.zeros(arena, f.shape(0.1, "source", dims, 0, 1)),
            "tensor", true, false);
        Tensor source = f.input(arena, "source", dims);
        target.copyFrom(source);
        if (!java.util.Arrays.equals(source.toArray(), target.toArray())) {
          throw new AssertionError("copyFrom: values differ");
        }
      }
      case 2 -> {
        Tensor source = f.hostile(t, "tensor", false, false);
        Arena into = arena;
        if (f.plant(0.05, "arena", "null", NullPointerException.class)) {
          into = null;
        }
        Tensor copy = source.copy(into);
        if (!java.util.Arrays.equals(values, copy.toArray())) {
          throw new AssertionError("copy: values differ");
        }
      }
      default -> {
        int capacity = (int) size;
        if (size > 0 && f.plant(0.15, "target", "too small", IAE,
            java.nio.BufferOverflowException.class)) {
          capacity = (int) size - 1;
        }
        java.nio.FloatBuffer target = java.nio.FloatBuffer.allocate(capacity);
        if (f.plant(0.05, "target", "read-only", IAE)) {
          target = target.asReadOnlyBuffer();
        } else if (f.plant(0.03, "target", "null", NullPointerException.class)) {
          target = null;
        }
        Tensor source = f.hostile(t, "tensor", false, false);
        source.copyTo(target);
        if (!java.util.Arrays.equals(values, target.array())) {
          throw new AssertionError("copyTo: values differ");
        }
      }
    }
  }

  // ------------------------------------------------------------------ tensor ops

  static void matmul(Fuzz f) {
    Random r = f.random;
    f.names("a", "b", "out", "options", "arena");
    int m = (int) size(r) - (r.nextInt(8) == 0 ? 1 : 0);
    int n = (int) size(r) - (r.nextInt(8) == 0 ? 1 : 0);
    int k = (int) size(r) - (r.nextInt(6) == 0 ? 1 : 0);
    boolean ta = r.nextBoolean();
    boolean tb = r.nextBoolean();
    float alpha = r.nextInt(3) == 0 ? 1f : (float) r.nextGaussian();
    float beta = switch (r.nextInt(3)) {
      case 0 -> 0f;
      case 1 -> 1f;
      default -> (float) r.nextGaussian();
    };
    boolean allocating = r.nextInt(6) == 0;
    if (allocating) {
      ta = false;
      tb = false;
    }
    MatmulOptions options = MatmulOptions.DEFAULT.transposeA(ta).transposeB(tb).alpha(alpha)
        .beta(beta).backend(backend(r));
    Arena arena = f.arena();
    // allocating: out is made to fit, so only k links a and b
    long[] aDims = f.shape(0.06, "a", ta ? new long[] {k, m} : new long[] {m, k},
        allocating ? new int[] {1} : new int[] {0, 1});
    long[] bDims = f.shape(0.06, "b", tb ? new long[] {n, k} : new long[] {k, n},
        allocating ? new int[] {0} : new int[] {0, 1});
    long[] outDims = allocating ? new long[] {m, n} : f.shape(0.06, "out", new long[] {m, n}, 0, 1);
    Tensor a = f.input(arena, "a", aDims);
    Tensor b = f.input(arena, "b", bDims);
    Tensor out = allocating ? null : f.output(arena, "out", outDims);
    if (!allocating && a != null && out != null && out.size() > 0 && a.size() >= out.size()
        && a.isUsable() && f.plant(0.05, "out", "shares memory with a", IAE)) {
      out = Tensor.ofSegment(a.segment().asSlice(0, out.size() * 4L), outDims);
    }
    if (!allocating && f.plant(0.02, "options", "null", NullPointerException.class)) {
      options = null;
    }
    float[] before = out == null || !out.isUsable() ? null : out.toArray();
    float[] aValues = a != null && a.isUsable() ? a.toArray() : null;
    float[] bValues = b != null && b.isUsable() ? b.toArray() : null;
    if (allocating) {
      out = TensorOps.matmul(arena, a, b);
      if (f.valid()) {
        alpha = 1;
        beta = 0;
        before = new float[m * n];
        aValues = a.toArray();
        bValues = b.toArray();
      }
    } else {
      TensorOps.matmul(a, b, out, options);
    }
    double[] expected = MatmulReference.matmul(aValues, bValues, before, m, n, k, ta, tb, alpha,
        beta);
    double[] magnitude = MatmulReference.magnitude(aValues, bValues, m, n, k, ta, tb);
    float[] actual = out.toArray();
    double tolerance = Tolerances.matmulRelative(k);
    for (int i = 0; i < expected.length; i++) {
      double allowed = tolerance * (Math.abs(alpha) * magnitude[i] + Math.abs(beta * before[i]))
          + 1e-30;
      if (!(Math.abs(expected[i] - actual[i]) <= allowed)) {
        throw new AssertionError("out[" + i + "]: expected " + expected[i] + ", got " + actual[i]
            + " (m=" + m + " n=" + n + " k=" + k + " " + options + ")");
      }
    }
  }

  static void elementwise(Fuzz f) {
    Random r = f.random;
    int rank = r.nextInt(4);
    long[] dims = new long[rank];
    for (int i = 0; i < rank; i++) {
      dims[i] = r.nextInt(6);
    }
    int[] axes = new int[rank];
    for (int i = 0; i < rank; i++) {
      axes[i] = i;
    }
    Arena arena = f.arena();
    float alpha = (float) r.nextGaussian();
    int op = r.nextInt(3);
    switch (op) {
      case 0 -> {
        f.names("a", "b", "out");
        Tensor a = f.input(arena, "a", f.shape(0.05, "a", dims, axes));
        Tensor b = f.input(arena, "b", f.shape(0.05, "b", dims, axes));
        int alias = r.nextInt(4);
        Tensor out = alias == 0 && a != null ? a : alias == 1 && b != null ? b
            : f.output(arena, "out", f.shape(0.05, "out", dims, axes));
        float[] av = a != null && a.isUsable() ? a.toArray() : null;
        float[] bv = b != null && b.isUsable() ? b.toArray() : null;
        if (out != null && out.size() > 1 && b != null && b.size() == out.size() && b.isUsable()
            && out != a && out != b && f.plant(0.05, "out", "overlaps b partly", IAE)) {
          Tensor wide = Tensor.zeros(arena, out.size() + 1);
          wide.copyFrom(Tensor.zeros(arena, out.size() + 1));
          b = Tensor.ofSegment(wide.segment().asSlice(0, out.size() * 4L), out.shape().dims());
          out = Tensor.ofSegment(wide.segment().asSlice(4, out.size() * 4L), out.shape().dims());
          bv = b.toArray();
        }
        TensorOps.add(a, b, out);
        double[] expected = new double[av.length];
        for (int i = 0; i < av.length; i++) {
          expected[i] = (double) av[i] + bv[i];
        }
        assertClose(expected, d(out), Tolerances.ELEMENTWISE_RELATIVE, "add");
      }
      case 1 -> {
        f.names("x", "out", "alpha");
        boolean inPlace = r.nextBoolean();
        Tensor x = f.input(arena, "x", inPlace ? dims : f.shape(0.05, "x", dims, axes));
        Tensor out = inPlace && x != null ? x
            : f.output(arena, "out", f.shape(0.05, "out", dims, axes));
        float[] xv = x != null && x.isUsable() ? x.toArray() : null;
        TensorOps.scale(x, alpha, out);
        double[] expected = new double[xv.length];
        for (int i = 0; i < xv.length; i++) {
          expected[i] = (double) alpha * xv[i];
        }
        assertClose(expected, d(out), Tolerances.ELEMENTWISE_RELATIVE, "scale");
      }
      default -> {
        f.names("x", "y", "alpha");
        Tensor x = f.input(arena, "x", f.shape(0.05, "x", dims, axes));
        Tensor y = f.output(arena, "y", f.shape(0.05, "y", dims, axes));
        if (x != null && y == null && f.valid()) {
          throw new IllegalStateException("unreachable");
        }
        if (x != null && x.size() > 0 && x.isUsable() && f.plant(0.05, "y", "is x", IAE)) {
          y = x;
        }
        float[] xv = x != null && x.isUsable() ? x.toArray() : null;
        float[] yv = y != null && y.isUsable() ? y.toArray() : null;
        TensorOps.axpy(alpha, x, y);
        double[] expected = new double[xv.length];
        for (int i = 0; i < xv.length; i++) {
          expected[i] = yv[i] + (double) alpha * xv[i];
        }
        assertClose(expected, d(y), Tolerances.ELEMENTWISE_RELATIVE * 2, "axpy");
      }
    }
  }

  // ------------------------------------------------------------------ recurrent layers

  static void recurrent(Fuzz f) {
    Random r = f.random;
    f.names("input", "initial", "lengths", "mode", "arena", "layer", "inputSize", "hiddenSize",
        "numLayers", "projSize", "dropout", "backend", "context", "gradOutput", "gradFinal",
        "gradFinalState", "state", "output", "hidden", "cell", "step");
    Cell cell = Cell.values()[r.nextInt(4)];
    boolean lstm = cell == Cell.LSTM;
    int in = 1 + r.nextInt(4);
    int hidden = 1 + r.nextInt(5);
    int layers = 1 + r.nextInt(2);
    boolean bidirectional = r.nextInt(3) == 0;
    boolean bias = r.nextInt(4) != 0;
    boolean peephole = lstm && r.nextBoolean();
    int proj = lstm && hidden > 1 && r.nextInt(3) == 0 ? 1 + r.nextInt(hidden - 1) : 0;
    boolean batchFirst = r.nextInt(4) == 0;
    Backend backend = r.nextBoolean() ? Backend.ONEDNN : Backend.BLAS;
    int t = 1 + r.nextInt(4);
    int n = 1 + r.nextInt(3);
    int d = bidirectional ? 2 : 1;
    int hout = proj > 0 ? proj : hidden;
    // builder arguments: one of them may be the defect
    long builtHidden = hidden;
    int builtLayers = layers;
    float dropout = 0;
    long builtProj = proj;
    if (f.plant(0.03, "hiddenSize", "0", IAE)) {
      builtHidden = 0;
    } else if (f.plant(0.02, "hiddenSize", "its weights' byte count overflows", IAE)) {
      builtHidden = 1L << 61;
    } else if (f.plant(0.03, "numLayers", "0", IAE)) {
      builtLayers = 0;
    } else if (f.plant(0.03, "dropout", "not in [0, 1)", IAE)) {
      dropout = r.nextBoolean() ? 1f : -0.5f;
    } else if (lstm && f.plant(0.03, "projSize", ">= hiddenSize", IAE)) {
      builtProj = hidden;
    }
    RecurrentLayer layer = switch (cell) {
      case LSTM -> Lstm.builder(in, builtHidden).numLayers(builtLayers)
          .bidirectional(bidirectional).bias(bias).peepholes(peephole).projSize(builtProj)
          .batchFirst(batchFirst).dropout(dropout).backend(backend).seed(r.nextLong()).build();
      case GRU -> Gru.builder(in, builtHidden).numLayers(builtLayers).bidirectional(bidirectional)
          .bias(bias).batchFirst(batchFirst).dropout(dropout).backend(backend).seed(r.nextLong())
          .build();
      default -> SimpleRnn.builder(in, builtHidden)
          .nonlinearity(cell == Cell.RNN_RELU ? SimpleRnn.Nonlinearity.RELU
              : SimpleRnn.Nonlinearity.TANH)
          .numLayers(builtLayers).bidirectional(bidirectional).bias(bias).batchFirst(batchFirst)
          .dropout(dropout).backend(backend).seed(r.nextLong()).build();
    };
    try (layer) {
      RecurrentReference.Config config = new RecurrentReference.Config(cell, in, hidden, layers,
          bidirectional, bias, peephole, proj);
      Map<String, double[]> params = new LinkedHashMap<>();
      for (Parameter p : layer.parameters()) {
        params.put(p.name(), d(p.data()));
      }
      Arena arena = f.arena();
      boolean withLengths = r.nextInt(3) == 0;
      boolean withInitial = r.nextBoolean();
      long[] lengths = null;
      if (withLengths) {
        lengths = new long[n];
        for (int i = 0; i < n; i++) {
          lengths[i] = 1 + r.nextInt(t);
        }
        if (f.plant(0.15, "lengths", "a length outside [1, T]", IAE)) {
          lengths[r.nextInt(n)] = r.nextBoolean() ? 0 : r.nextBoolean() ? t + 1 : -1;
        } else if (f.plant(0.05, "lengths", "not one per sample", IAE)) {
          lengths = java.util.Arrays.copyOf(lengths, n + 1);
          lengths[n] = 1;
        }
      }
      long[] inputDims = batchFirst ? new long[] {n, t, in} : new long[] {t, n, in};
      Tensor input = f.input(arena, "input", f.shape(0.05, "input", inputDims, 2));
      RecurrentState initial = null;
      if (withInitial) {
        Tensor h0 = f.input(arena, "initial", f.shape(0.05, "initial", new long[] {layers * d, n,
            hout}, 0, 1, 2));
        Tensor c0 = lstm ? f.input(arena, "initial", f.shape(0.05, "initial",
            new long[] {layers * d, n, hidden}, 0, 1, 2)) : null;
        if (f.valid() && lstm && proj == 0 && h0 != null && h0.isUsable() && c0 != null
            && h0.shape().equals(c0.shape()) && r.nextInt(20) == 0) {
          c0 = h0; // read only: one tensor may serve as both (only a written state must not)
        }
        if (lstm && c0 == null && h0 != null && f.valid()) {
          throw new IllegalStateException("unreachable");
        }
        initial = new RecurrentState(h0, c0);
      }
      Mode mode = r.nextBoolean() ? Mode.TRAINING : Mode.INFERENCE;
      boolean closeFirst = f.plant(0.02, "layer", "closed", IllegalStateException.class);
      if (closeFirst) {
        layer.close();
      }
      RecurrentLayer.Result result = layer.forward(arena, input, initial, lengths, mode);
      double[] x = d(input);
      if (batchFirst) {
        x = swap(x, n, t, in);
      }
      double[] h0 = initial == null ? null : d(initial.hidden());
      double[] c0 = initial == null || !lstm ? null : d(initial.cell());
      int[] lens = lengths == null ? null : java.util.Arrays.stream(lengths)
          .mapToInt(v -> (int) v).toArray();
      RecurrentReference.Result expected = RecurrentReference.forward(config, params, x, t, n,
          h0, c0, lens);
      double[] output = d(result.output());
      if (batchFirst) {
        output = swap(output, n, t, d * hout);
      }
      assertClose(expected.output(), output, Tolerances.RECURRENT_FORWARD, "output");
      assertClose(expected.hn(), d(result.finalState().hidden()), Tolerances.RECURRENT_FORWARD,
          "h_n");
      if (lstm) {
        assertClose(expected.cn(), d(result.finalState().cell()), Tolerances.RECURRENT_FORWARD,
            "c_n");
      }
      if (mode == Mode.TRAINING && r.nextBoolean()) {
        recurrentBackward(f, layer, config, params, result, x, h0, c0, lens, t, n, d, hout,
            hidden, batchFirst, arena);
      } else if (!bidirectional && r.nextInt(3) == 0) {
        recurrentStep(f, layer, config, params, x, h0, c0, n, hout, hidden, layers, in, arena);
      } else if (bidirectional && r.nextInt(8) == 0) {
        f.plantNow("step", "a bidirectional layer cannot stream", IllegalStateException.class);
        layer.step(Tensor.zeros(arena, n, in), new RecurrentState(Tensor.zeros(arena, layers * d,
            n, hout), lstm ? Tensor.zeros(arena, layers * d, n, hidden) : null), null);
      }
    }
  }

  /** The allocation-free forward into the caller's tensors. */
  static void recurrentInto(Fuzz f) {
    Random r = f.random;
    f.names("input", "initial", "output", "finalState", "layer");
    boolean lstm = r.nextBoolean();
    int in = 1 + r.nextInt(4);
    int hidden = 1 + r.nextInt(4);
    int layers = 1 + r.nextInt(2);
    boolean bidirectional = r.nextInt(3) == 0;
    int d = bidirectional ? 2 : 1;
    int t = 1 + r.nextInt(4);
    int n = 1 + r.nextInt(3);
    Backend backend = r.nextBoolean() ? Backend.ONEDNN : Backend.BLAS;
    RecurrentLayer layer = lstm
        ? Lstm.builder(in, hidden).numLayers(layers).bidirectional(bidirectional)
            .backend(backend).seed(r.nextLong()).build()
        : Gru.builder(in, hidden).numLayers(layers).bidirectional(bidirectional)
            .backend(backend).seed(r.nextLong()).build();
    try (layer) {
      RecurrentReference.Config config = new RecurrentReference.Config(
          lstm ? Cell.LSTM : Cell.GRU, in, hidden, layers, bidirectional, true, false, 0);
      Map<String, double[]> params = new LinkedHashMap<>();
      for (Parameter p : layer.parameters()) {
        params.put(p.name(), d(p.data()));
      }
      Arena arena = f.arena();
      long[] stateDims = {layers * d, n, hidden};
      Tensor input = f.input(arena, "input", f.shape(0.05, "input", new long[] {t, n, in}, 2));
      RecurrentState initial = r.nextBoolean() ? null : new RecurrentState(
          f.input(arena, "initial", stateDims), lstm ? f.input(arena, "initial", stateDims) : null);
      Tensor output = f.output(arena, "output", f.shape(0.05, "output",
          new long[] {t, n, d * hidden}, 0, 1, 2));
      Tensor fh = f.output(arena, "finalState", f.shape(0.05, "finalState", stateDims, 0, 1, 2));
      Tensor fc = lstm ? f.output(arena, "finalState", stateDims) : null;
      if (lstm && fh != null && fh.isUsable() && f.plant(0.05, "finalState",
          "hidden and cell are one tensor", IAE)) {
        fc = fh;
      } else if (initial != null && fh != null && fh.isUsable() && initial.hidden() != null
          && initial.hidden().isUsable() && fh.shape().equals(initial.hidden().shape())
          && f.plant(0.05, "finalState", "is the initial state", IAE)) {
        fh = initial.hidden();
      } else if (output != null && input != null && input.isUsable() && output.isUsable()
          && d * hidden == in && f.plant(0.05, "output", "is the input", IAE)) {
        output = input;
      }
      RecurrentState finalState = new RecurrentState(fh, fc);
      if (f.plant(0.03, "finalState", "null", NullPointerException.class)) {
        finalState = null;
      }
      layer.forward(input, initial, output, finalState);
      double[] h0 = initial == null ? null : d(initial.hidden());
      double[] c0 = initial == null || !lstm ? null : d(initial.cell());
      RecurrentReference.Result expected = RecurrentReference.forward(config, params, d(input), t,
          n, h0, c0, null);
      assertClose(expected.output(), d(output), Tolerances.RECURRENT_FORWARD, "output");
      assertClose(expected.hn(), d(fh), Tolerances.RECURRENT_FORWARD, "finalState.hidden");
      if (lstm) {
        assertClose(expected.cn(), d(fc), Tolerances.RECURRENT_FORWARD, "finalState.cell");
      }
    }
  }

  private static void recurrentBackward(Fuzz f, RecurrentLayer layer,
      RecurrentReference.Config config, Map<String, double[]> params,
      RecurrentLayer.Result result, double[] x, double[] h0, double[] c0, int[] lens, int t,
      int n, int d, int hout, int hidden, boolean batchFirst, Arena arena) {
    Random r = f.random;
    boolean lstm = config.cell() == Cell.LSTM;
    int layers = config.numLayers();
    long[] gDims = batchFirst ? new long[] {n, t, d * hout} : new long[] {t, n, d * hout};
    Tensor gradOutput = f.input(arena, "gradOutput", f.shape(0.05, "gradOutput", gDims, 0, 1, 2));
    RecurrentState gradFinal = null;
    if (r.nextBoolean()) {
      Tensor gh = f.input(arena, "gradFinalState", new long[] {layers * d, n, hout});
      Tensor gc = lstm ? f.input(arena, "gradFinalState", layers * d, n, hidden) : null;
      gradFinal = new RecurrentState(gh, gc);
    }
    RecurrentLayer.Context context = result.context();
    if (f.plant(0.03, "context", "null", NullPointerException.class)) {
      context = null;
    }
    layer.zeroGrad();
    RecurrentLayer.Gradients grads = layer.backward(arena, context, gradOutput, gradFinal);
    double[] gOut = d(gradOutput);
    if (batchFirst) {
      gOut = swap(gOut, n, t, d * hout);
    }
    double[] gHn = gradFinal == null ? new double[layers * d * n * hout]
        : d(gradFinal.hidden());
    double[] gCn = !lstm ? null : gradFinal == null ? new double[layers * d * n * hidden]
        : d(gradFinal.cell());
    if (x.length <= 40) {
      double[] gO = gOut;
      java.util.function.DoubleSupplier loss = () -> RecurrentReference.weightedLoss(
          RecurrentReference.forward(config, params, x, t, n, h0, c0, lens), gO, gHn, gCn);
      double[] gradInput = d(grads.input());
      if (batchFirst) {
        gradInput = swap(gradInput, n, t, config.inputSize());
      }
      assertClose(FiniteDifferences.gradient(x, loss, FiniteDifferences.DEFAULT_STEP), gradInput,
          Tolerances.RECURRENT_BACKWARD, "grad input");
      if (h0 != null) {
        assertClose(FiniteDifferences.gradient(h0, loss, FiniteDifferences.DEFAULT_STEP),
            d(grads.initialState().hidden()), Tolerances.RECURRENT_BACKWARD, "grad h0");
      }
    }
  }

  private static void recurrentStep(Fuzz f, RecurrentLayer layer,
      RecurrentReference.Config config, Map<String, double[]> params, double[] x, double[] h0,
      double[] c0, int n, int hout, int hidden, int layers, int in, Arena arena) {
    boolean lstm = config.cell() == Cell.LSTM;
    double[] x0 = java.util.Arrays.copyOf(x, n * in);
    double[] hs = h0 == null ? new double[layers * n * hout] : h0;
    double[] cs = !lstm ? null : c0 == null ? new double[layers * n * hidden] : c0;
    Tensor input = f.hostile(filled(arena, x0, f.shape(0.05, "input", new long[] {n, in}, 0, 1)),
        "input", false);
    Tensor h = f.hostile(filled(arena, hs, f.shape(0.05, "state", new long[] {layers, n, hout},
        0, 1, 2)), "state", true);
    Tensor c = lstm ? f.hostile(filled(arena, cs, new long[] {layers, n, hidden}), "state", true)
        : null;
    if (lstm && h != null && c != null && h.isUsable() && h.shape().equals(c.shape())
        && f.plant(0.05, "state", "hidden and cell are one tensor", IAE)) {
      c = h;
    }
    Tensor output = f.random.nextBoolean() ? null : f.outputNotNull(arena, "output", n, hout);
    if (output != null && h != null && h.isUsable() && lstm && f.plant(0.05, "output",
        "shares memory with state.hidden", IAE)) {
      output = h.slice(layers - 1, layers).reshape(n, hout);
    }
    RecurrentState state = new RecurrentState(h, c);
    layer.step(input, state, output);
    RecurrentReference.Result expected = RecurrentReference.forward(config, params, x0, 1, n, hs,
        cs, null);
    assertClose(expected.hn(), d(h), Tolerances.RECURRENT_FORWARD, "step state.hidden");
    if (lstm) {
      assertClose(expected.cn(), d(c), Tolerances.RECURRENT_FORWARD, "step state.cell");
    }
    if (output != null) {
      assertClose(expected.output(), d(output), Tolerances.RECURRENT_FORWARD, "step output");
    }
  }

  /** A tensor of dims holding values (when they fit; else random). */
  private static Tensor filled(Arena arena, double[] values, long[] dims) {
    return product(dims) == values.length ? org.seq4j.reference.Arrays64.tensor(arena, values, dims)
        : Tensor.randomNormal(arena, 5, dims);
  }

  /** (A, B, C) -> (B, A, C). */
  static double[] swap(double[] values, int a, int b, int c) {
    double[] out = new double[values.length];
    for (int i = 0; i < a; i++) {
      for (int j = 0; j < b; j++) {
        System.arraycopy(values, (i * b + j) * c, out, (j * a + i) * c, c);
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ attention

  static void attention(Fuzz f) {
    Random r = f.random;
    f.names("q", "k", "v", "options", "mask", "keyPaddingMask", "dropout", "scale", "arena",
        "context", "gradOutput", "query", "key", "value");
    int batch = 1 + r.nextInt(2);
    int kvHeads = 1 + r.nextInt(2);
    int heads = kvHeads * (1 + r.nextInt(2));
    int tq = 1 + r.nextInt(5);
    int tk = 1 + r.nextInt(5);
    if (f.plant(0.05, "k", "no keys (Tk = 0)", IAE)) {
      tk = 0;
    }
    int dk = 1 + r.nextInt(6);
    int dv = 1 + r.nextInt(6);
    boolean causal = r.nextInt(3) == 0;
    float scale = r.nextBoolean() ? Float.NaN : (float) (0.1 + r.nextDouble());
    Mode mode = r.nextBoolean() ? Mode.TRAINING : Mode.INFERENCE;
    float dropout = mode == Mode.TRAINING && r.nextInt(3) == 0 ? 0.3f : 0f;
    long seed = r.nextLong();
    Arena arena = f.arena();
    ScaledDotProductAttention.Options options = ScaledDotProductAttention.Options.DEFAULT
        .causal(causal).scale(scale);
    double[] additive = null;
    double[] attend = null;
    boolean fullMask = r.nextBoolean();
    int maskKind = r.nextInt(3);
    Tensor mask = null;
    if (maskKind > 0) {
      long[] maskDims = fullMask ? new long[] {batch, heads, tq, tk} : new long[] {tq, tk};
      maskDims = f.shape(0.05, "mask", maskDims, fullMask ? new int[] {0, 1, 2, 3}
          : new int[] {0, 1});
      mask = f.inputNotNull(arena, "mask", maskDims);
      if (mask != null && mask.isUsable()) {
        float[] values = mask.toArray();
        for (int i = 0; i < values.length; i++) {
          values[i] = maskKind == 2 ? (r.nextInt(4) == 0 ? 0 : 1)
              : r.nextInt(6) == 0 ? Float.NEGATIVE_INFINITY : values[i];
        }
        mask.copyFrom(Tensor.fromArray(arena, values, mask.shape().dims()));
        double[] m = doubles(mask);
        if (maskKind == 1) {
          additive = m;
        } else {
          attend = m;
        }
      }
      options = maskKind == 1 ? options.additiveMask(mask) : options.booleanMask(mask);
    }
    double[] padding = null;
    if (r.nextInt(3) == 0) {
      Tensor pad = f.inputNotNull(arena, "keyPaddingMask", f.shape(0.05, "keyPaddingMask",
          new long[] {batch, tk}, 0, 1));
      if (pad != null && pad.isUsable()) {
        float[] values = new float[(int) pad.size()];
        for (int i = 0; i < values.length; i++) {
          values[i] = r.nextInt(4) == 0 ? 1 : 0;
        }
        pad.copyFrom(Tensor.fromArray(arena, values, pad.shape().dims()));
        padding = doubles(pad);
      }
      options = options.keyPaddingMask(pad);
    }
    if (f.plant(0.03, "dropout", "not in [0, 1)", IAE)) {
      options = options.dropout(r.nextBoolean() ? 1f : Float.NaN, seed);
    } else if (f.plant(0.02, "scale", "infinite", IAE)) {
      options = options.scale(Float.POSITIVE_INFINITY);
    }
    options = options.dropout(dropout, seed);
    Tensor q = f.input(arena, "q", f.shape(0.05, "q", new long[] {batch, heads, tq, dk}, 0, 3));
    boolean weightsOnly = r.nextInt(5) == 0; // weights(q, k, options) reads no v
    Tensor k = f.input(arena, "k", f.shape(0.05, "k", new long[] {batch, kvHeads, tk, dk},
        weightsOnly ? new int[] {0, 3} : new int[] {0, 2, 3}));
    Tensor v = weightsOnly ? null : f.input(arena, "v", f.shape(0.05, "v",
        new long[] {batch, kvHeads, tk, dv}, 0, 2));
    if (f.plant(0.02, "options", "null", NullPointerException.class)) {
      options = null;
    }
    double actualScale = Float.isNaN(scale) ? 1 / Math.sqrt(dk) : scale;
    final double[] add = additive;
    final double[] att = attend;
    final int keys = tk;
    // documented: a -inf score is a masked key (a row of them is zero, not NaN)
    AttentionReference.MaskFunction additiveFn = add == null ? null : (nn, h, i, j) -> {
      double m = add[fullMask ? ((nn * heads + h) * tq + i) * keys + j : i * keys + j];
      return m == Double.NEGATIVE_INFINITY ? 0 : m;
    };
    AttentionReference.MaskFunction attendFn = att == null && add == null ? null
        : (nn, h, i, j) -> {
          int at = fullMask ? ((nn * heads + h) * tq + i) * keys + j : i * keys + j;
          return (att != null && att[at] == 0)
              || (add != null && add[at] == Double.NEGATIVE_INFINITY) ? 0 : 1;
        };
    AttentionReference.Problem problem = new AttentionReference.Problem(batch, heads, kvHeads,
        tq, tk, dk, dv, actualScale, causal, additiveFn, attendFn, padding,
        mode == Mode.TRAINING ? dropout : 0, seed);
    if (weightsOnly) {
      Tensor weights = ScaledDotProductAttention.weights(arena, q, k, options);
      assertClose(AttentionReference.weights(problem, d(q), d(k)), d(weights),
          Tolerances.ATTENTION_FORWARD, "weights");
      return;
    }
    ScaledDotProductAttention.Result result =
        ScaledDotProductAttention.forward(arena, q, k, v, options, mode);
    double[] qv = d(q);
    double[] kv = d(k);
    double[] vv = d(v);
    assertClose(AttentionReference.forward(problem, qv, kv, vv), d(result.output()),
        Tolerances.ATTENTION_FORWARD, "attention output");
    if (mode == Mode.TRAINING && r.nextBoolean()) {
      Tensor gradOutput = f.input(arena, "gradOutput", f.shape(0.05, "gradOutput",
          new long[] {batch, heads, tq, dv}, 0, 1, 2, 3));
      ScaledDotProductAttention.Context context = result.context();
      if (f.plant(0.03, "context", "null", NullPointerException.class)) {
        context = null;
      }
      ScaledDotProductAttention.Gradients grads =
          ScaledDotProductAttention.backward(arena, context, gradOutput);
      if (qv.length + kv.length + vv.length <= 120) {
        double[] g = d(gradOutput);
        java.util.function.DoubleSupplier loss = () -> {
          double[] out = AttentionReference.forward(problem, qv, kv, vv);
          double s = 0;
          for (int i = 0; i < out.length; i++) {
            s += out[i] * g[i];
          }
          return s;
        };
        assertClose(FiniteDifferences.gradient(qv, loss), d(grads.query()),
            Tolerances.ATTENTION_BACKWARD, "grad q");
        assertClose(FiniteDifferences.gradient(kv, loss), d(grads.key()),
            Tolerances.ATTENTION_BACKWARD, "grad k");
        assertClose(FiniteDifferences.gradient(vv, loss), d(grads.value()),
            Tolerances.ATTENTION_BACKWARD, "grad v");
      }
    }
  }

  static void multiHeadAttention(Fuzz f) {
    Random r = f.random;
    f.names("query", "key", "value", "options", "arena", "embedDim", "heads", "layer",
        "context", "gradOutput", "mask", "keyPaddingMask");
    int heads = 1 + r.nextInt(3);
    int e = heads * (1 + r.nextInt(3));
    boolean batchFirst = r.nextBoolean();
    int l = 1 + r.nextInt(4);
    int s = 1 + r.nextInt(4);
    int n = 1 + r.nextInt(2);
    int builtHeads = heads;
    long builtE = e;
    if (f.plant(0.04, "heads", "does not divide embedDim", IAE)) {
      builtHeads = e + 1;
    } else if (f.plant(0.02, "embedDim", "its weights' byte count overflows", IAE)) {
      builtE = 1L << 40;
      builtHeads = 1;
    }
    try (MultiHeadAttention mha = MultiHeadAttention.builder(builtE, builtHeads)
        .batchFirst(batchFirst).bias(r.nextBoolean()).seed(r.nextLong()).build()) {
      Arena arena = f.arena();
      long[] qDims = batchFirst ? new long[] {n, l, e} : new long[] {l, n, e};
      long[] kDims = batchFirst ? new long[] {n, s, e} : new long[] {s, n, e};
      Tensor query = f.input(arena, "query", f.shape(0.05, "query", qDims, 2));
      Tensor key = f.input(arena, "key", f.shape(0.05, "key", kDims, 2));
      boolean selfAttention = r.nextBoolean() && l == s && key != null;
      Tensor value = selfAttention ? key : f.input(arena, "value",
          f.shape(0.05, "value", kDims, batchFirst ? 0 : 1, batchFirst ? 1 : 0, 2));
      Mode mode = r.nextBoolean() ? Mode.TRAINING : Mode.INFERENCE;
      ScaledDotProductAttention.Options options = ScaledDotProductAttention.Options.DEFAULT;
      if (f.plant(0.02, "options", "null", NullPointerException.class)) {
        options = null;
      }
      if (f.plant(0.02, "layer", "closed", IllegalStateException.class)) {
        mha.close();
      }
      MultiHeadAttention.Result with = mha.forwardWithWeights(arena, query, key, value, options,
          mode);
      MultiHeadAttention.Result without = mha.forward(arena, query, key, value, options,
          Mode.INFERENCE);
      if (!with.output().shape().equals(query.shape())) {
        throw new AssertionError("output: shape " + with.output().shape() + ", expected "
            + query.shape());
      }
      assertClose(d(without.output()), d(with.output()), Tolerances.REROUTED, "mha output");
      double[] w = d(with.weights());
      for (int row = 0; row < n * l; row++) {
        double sum = 0;
        for (int j = 0; j < s; j++) {
          sum += w[row * s + j];
        }
        if (Math.abs(sum - 1) > Tolerances.PROBABILITY_SUM) {
          throw new AssertionError("weights: row " + row + " sums to " + sum);
        }
      }
      if (mode == Mode.TRAINING && r.nextBoolean()) {
        Tensor gradOutput = f.input(arena, "gradOutput", f.shape(0.05, "gradOutput",
            query.shape().dims(), 0, 1, 2));
        MultiHeadAttention.Gradients grads = mha.backward(arena, with.context(), gradOutput);
        if (!grads.query().shape().equals(query.shape())) {
          throw new AssertionError("grad query: shape " + grads.query().shape());
        }
      }
    }
  }

  /** Cached incremental self-attention against a causal forward over the whole sequence. */
  static void multiHeadAttentionStep(Fuzz f) {
    Random r = f.random;
    f.names("step", "cache", "arena", "batch", "capacity", "layer");
    int heads = 1 + r.nextInt(2);
    int e = heads * (1 + r.nextInt(3));
    int l = 1 + r.nextInt(4);
    int n = 1 + r.nextInt(2);
    long seed = r.nextLong();
    try (MultiHeadAttention mha = MultiHeadAttention.builder(e, heads).seed(seed).build();
        MultiHeadAttention other = MultiHeadAttention.builder(e, heads).seed(seed).build()) {
      Arena arena = f.arena();
      long capacity = l + r.nextInt(2);
      long batch = n;
      if (f.plant(0.05, "capacity", "0", IAE)) {
        capacity = 0;
      } else if (f.plant(0.05, "batch", "0", IAE)) {
        batch = 0;
      } else if (f.plant(0.05, "capacity", "too small for the sequence", IAE,
          IllegalStateException.class)) {
        capacity = l - 1 == 0 ? -1 : l - 1;
        if (capacity < 0) {
          capacity = 0;
        }
      }
      MultiHeadAttention owner = f.plant(0.05, "cache", "made by another layer", IAE) ? other : mha;
      Arena cacheArena = r.nextInt(20) == 0 ? Arena.ofConfined() : arena;
      MultiHeadAttention.Cache cache = owner.newCache(cacheArena, batch, capacity);
      if (cacheArena != arena && f.plant(1, "cache", "its arena is closed",
          IllegalStateException.class)) {
        cacheArena.close();
      }
      Tensor seq = Tensor.randomNormal(arena, r.nextLong(), l, n, e);
      Tensor whole = mha.forward(arena, seq, seq, seq,
          ScaledDotProductAttention.Options.DEFAULT.causal(true), Mode.INFERENCE).output();
      for (int i = 0; i < l; i++) {
        Tensor step = f.hostile(seq.slice(i, i + 1), "step", false);
        if (i == 0 && step != null && f.plant(0.05, "step", "wrong width", IAE)) {
          step = Tensor.zeros(arena, 1, n, e + 1);
        }
        Tensor out = mha.forwardStep(arena, step, cache);
        assertClose(d(whole.slice(i, i + 1)), d(out), Tolerances.CACHED_ATTENTION_STEP,
            "step " + i);
      }
    }
  }

  static void clipping(Fuzz f) {
    Random r = f.random;
    f.names("parameters", "maxNorm", "clip");
    Arena arena = f.arena();
    List<Parameter> params = new ArrayList<>();
    double sum = 0;
    for (int i = 0; i < 1 + r.nextInt(3); i++) {
      long[] dims = leading(r, 1 + r.nextInt(4));
      Tensor grad = Tensor.randomNormal(arena, r.nextLong(), dims);
      for (double g : d(grad)) {
        sum += g * g;
      }
      params.add(Parameter.of("p" + i, Tensor.zeros(arena, dims), grad));
    }
    List<double[]> before = params.stream().map(p -> d(p.grad())).toList();
    double norm = Math.sqrt(sum);
    if (r.nextBoolean()) {
      double maxNorm = r.nextDouble() * 2 * norm + 1e-3;
      if (f.plant(0.1, "maxNorm", "not > 0 or not finite", IAE)) {
        maxNorm = new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY}[r.nextInt(4)];
      } else if (f.plant(0.03, "parameters", "null", NullPointerException.class)) {
        params = null;
      }
      double got = org.seq4j.train.GradientClipping.clipByGlobalNorm(params, maxNorm);
      assertClose(new double[] {norm}, new double[] {got}, Tolerances.GRADIENT_NORMS, "norm");
      double factor = Math.min(1, maxNorm / (norm + 1e-6));
      for (int i = 0; i < params.size(); i++) {
        double[] expected = before.get(i).clone();
        for (int j = 0; j < expected.length; j++) {
          expected[j] *= factor;
        }
        assertClose(expected, d(params.get(i).grad()), Tolerances.CLIPPED_GRADIENT * 10,
            "clipped p" + i);
      }
    } else {
      double clip = r.nextDouble() * 2;
      if (f.plant(0.1, "clip", "negative or not finite", IAE)) {
        clip = new double[] {-1, Double.NaN, Double.POSITIVE_INFINITY}[r.nextInt(3)];
      }
      org.seq4j.train.GradientClipping.clipByValue(params, clip);
      for (int i = 0; i < params.size(); i++) {
        double[] expected = before.get(i).clone();
        for (int j = 0; j < expected.length; j++) {
          expected[j] = (float) Math.max(-clip, Math.min(clip, expected[j]));
        }
        assertClose(expected, d(params.get(i).grad()), Tolerances.CLIPPED_GRADIENT,
            "clipped p" + i);
      }
    }
  }

  // ------------------------------------------------------------------ other layers

  static void linear(Fuzz f) {
    Random r = f.random;
    f.names("input", "gradOutput", "arena", "inputSize", "outputSize", "layer");
    int in = (int) size(r);
    int out = (int) size(r);
    boolean bias = r.nextBoolean();
    long builtIn = in;
    if (f.plant(0.04, "inputSize", "0", IAE)) {
      builtIn = 0;
    } else if (f.plant(0.02, "inputSize", "its weight's byte count overflows", IAE)) {
      builtIn = 1L << 61; // × 4 bytes overflows whatever outputSize is
    }
    try (Linear linear = new Linear(builtIn, out, bias, r.nextLong())) {
      Arena arena = f.arena();
      long[] dims = leading(r, in);
      int last = dims.length - 1;
      Tensor input = f.input(arena, "input", f.shape(0.06, "input", dims, last));
      if (f.plant(0.02, "layer", "closed", IllegalStateException.class)) {
        linear.close();
      }
      Tensor y = linear.forward(arena, input);
      double[] x = d(input);
      double[] w = d(linear.weight().data());
      double[] b = bias ? d(linear.bias().data()) : null;
      int rows = x.length / in;
      double[] expected = new double[rows * out];
      for (int i = 0; i < rows; i++) {
        for (int o = 0; o < out; o++) {
          double sum = b == null ? 0 : b[o];
          for (int j = 0; j < in; j++) {
            sum += x[i * in + j] * w[o * in + j];
          }
          expected[i * out + o] = sum;
        }
      }
      assertClose(expected, d(y), Tolerances.LINEAR_FORWARD, "linear output");
      if (r.nextBoolean()) {
        long[] gDims = dims.clone();
        gDims[last] = out;
        Tensor g = f.input(arena, "gradOutput", f.shape(0.06, "gradOutput", gDims, last));
        linear.zeroGrad();
        Tensor gradInput = linear.backward(arena, input, g);
        double[] gv = d(g);
        double[] gi = new double[rows * in];
        double[] gw = new double[out * in];
        for (int i = 0; i < rows; i++) {
          for (int o = 0; o < out; o++) {
            for (int j = 0; j < in; j++) {
              gi[i * in + j] += gv[i * out + o] * w[o * in + j];
              gw[o * in + j] += gv[i * out + o] * x[i * in + j];
            }
          }
        }
        assertClose(gi, d(gradInput), Tolerances.LINEAR_BACKWARD, "linear grad input");
        assertClose(gw, d(linear.weight().grad()), Tolerances.LINEAR_BACKWARD,
            "linear grad weight");
      }
    }
  }

  static void layerNorm(Fuzz f) {
    Random r = f.random;
    f.names("x", "size", "eps", "arena", "context", "gradOutput", "layer");
    int size = (int) size(r);
    float eps = r.nextBoolean() ? 1e-5f : (float) (1e-3 * (1 + r.nextDouble()));
    long builtSize = size;
    float builtEps = eps;
    if (f.plant(0.03, "size", "0", IAE)) {
      builtSize = 0;
    } else if (f.plant(0.02, "size", "its byte count overflows", IAE)) {
      builtSize = 1L << 62;
    } else if (f.plant(0.03, "eps", "not > 0", IAE)) {
      builtEps = r.nextBoolean() ? -1f : Float.NaN;
    }
    try (LayerNorm norm = new LayerNorm(builtSize, builtEps, r.nextBoolean())) {
      Arena arena = f.arena();
      long[] dims = leading(r, size);
      Tensor x = f.input(arena, "x", f.shape(0.06, "x", dims, dims.length - 1));
      LayerNorm.Result result = norm.forward(arena, x);
      double[] xv = d(x);
      int rows = xv.length / size;
      double[] weight = new double[size];
      double[] bias = new double[size];
      java.util.Arrays.fill(weight, 1);
      for (Parameter p : norm.parameters()) {
        if (p.name().equals("weight")) {
          weight = d(p.data());
        } else if (p.name().equals("bias")) {
          bias = d(p.data());
        }
      }
      double[] w = weight;
      double[] b = bias;
      assertClose(LayerNormReference.forward(xv, w, b, rows, size, eps), d(result.output()),
          Tolerances.LAYER_NORM_FORWARD, "layer norm output");
      if (r.nextBoolean()) {
        Tensor g = f.input(arena, "gradOutput", f.shape(0.06, "gradOutput", dims, 0,
            dims.length - 1));
        LayerNorm.Context context = result.context();
        if (f.plant(0.03, "context", "null", NullPointerException.class)) {
          context = null;
        }
        Tensor gradInput = norm.backward(arena, context, g);
        if (xv.length <= 40) {
          double[] gv = d(g);
          java.util.function.DoubleSupplier loss = () -> {
            double[] y = LayerNormReference.forward(xv, w, b, rows, size, eps);
            double s = 0;
            for (int i = 0; i < y.length; i++) {
              s += y[i] * gv[i];
            }
            return s;
          };
          assertClose(FiniteDifferences.gradient(xv, loss, Tolerances.LAYER_NORM_INPUT_STEP),
              d(gradInput), Tolerances.LAYER_NORM_BACKWARD_INPUT, "layer norm grad x");
        }
      }
    }
  }

  static void embedding(Fuzz f) {
    Random r = f.random;
    f.names("indices", "shape", "arena", "gradOutput", "vocabulary", "dim", "layer");
    int vocabulary = (int) size(r);
    int dim = 1 + r.nextInt(4);
    long builtVocabulary = vocabulary;
    if (f.plant(0.03, "vocabulary", "0", IAE)) {
      builtVocabulary = 0;
    } else if (f.plant(0.02, "vocabulary", "its weight's byte count overflows", IAE)) {
      builtVocabulary = 1L << 61;
    }
    try (Embedding embedding = new Embedding(builtVocabulary, dim, r.nextLong())) {
      Arena arena = f.arena();
      long[] shape = new long[1 + r.nextInt(2)];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = r.nextInt(4);
      }
      long[] indices = new long[(int) product(shape)];
      for (int i = 0; i < indices.length; i++) {
        indices[i] = r.nextInt(vocabulary);
      }
      if (indices.length > 0 && f.plant(0.1, "indices", "outside [0, vocabulary)",
          IAE, IndexOutOfBoundsException.class)) {
        indices[r.nextInt(indices.length)] = r.nextBoolean() ? -1 : vocabulary;
      } else if (f.plant(0.05, "shape", "its product is not indices.length", IAE)) {
        shape = java.util.Arrays.copyOf(shape, shape.length + 1);
        shape[shape.length - 1] = 1;
        shape[0] = indices.length + 1;
        for (int i = 1; i < shape.length - 1; i++) {
          shape[i] = 1;
        }
      } else if (f.plant(0.02, "indices", "null", NullPointerException.class)) {
        indices = null;
      }
      Tensor out = embedding.forward(arena, indices, shape);
      double[] w = d(embedding.weight().data());
      double[] expected = new double[indices.length * dim];
      for (int i = 0; i < indices.length; i++) {
        System.arraycopy(w, (int) indices[i] * dim, expected, i * dim, dim);
      }
      assertClose(expected, d(out), 0, "embedding output");
      if (r.nextBoolean()) {
        long[] gDims = java.util.Arrays.copyOf(shape, shape.length + 1);
        gDims[shape.length] = dim;
        Tensor g = f.input(arena, "gradOutput", f.shape(0.06, "gradOutput", gDims,
            shape.length));
        embedding.weight().zeroGrad();
        embedding.backward(indices, g);
        double[] gv = d(g);
        double[] gw = new double[vocabulary * dim];
        for (int i = 0; i < indices.length; i++) {
          for (int j = 0; j < dim; j++) {
            gw[(int) indices[i] * dim + j] += gv[i * dim + j];
          }
        }
        assertClose(gw, d(embedding.weight().grad()), Tolerances.ELEMENTWISE_RELATIVE * 4,
            "embedding grad");
      }
    }
  }

  // ------------------------------------------------------------------ training

  static void losses(Fuzz f) {
    Random r = f.random;
    Arena arena = f.arena();
    switch (r.nextInt(3)) {
      case 0 -> {
        f.names("prediction", "target", "gradient");
        long[] dims = leading(r, 1 + r.nextInt(4));
        int[] axes = java.util.stream.IntStream.range(0, dims.length).toArray();
        Tensor p = f.input(arena, "prediction", dims);
        Tensor t = f.input(arena, "target", f.shape(0.06, "target", dims, axes));
        Tensor g = r.nextBoolean() ? null
            : f.outputNotNull(arena, "gradient", f.shape(0.06, "gradient", dims, axes));
        if (g != null && t != null && t.size() > 0 && g.shape().equals(t.shape())
            && f.plant(0.03, "gradient", "is target", IAE)) {
          g = t;
        }
        float loss = Losses.meanSquaredError(p, t, g);
        double[] pv = d(p);
        double[] tv = d(t);
        double expected = TrainingReference.meanSquaredError(pv, tv);
        assertClose(new double[] {expected}, new double[] {loss}, Tolerances.LOSS_FORWARD,
            "mse loss");
        if (g != null) {
          double[] grad = new double[pv.length];
          for (int i = 0; i < pv.length; i++) {
            grad[i] = 2 * (pv[i] - tv[i]) / pv.length;
          }
          assertClose(grad, d(g), Tolerances.LOSS_BACKWARD, "mse gradient");
        }
      }
      case 1 -> {
        f.names("logits", "labels", "options", "gradient", "labelSmoothing");
        int v = 1 + r.nextInt(5);
        long[] dims = leading(r, v);
        if (dims.length > 1 && r.nextInt(4) == 0) {
          dims[0] = 0; // zero rows
        }
        Tensor logits = f.input(arena, "logits", dims);
        int rows = (int) (product(dims) / v);
        long ignore = r.nextBoolean() ? -100 : r.nextInt(v);
        float smoothing = r.nextBoolean() ? 0 : (float) (r.nextDouble() * 0.5);
        long[] labels = new long[rows];
        for (int i = 0; i < rows; i++) {
          labels[i] = r.nextInt(6) == 0 ? ignore : r.nextInt(v);
        }
        if (rows > 0 && f.plant(0.1, "labels", "a label outside [0, V)", IAE,
            IndexOutOfBoundsException.class)) {
          labels[r.nextInt(rows)] = r.nextBoolean() ? v : -1;
          if (ignore == -1) {
            ignore = -100;
          }
        } else if (f.plant(0.05, "labels", "not one per row", IAE)) {
          labels = java.util.Arrays.copyOf(labels, rows + 1);
        }
        Losses.CrossEntropyOptions options;
        if (f.plant(0.03, "labelSmoothing", "not in [0, 1)", IAE)) {
          options = Losses.CrossEntropyOptions.DEFAULT.labelSmoothing(1f);
        } else {
          options = Losses.CrossEntropyOptions.DEFAULT.ignoreIndex(ignore)
              .labelSmoothing(smoothing);
        }
        if (f.plant(0.02, "options", "null", NullPointerException.class)) {
          options = null;
        }
        Tensor g = r.nextBoolean() ? null : f.outputNotNull(arena, "gradient",
            f.shape(0.06, "gradient", dims, java.util.stream.IntStream.range(0, dims.length)
                .toArray()));
        if (g != null && logits != null && logits.size() > 0
            && f.plant(0.03, "gradient", "is logits", IAE)) {
          g = logits;
        }
        float loss = Losses.crossEntropy(logits, labels, options, g);
        double[] x = d(logits);
        long[] ls = labels;
        long ig = ignore;
        double expected = TrainingReference.crossEntropy(x, ls, v, ig, smoothing);
        assertClose(new double[] {expected}, new double[] {loss}, Tolerances.LOSS_FORWARD,
            "cross-entropy loss (rows=" + rows + ")");
        if (g != null && x.length <= 60) {
          assertClose(FiniteDifferences.gradient(x,
              () -> TrainingReference.crossEntropy(x, ls, v, ig, smoothing)), d(g),
              Tolerances.LOSS_FORWARD * 10, "cross-entropy gradient");
        }
      }
      default -> {
        f.names("logits", "targets", "gradient");
        long[] dims = leading(r, 1 + r.nextInt(4));
        int[] axes = java.util.stream.IntStream.range(0, dims.length).toArray();
        Tensor x = f.input(arena, "logits", dims);
        Tensor t = f.input(arena, "targets", f.shape(0.06, "targets", dims, axes));
        if (t != null && t.isUsable()) {
          float[] tv = t.toArray();
          for (int i = 0; i < tv.length; i++) {
            tv[i] = (float) r.nextDouble();
          }
          t.copyFrom(Tensor.fromArray(arena, tv, t.shape().dims()));
        }
        Tensor g = r.nextBoolean() ? null
            : f.outputNotNull(arena, "gradient", f.shape(0.06, "gradient", dims, axes));
        float loss = Losses.binaryCrossEntropyWithLogits(x, t, g);
        double[] xv = d(x);
        double[] tv = d(t);
        assertClose(new double[] {TrainingReference.binaryCrossEntropyWithLogits(xv, tv)},
            new double[] {loss}, Tolerances.LOSS_FORWARD, "bce loss");
        if (g != null) {
          double[] grad = new double[xv.length];
          for (int i = 0; i < xv.length; i++) {
            grad[i] = (1 / (1 + Math.exp(-xv[i])) - tv[i]) / xv.length;
          }
          assertClose(grad, d(g), Tolerances.BINARY_CROSS_ENTROPY_GRADIENT * 10, "bce gradient");
        }
      }
    }
  }

  static void optimizer(Fuzz f) {
    Random r = f.random;
    f.names("parameters", "learningRate", "momentum", "dampening", "weightDecay", "nesterov",
        "betas", "beta1", "beta2", "eps", "grad", "data", "name");
    Arena arena = f.arena();
    int count = 1 + r.nextInt(3);
    List<Parameter> params = new ArrayList<>();
    List<double[]> initial = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      long[] dims = leading(r, 1 + r.nextInt(4));
      Tensor data = Tensor.randomNormal(arena, r.nextLong(), dims);
      Tensor grad = Tensor.zeros(arena, f.shape(0.03, "grad", dims, 0));
      if (f.plant(0.02, "data", "read-only (an optimizer writes it)", IAE)) {
        data = Tensor.ofSegment(data.segment().asReadOnly(), dims);
      }
      params.add(Parameter.of("p" + i, data, grad));
      initial.add(d(data));
    }
    if (f.plant(0.03, "parameters", "empty", IAE)) {
      params = List.of();
    }
    int steps = 1 + r.nextInt(3);
    double lr = 0.001 + r.nextDouble() * 0.1;
    double weightDecay = r.nextBoolean() ? 0 : r.nextDouble() * 0.1;
    if (f.plant(0.04, "learningRate", "negative, NaN or infinite", IAE)) {
      lr = new double[] {-0.1, Double.NaN, Double.POSITIVE_INFINITY}[r.nextInt(3)];
    } else if (f.plant(0.03, "weightDecay", "negative", IAE)) {
      weightDecay = -0.1;
    }
    boolean adam = r.nextBoolean();
    Optimizer optimizer;
    double momentum = 0;
    double dampening = 0;
    boolean nesterov = false;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    boolean decoupled = false;
    if (adam) {
      decoupled = r.nextBoolean();
      beta1 = r.nextDouble() * 0.95;
      beta2 = 0.9 + r.nextDouble() * 0.0999;
      eps = r.nextBoolean() ? 1e-8 : 1e-3;
      if (f.plant(0.04, "betas", "outside [0, 1)", IAE)) {
        beta1 = 1.0;
      } else if (f.plant(0.03, "eps", "not > 0", IAE)) {
        eps = 0;
      }
      Adam.Builder builder = decoupled ? Adam.adamW(params) : Adam.builder(params);
      optimizer = builder.learningRate(lr).betas(beta1, beta2).eps(eps).weightDecay(weightDecay)
          .build();
    } else {
      momentum = r.nextBoolean() ? 0 : r.nextDouble() * 0.9;
      nesterov = momentum > 0 && r.nextBoolean();
      dampening = nesterov || r.nextBoolean() ? 0 : r.nextDouble() * 0.5;
      if (f.plant(0.04, "momentum", "outside [0, 1)", IAE)) {
        momentum = r.nextBoolean() ? 1 : -0.5;
      }
      optimizer = Sgd.builder(params).learningRate(lr).momentum(momentum).dampening(dampening)
          .weightDecay(weightDecay).nesterov(nesterov).build();
    }
    try (optimizer) {
      List<double[][]> grads = new ArrayList<>();
      for (Parameter p : params) {
        grads.add(new double[steps][]);
      }
      for (int s = 0; s < steps; s++) {
        for (int i = 0; i < params.size(); i++) {
          Tensor g = params.get(i).grad();
          g.copyFrom(Tensor.randomNormal(arena, r.nextLong(), g.shape().dims()));
          grads.get(i)[s] = d(g);
        }
        optimizer.step();
      }
      for (int i = 0; i < params.size(); i++) {
        double[] expected = adam
            ? TrainingReference.adam(initial.get(i), grads.get(i), lr, beta1, beta2, eps,
                weightDecay, decoupled)
            : TrainingReference.sgd(initial.get(i), grads.get(i), lr, momentum, dampening,
                weightDecay, nesterov);
        assertClose(expected, d(params.get(i).data()), Tolerances.OPTIMIZER_STEPS,
            (adam ? "adam" : "sgd") + " p" + i);
      }
    }
  }
}
