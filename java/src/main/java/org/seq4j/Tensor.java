package org.seq4j;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;

/**
 * A dense, row-major, contiguous block of off-heap floats with a {@link Shape}.
 *
 * <p>A tensor lives in the {@link Arena} it was created in and dies with it: using it after the
 * arena closed throws {@link IllegalStateException}; using a tensor of a confined arena from
 * another thread throws {@link WrongThreadException}. Views ({@link #reshape}, {@link #slice})
 * share memory with their source and live as long as it does.
 *
 * <pre>{@code
 * try (Arena arena = Arena.ofConfined()) {
 *   Tensor x = Tensor.randomNormal(arena, 42, 35, 20, 200); // (T, N, C), seed 42
 *   Tensor first = x.slice(0, 1);                          // the first time step, a view
 * }
 * }</pre>
 *
 * <p>A tensor over read-only memory ({@link #ofSegment} of a read-only segment) may be read by
 * every call; a call that would write it throws {@link IllegalArgumentException} naming the
 * argument, before any native code runs. Sizes are checked arithmetic: a shape whose byte count
 * does not fit in a {@code long} is an {@link IllegalArgumentException}, never a wrapped size.
 *
 * <p>A tensor is not synchronised: concurrent writes to one tensor, or a read concurrent with a
 * write, give unspecified values (never a crash).
 */
public final class Tensor {
  /** Alignment of every allocation: one cache line, the widest vector load. */
  static final long ALIGNMENT = 64;

  /** Above this many elements, {@link #toString} prints a summary instead of every value. */
  private static final long PRINT_LIMIT = 1000;

  private final MemorySegment segment;
  private final Shape shape;
  /** The arena it was allocated in (null for {@link #ofSegment}): results of its ops go there. */
  private final Arena arena;
  /** Shared by a tensor and its views: counts in-place changes, for autograd's saved tensors. */
  private final Autograd.Storage storage;
  /** Autograd state; see {@link Autograd}. */
  final Autograd.TensorState autograd = new Autograd.TensorState();

  private Tensor(MemorySegment segment, Shape shape, Arena arena, Autograd.Storage storage) {
    this.segment = segment;
    this.shape = shape;
    this.arena = arena;
    this.storage = storage;
  }

  private Tensor(MemorySegment segment, Shape shape, Arena arena) {
    this(segment, shape, arena, new Autograd.Storage());
  }

  // ---- creation

  /** A tensor of zeros. */
  public static Tensor zeros(Arena arena, long... dims) {
    Shape shape = Shape.of(dims);
    return new Tensor(allocate(arena, shape), shape, arena);
  }

  /**
   * A tensor whose contents are unspecified, for results that are about to be overwritten whole:
   * it skips the zeroing pass of {@link #zeros}. Its memory is freed when the arena closes.
   */
  public static Tensor uninitialized(Arena arena, long... dims) {
    Shape shape = Shape.of(dims);
    return new Tensor(org.seq4j.internal.NativeMemory.allocate(arena, byteSize(arena, shape)),
        shape, arena);
  }

  /** A tensor of ones. */
  public static Tensor ones(Arena arena, long... dims) {
    return full(arena, 1f, dims);
  }

  /** A tensor with every element equal to {@code value}. */
  public static Tensor full(Arena arena, float value, long... dims) {
    Tensor tensor = zeros(arena, dims);
    if (value != 0f || Float.floatToRawIntBits(value) != 0) {
      tensor.fill(value);
    }
    return tensor;
  }

  /**
   * A tensor of independent samples of the standard normal distribution; the same seed gives the
   * same values on every machine and run.
   */
  public static Tensor randomNormal(Arena arena, long seed, long... dims) {
    Tensor tensor = zeros(arena, dims);
    RandomGenerator random = generator(seed);
    for (long i = 0; i < tensor.size(); i++) {
      tensor.segment.setAtIndex(JAVA_FLOAT, i, (float) random.nextGaussian());
    }
    return tensor;
  }

  /**
   * A tensor of independent samples uniform in {@code [low, high)}; the same seed gives the same
   * values on every machine and run.
   */
  public static Tensor randomUniform(Arena arena, long seed, float low, float high, long... dims) {
    if (!(low < high) || !Float.isFinite(low) || !Float.isFinite(high)) {
      throw new IllegalArgumentException(
          "low, high: expected finite low < high, got low=" + low + " high=" + high);
    }
    Tensor tensor = zeros(arena, dims);
    RandomGenerator random = generator(seed);
    for (long i = 0; i < tensor.size(); i++) {
      float value = (float) (low + (high - (double) low) * random.nextDouble());
      tensor.segment.setAtIndex(JAVA_FLOAT, i, value < high ? value : Math.nextDown(high));
    }
    return tensor;
  }

  /** A tensor holding a copy of {@code data}, whose length must equal the shape's size. */
  public static Tensor fromArray(Arena arena, float[] data, long... dims) {
    if (data == null) {
      throw new NullPointerException("data");
    }
    Shape shape = Shape.of(dims);
    if (data.length != shape.size()) {
      throw new IllegalArgumentException(
          "data: expected " + shape.size() + " floats for shape " + shape + ", got "
              + data.length);
    }
    Tensor tensor = new Tensor(allocate(arena, shape), shape, arena);
    MemorySegment.copy(data, 0, tensor.segment, JAVA_FLOAT, 0, data.length);
    return tensor;
  }

  /**
   * A tensor holding a copy of the {@code remaining()} floats of {@code data} (its position is
   * not changed), which must equal the shape's size.
   */
  public static Tensor fromBuffer(Arena arena, FloatBuffer data, long... dims) {
    if (data == null) {
      throw new NullPointerException("data");
    }
    Shape shape = Shape.of(dims);
    if (data.remaining() != shape.size()) {
      throw new IllegalArgumentException(
          "data: expected " + shape.size() + " remaining floats for shape " + shape + ", got "
              + data.remaining());
    }
    Tensor tensor = new Tensor(allocate(arena, shape), shape, arena);
    FloatBuffer source = data.duplicate();
    FloatBuffer target =
        tensor.segment.asByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer();
    target.put(source);
    return tensor;
  }

  /**
   * A tensor over existing memory (no copy), for interoperation with other FFM code: the segment
   * must hold exactly the shape's floats and be 4-byte aligned. The tensor lives as long as the
   * segment. A read-only segment ({@link MemorySegment#asReadOnly()}, a read-only mapped file)
   * gives a read-only tensor: it may be the input of any call, and every call that would write it
   * (an output, a state updated in place, {@link #fill}, {@link #set}) throws {@link
   * IllegalArgumentException} instead; see {@link #isReadOnly()}.
   */
  public static Tensor ofSegment(MemorySegment segment, long... dims) {
    if (segment == null) {
      throw new NullPointerException("segment");
    }
    Shape shape = Shape.of(dims);
    // checked: (2^62,) * 4 bytes must not wrap to 0 and pass for an empty segment
    long bytes = Checks.multiply(shape.size(), DType.F32.byteSize(), "shape", shape);
    if (segment.byteSize() != bytes) {
      throw new IllegalArgumentException(
          "segment: expected " + bytes + " bytes for shape " + shape + ", got "
              + segment.byteSize());
    }
    if (segment.isNative() && segment.address() % DType.F32.byteSize() != 0) {
      throw new IllegalArgumentException(
          "segment: expected a 4-byte aligned address, got " + segment.address());
    }
    if (!segment.isNative()) {
      throw new IllegalArgumentException("segment: expected off-heap (native) memory");
    }
    return new Tensor(segment, shape, null);
  }

  private static long byteSize(Arena arena, Shape shape) {
    if (arena == null) {
      throw new NullPointerException("arena");
    }
    long bytes = Checks.multiply(shape.size(), DType.F32.byteSize(), "shape", shape);
    // the allocation rounds up to ALIGNMENT: that must not wrap around either
    Checks.add(bytes, ALIGNMENT - 1, "shape", shape);
    return bytes;
  }

  private static MemorySegment allocate(Arena arena, Shape shape) {
    long bytes = byteSize(arena, shape);
    try {
      return arena.allocate(bytes, ALIGNMENT);
    } catch (IllegalStateException closed) {
      throw new IllegalStateException("arena: it is closed", closed);
    } catch (WrongThreadException wrongThread) {
      throw new WrongThreadException(
          "arena: it is confined to another thread than '" + Thread.currentThread().getName()
              + "'");
    }
  }

  private static RandomGenerator generator(long seed) {
    return RandomGeneratorFactory.of("L64X128MixRandom").create(seed);
  }

  // ---- properties

  /** The shape. */
  public Shape shape() {
    return shape;
  }

  /** The element type (always {@link DType#F32} for now). */
  public DType dtype() {
    return DType.F32;
  }

  /** The number of elements. */
  public long size() {
    return shape.size();
  }

  /** The size of dimension {@code axis}; negative axes count from the end. */
  public long dim(int axis) {
    return shape.dim(axis);
  }

  /**
   * The memory, for interoperation with other FFM code. Its lifetime is the arena's; writing past
   * it is impossible (segments are bounds-checked).
   */
  public MemorySegment segment() {
    return segment;
  }

  /**
   * Whether this tensor's memory is read-only (made by {@link #ofSegment} over a read-only
   * segment, or a view of such a tensor): calls that would write it refuse it.
   */
  public boolean isReadOnly() {
    return segment.isReadOnly();
  }

  /** Whether this tensor can be used now: its arena is open and this thread may access it. */
  public boolean isUsable() {
    return segment.scope().isAlive() && segment.isAccessibleBy(Thread.currentThread());
  }

  // ---- elements

  /** The element at {@code index} (one coordinate per dimension). */
  public float get(long... index) {
    Checks.usable(segment, "tensor");
    return segment.getAtIndex(JAVA_FLOAT, shape.offsetOf(index));
  }

  /** Sets the element at {@code index} (one coordinate per dimension) to {@code value}. */
  public void set(float value, long... index) {
    Checks.writable(segment, "tensor");
    segment.setAtIndex(JAVA_FLOAT, shape.offsetOf(index), value);
    storage.bump();
  }

  /** A new array holding every element in row-major order. */
  public float[] toArray() {
    Checks.usable(segment, "tensor");
    if (size() > Integer.MAX_VALUE - 8) {
      throw new IllegalStateException(
          "tensor: " + size() + " elements do not fit in a Java array; use copyTo(FloatBuffer)"
              + " on slices");
    }
    return segment.toArray(JAVA_FLOAT);
  }

  /**
   * Copies every element into {@code target} at its position, which advances by {@link #size()}.
   */
  public void copyTo(FloatBuffer target) {
    if (target == null) {
      throw new NullPointerException("target");
    }
    Checks.usable(segment, "tensor");
    if (target.isReadOnly()) {
      throw new IllegalArgumentException("target: expected a writable buffer, got a read-only one");
    }
    if (target.remaining() < size()) {
      throw new IllegalArgumentException(
          "target: expected at least " + size() + " remaining floats, got " + target.remaining());
    }
    target.put(segment.asByteBuffer().order(ByteOrder.nativeOrder()).asFloatBuffer());
  }

  /** Sets every element to {@code value}; returns this tensor. */
  public Tensor fill(float value) {
    Checks.writable(segment, "tensor");
    NativeBindings.fill(segment, value, size());
    storage.bump();
    return this;
  }

  /** Copies {@code source}, which must have the same shape, into this tensor; returns this. */
  public Tensor copyFrom(Tensor source) {
    if (source == null) {
      throw new NullPointerException("source");
    }
    Checks.writable(segment, "tensor");
    Checks.usable(source.segment, "source");
    if (!source.shape.equals(shape)) {
      throw new IllegalArgumentException(
          "source: expected shape " + shape + ", got " + source.shape);
    }
    MemorySegment.copy(source.segment, 0, segment, 0, segment.byteSize());
    storage.bump();
    return this;
  }

  /** A new tensor in {@code arena} with the same shape and values. */
  public Tensor copy(Arena arena) {
    Checks.usable(segment, "tensor");
    Tensor copy = new Tensor(allocate(arena, shape), shape, arena);
    MemorySegment.copy(segment, 0, copy.segment, 0, segment.byteSize());
    return copy;
  }

  // ---- views

  /**
   * A view of the same memory with another shape of the same size. One dimension may be -1: it is
   * then inferred.
   */
  public Tensor reshape(long... dims) {
    if (dims == null) {
      throw new NullPointerException("dims");
    }
    Tensor view = view(dims);
    long[] original = shape.dims();
    Autograd.record("Tensor.reshape", java.util.List.of(this), java.util.List.of(view),
        java.util.List.of(), (arena, g) -> new Tensor[] {g[0] == null ? null : g[0].view(original)});
    return view;
  }

  /** {@link #reshape} without recording: the same memory under another shape. */
  Tensor view(long... dims) {
    if (dims == null) {
      throw new NullPointerException("dims");
    }
    long[] resolved = dims.clone();
    int inferred = -1;
    long known = 1;
    for (int i = 0; i < resolved.length; i++) {
      if (resolved[i] == -1 && inferred < 0) {
        inferred = i;
      } else {
        if (resolved[i] < 0) {
          throw new IllegalArgumentException(
              "dims: dimension " + i + " must be >= 0 (or a single -1), got " + resolved[i]);
        }
        try {
          known = Math.multiplyExact(known, resolved[i]);
        } catch (ArithmeticException overflow) {
          throw new IllegalArgumentException("dims: " + Arrays.toString(dims) + " is too large:"
              + " the product of its sizes overflows a long", overflow);
        }
      }
    }
    if (inferred >= 0) {
      if (known == 0 || size() % known != 0) {
        throw new IllegalArgumentException(
            "dims: cannot infer -1 in " + Arrays.toString(dims) + " for " + size()
                + " elements of shape " + shape);
      }
      resolved[inferred] = size() / known;
    }
    Shape target = Shape.of(resolved);
    if (target.size() != size()) {
      throw new IllegalArgumentException(
          "dims: expected a shape of " + size() + " elements (like " + shape + "), got " + target);
    }
    return new Tensor(segment, target, arena, storage);
  }

  /**
   * A view of rows {@code [start, end)} along the first dimension: for a time-major sequence
   * {@code (T, N, C)}, the time steps {@code start} to {@code end - 1}.
   */
  public Tensor slice(long start, long end) {
    if (shape.rank() == 0) {
      throw new IllegalArgumentException("tensor: a scalar (rank 0) has no first dimension");
    }
    long rows = shape.dim(0);
    if (start == 0 && end == rows) {
      return this;
    }
    if (start < 0 || end < start || end > rows) {
      throw new IndexOutOfBoundsException(
          "start, end: expected 0 <= start <= end <= " + rows + ", got start=" + start + " end="
              + end);
    }
    long[] dims = shape.dims();
    dims[0] = end - start;
    long rowBytes = rows == 0 ? 0 : segment.byteSize() / rows;
    Tensor view = new Tensor(segment.asSlice(start * rowBytes, (end - start) * rowBytes),
        Shape.of(dims), arena, storage);
    long[] full = shape.dims();
    Autograd.record("Tensor.slice", java.util.List.of(this), java.util.List.of(view),
        java.util.List.of(), (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[] {null};
          }
          Tensor whole = Tensor.zeros(scratch, full);
          MemorySegment.copy(g[0].segment, 0, whole.segment, start * rowBytes,
              g[0].segment.byteSize());
          return new Tensor[] {whole};
        });
    return view;
  }

  // ---- autograd

  /**
   * The arena this tensor was allocated in (a view's is its source's), or null for a tensor over
   * foreign memory ({@link #ofSegment}). Operations that create tensors from this one allocate
   * their results there.
   */
  public Arena arena() {
    return arena;
  }

  /**
   * Whether a gradient is computed for this tensor: it is a leaf that requires one (a layer's
   * parameter, or after {@link #requiresGrad(boolean) requiresGrad(true)}), or the result of a
   * recorded operation. See {@link Autograd}.
   */
  public boolean requiresGrad() {
    return autograd.leaf || autograd.origin != null;
  }

  /**
   * Whether this tensor is a leaf of the graph: not the result of a recorded operation. Data,
   * parameters and {@link #detach()}ed tensors are leaves.
   */
  public boolean isLeaf() {
    return autograd.origin == null;
  }

  /**
   * Makes this leaf require a gradient (or not): backward passes then add into {@link #grad()},
   * which is allocated in this tensor's arena on first use. Returns this tensor.
   *
   * @throws IllegalStateException if it is the result of a recorded operation (only leaves are
   *     switched), or it has no arena to keep a gradient in
   */
  public Tensor requiresGrad(boolean on) {
    if (autograd.origin != null) {
      throw new IllegalStateException("tensor: only a leaf's requiresGrad can be set; this one is"
          + " the result of " + autograd.origin.operation + " (use detach() for a leaf copy)");
    }
    if (on && arena == null && autograd.gradient == null) {
      throw new IllegalStateException("tensor: a tensor over foreign memory (ofSegment) has no"
          + " arena to keep its gradient in; use requireGradInto(gradient)");
    }
    autograd.leaf = on;
    return this;
  }

  /**
   * Makes this leaf require a gradient that backward passes add into {@code gradient} (same
   * shape, writable, no shared memory), as a layer does with its parameters. Returns this tensor.
   */
  public Tensor requireGradInto(Tensor gradient) {
    if (gradient == null) {
      throw new NullPointerException("gradient");
    }
    if (!gradient.shape.equals(shape)) {
      throw new IllegalArgumentException("gradient: expected shape " + shape
          + " (the tensor's), got " + gradient.shape);
    }
    Checks.writable(gradient.segment, "gradient");
    Checks.disjoint(gradient.segment, "gradient", segment, "tensor");
    if (autograd.origin != null) {
      requiresGrad(true); // throws: only leaves
    }
    autograd.gradient = gradient;
    autograd.leaf = true;
    return this;
  }

  /**
   * The gradient accumulated for this leaf by backward passes, or null before the first (or for
   * a tensor that is not a leaf requiring a gradient).
   */
  public Tensor grad() {
    return autograd.gradient;
  }

  /**
   * Runs the backward of every recorded operation this single-element tensor (a loss) depends on,
   * with the implicit gradient 1, adding into each leaf's {@link #grad()}.
   *
   * @throws IllegalArgumentException if it has more than one element
   * @throws IllegalStateException if it does not require a gradient, or the graph cannot be run
   *     (already run once, a saved tensor changed in place, a forward that cannot record)
   */
  public void backward() {
    Autograd.backward(this, null);
  }

  /** {@link #backward()} from {@code gradient}, the loss's gradient with respect to this tensor. */
  public void backward(Tensor gradient) {
    if (gradient == null) {
      throw new NullPointerException("gradient");
    }
    Checks.usable(gradient.segment, "gradient");
    Autograd.backward(this, gradient);
  }

  /** The same memory as a leaf that requires no gradient: what it feeds is not differentiated. */
  public Tensor detach() {
    return new Tensor(segment, shape, arena, storage);
  }

  /**
   * Declares that this tensor's memory was changed other than through seq4j (through {@link
   * #segment()}), so that autograd detects the change if a recorded operation saved it.
   * seq4j's own writes count themselves.
   */
  public void markChanged() {
    storage.bump();
  }

  Autograd.Storage storage() {
    return storage;
  }

  /** Prints the shape and, for small tensors (at most 1000 elements), every value. */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder("Tensor").append(shape).append(' ').append(dtype());
    if (!segment.scope().isAlive()) {
      return text.append(" <arena closed>").toString();
    }
    if (!segment.isAccessibleBy(Thread.currentThread())) {
      return text.append(" <owned by another thread>").toString();
    }
    if (size() > PRINT_LIMIT) {
      text.append(" [");
      for (long i = 0; i < 6; i++) {
        text.append(i == 0 ? "" : ", ").append(segment.getAtIndex(JAVA_FLOAT, i));
      }
      return text.append(", ... ").append(size() - 6).append(" more]").toString();
    }
    text.append('\n');
    appendNested(text, 0, 0);
    return text.toString();
  }

  private void appendNested(StringBuilder text, int axis, long offset) {
    if (shape.rank() == 0) {
      text.append(segment.getAtIndex(JAVA_FLOAT, 0));
      return;
    }
    long count = shape.dim(axis);
    long stride = 1;
    for (int a = axis + 1; a < shape.rank(); a++) {
      stride *= shape.dim(a);
    }
    text.append('[');
    for (long i = 0; i < count; i++) {
      if (i > 0) {
        text.append(axis == shape.rank() - 1 ? ", " : ",\n" + " ".repeat(axis + 1));
      }
      if (axis == shape.rank() - 1) {
        text.append(segment.getAtIndex(JAVA_FLOAT, offset + i));
      } else {
        appendNested(text, axis + 1, offset + i * stride);
      }
    }
    text.append(']');
  }

  // ---- elementwise arithmetic, unary functions, reductions, softmax (ops-a: ElementwiseOps,
  // ReductionOps; each method delegates to its op family's file)

  // Results of these methods are new tensors allocated in this tensor's arena() (the receiver's,
  // also when the other operand lives elsewhere); a receiver without an arena (ofSegment) is an
  // IllegalArgumentException naming it. Each records its backward when Autograd.isRecording holds.

  /**
   * {@code this + other} elementwise, broadcast as PyTorch: shapes align at the last dimension and
   * sizes match when equal or one is 1. The result has the broadcast shape; the gradient of an
   * operand is summed over the dimensions it was broadcast along.
   *
   * @throws IllegalArgumentException if the shapes do not broadcast (naming {@code other}), or
   *     this tensor has no arena
   */
  public Tensor add(Tensor other) {
    return ElementwiseOps.add(this, other);
  }

  /** {@code this - other}, broadcast as {@link #add(Tensor)}; result in this tensor's arena. */
  public Tensor sub(Tensor other) {
    return ElementwiseOps.sub(this, other);
  }

  /** {@code this · other}, broadcast as {@link #add(Tensor)}; result in this tensor's arena. */
  public Tensor mul(Tensor other) {
    return ElementwiseOps.mul(this, other);
  }

  /**
   * {@code this / other} (true division; x/0 is ±Inf or NaN, as in IEEE), broadcast as {@link
   * #add(Tensor)}; result in this tensor's arena.
   */
  public Tensor div(Tensor other) {
    return ElementwiseOps.div(this, other);
  }

  /** {@code this + value} elementwise; same shape, in this tensor's arena. */
  public Tensor add(float value) {
    return ElementwiseOps.add(this, value);
  }

  /** {@code this - value} elementwise; same shape, in this tensor's arena. */
  public Tensor sub(float value) {
    return ElementwiseOps.sub(this, value);
  }

  /** {@code this · value} elementwise; same shape, in this tensor's arena. */
  public Tensor mul(float value) {
    return ElementwiseOps.mul(this, value);
  }

  /** {@code this / value} elementwise; same shape, in this tensor's arena. */
  public Tensor div(float value) {
    return ElementwiseOps.div(this, value);
  }

  /** {@code -this}; same shape, in this tensor's arena. */
  public Tensor neg() {
    return ElementwiseOps.neg(this);
  }

  /**
   * {@code this^exponent} elementwise (NaN for a negative base and a non-integer exponent); same
   * shape, in this tensor's arena. The gradient is {@code exponent · x^(exponent − 1)}, and 0 for
   * exponent 0, as in PyTorch.
   */
  public Tensor pow(float exponent) {
    return ElementwiseOps.pow(this, exponent);
  }

  /** {@code √this} elementwise (NaN below 0); same shape, in this tensor's arena. */
  public Tensor sqrt() {
    return ElementwiseOps.sqrt(this);
  }

  /** {@code e^this} elementwise; same shape, in this tensor's arena. */
  public Tensor exp() {
    return ElementwiseOps.exp(this);
  }

  /** The natural logarithm (−Inf at 0, NaN below); same shape, in this tensor's arena. */
  public Tensor log() {
    return ElementwiseOps.log(this);
  }

  /** {@code tanh(this)}; same shape, in this tensor's arena. */
  public Tensor tanh() {
    return ElementwiseOps.tanh(this);
  }

  /** {@code 1 / (1 + e^−this)}; same shape, in this tensor's arena. */
  public Tensor sigmoid() {
    return ElementwiseOps.sigmoid(this);
  }

  /** {@code max(this, 0)} (NaN stays NaN, with gradient 0); same shape, in this tensor's arena. */
  public Tensor relu() {
    return ElementwiseOps.relu(this);
  }

  /** The exact GELU {@code x · Φ(x)} (PyTorch's default); same shape, in this tensor's arena. */
  public Tensor gelu() {
    return ElementwiseOps.gelu(this, "none");
  }

  /**
   * GELU as PyTorch's {@code gelu(x, approximate=...)}: {@code "none"} for the exact {@code x ·
   * Φ(x)}, {@code "tanh"} for {@code x/2 · (1 + tanh(√(2/π) · (x + 0.044715 x³)))}; same shape, in
   * this tensor's arena.
   */
  public Tensor gelu(String approximate) {
    return ElementwiseOps.gelu(this, approximate);
  }

  /** {@code |this|} (gradient sign(x), 0 at 0); same shape, in this tensor's arena. */
  public Tensor abs() {
    return ElementwiseOps.abs(this);
  }

  /**
   * Each element limited to {@code [min, max]} (NaN stays NaN); same shape, in this tensor's
   * arena. The gradient passes where {@code min <= x <= max}, as torch.clamp's.
   */
  public Tensor clamp(float min, float max) {
    return ElementwiseOps.clamp(this, min, max);
  }

  /** The sum of every element, a scalar (shape {@code ()}) in this tensor's arena. */
  public Tensor sum() {
    return ReductionOps.sum(this);
  }

  /**
   * The sum over dimension {@code dim} (negative counts from the end): the shape without that
   * dimension, or with size 1 there when {@code keepDim}; in this tensor's arena.
   *
   * @throws IndexOutOfBoundsException if {@code dim} is out of range
   */
  public Tensor sum(int dim, boolean keepDim) {
    return ReductionOps.sum(this, new int[] {dim}, keepDim);
  }

  /**
   * The sum over several dimensions (each once; an empty array means all), as {@link
   * #sum(int, boolean)}.
   */
  public Tensor sum(int[] dims, boolean keepDim) {
    return ReductionOps.sum(this, dims, keepDim);
  }

  /** The mean of every element (NaN for none), a scalar in this tensor's arena. */
  public Tensor mean() {
    return ReductionOps.mean(this);
  }

  /** The mean over dimension {@code dim}, shaped as {@link #sum(int, boolean)}. */
  public Tensor mean(int dim, boolean keepDim) {
    return ReductionOps.mean(this, new int[] {dim}, keepDim);
  }

  /** The mean over several dimensions (an empty array means all), as {@link #sum(int[], boolean)}. */
  public Tensor mean(int[] dims, boolean keepDim) {
    return ReductionOps.mean(this, dims, keepDim);
  }

  /**
   * The maxima along a dimension and where they are: what {@link #max(int, boolean)} returns.
   *
   * @param values the maxima, in the input's arena, recorded for autograd
   * @param indices the position of each maximum along the dimension, in the row-major order of
   *     {@code values} (the first maximum on ties; a NaN's position when there is one)
   */
  public record MaxResult(Tensor values, long[] indices) {}

  /**
   * The maximum over dimension {@code dim} and its position, as PyTorch's {@code max(dim,
   * keepdim)}: the values are shaped as {@link #sum(int, boolean)}, a NaN is the maximum of a
   * slice that holds one, the first maximum wins ties, and the gradient goes to that position.
   *
   * @throws IndexOutOfBoundsException if {@code dim} is out of range
   * @throws IllegalArgumentException if that dimension has size 0
   */
  public MaxResult max(int dim, boolean keepDim) {
    return ReductionOps.max(this, dim, keepDim);
  }

  /**
   * The maximum of every element, a scalar in this tensor's arena; as PyTorch's {@code max()},
   * its gradient is shared evenly by the elements equal to it.
   *
   * @throws IllegalArgumentException if there are no elements
   */
  public Tensor max() {
    return ReductionOps.max(this);
  }

  /**
   * {@code exp(x) / Σ exp(x)} along {@code dim} (the maximum subtracted first, so it never
   * overflows); same shape, in this tensor's arena.
   *
   * @throws IndexOutOfBoundsException if {@code dim} is out of range
   */
  public Tensor softmax(int dim) {
    return ReductionOps.softmax(this, dim);
  }

  /**
   * {@code x − log Σ exp(x)} along {@code dim}, computed stably; same shape, in this tensor's
   * arena.
   *
   * @throws IndexOutOfBoundsException if {@code dim} is out of range
   */
  public Tensor logSoftmax(int dim) {
    return ReductionOps.logSoftmax(this, dim);
  }

  // ---- end ops-a

  // ---- matmul, shape, indexing, dropout, sampling (ops-b: MatmulOps, ShapeOps, IndexOps,
  // SamplingOps; each method delegates to its op family's file)

  /**
   * The matrix product, as {@code torch.matmul}: {@code (m, k) · (k, n) → (m, n)}; stacks of
   * matrices {@code (..., m, k) · (..., k, n) → (..., m, n)} whose batch dimensions broadcast (so
   * {@code (B, m, k) · (k, n) → (B, m, n)} and {@code (B, 1, m, k) · (H, k, n) → (B, H, m, n)});
   * a vector operand of shape {@code (k)} is a row on the left and a column on the right, its
   * added dimension removed from the result ({@code (k) · (k)} is a scalar). The result is new,
   * in this tensor's {@link #arena()}; recorded for autograd.
   *
   * @throws IllegalArgumentException if the inner sizes differ, the batch dimensions do not
   *     broadcast, an operand is a scalar, or this tensor has no arena
   */
  public Tensor matmul(Tensor other) {
    return MatmulOps.matmul(this, other);
  }

  /**
   * The tensors joined along {@code dim}, as {@code torch.cat}: they agree in every other
   * dimension; the result is new, in the first tensor's arena; recorded for autograd.
   *
   * @throws IllegalArgumentException if the list is empty, shapes disagree (naming {@code
   *     tensors[i]}), or the first tensor has no arena
   */
  public static Tensor concat(java.util.List<Tensor> tensors, int dim) {
    return ShapeOps.concat(tensors, dim);
  }

  /**
   * Tensors of one shape {@code S} joined along a new dimension {@code dim} (in {@code [-rank-1,
   * rank]}), as {@code torch.stack}: for n tensors, the result has S with n inserted at dim; new,
   * in the first tensor's arena; recorded for autograd.
   */
  public static Tensor stack(java.util.List<Tensor> tensors, int dim) {
    return ShapeOps.stack(tensors, dim);
  }

  /**
   * This tensor cut along {@code dim} into pieces of {@code size} (the last one smaller when
   * size does not divide the dimension), as {@code torch.split}. Each piece is a new tensor (a
   * copy) in this tensor's arena; recorded for autograd.
   */
  public java.util.List<Tensor> split(long size, int dim) {
    return ShapeOps.split(this, size, dim);
  }

  /**
   * This tensor cut along {@code dim} into pieces of the given {@code sizes}, which sum to the
   * dimension's size, as {@code torch.split}. Each piece is a new tensor (a copy) in this
   * tensor's arena; recorded for autograd.
   */
  public java.util.List<Tensor> split(long[] sizes, int dim) {
    return ShapeOps.split(this, sizes, dim);
  }

  /**
   * This tensor with dimensions {@code dim0} and {@code dim1} swapped, as {@code
   * torch.transpose}, copied into a new contiguous tensor in this tensor's arena (seq4j has no
   * strided views); recorded for autograd.
   */
  public Tensor transpose(int dim0, int dim1) {
    return ShapeOps.transpose(this, dim0, dim1);
  }

  /**
   * This tensor with its dimensions reordered, as {@code torch.permute}: dimension i of the
   * result is dimension {@code dims[i]} of this one. A new contiguous copy in this tensor's
   * arena; recorded for autograd.
   */
  public Tensor permute(int... dims) {
    return ShapeOps.permute(this, dims);
  }

  /**
   * A view (no copy, no allocation) with a dimension of size 1 inserted at {@code dim}, in {@code
   * [-rank-1, rank]}, as {@code torch.unsqueeze}; recorded for autograd like {@link #reshape}.
   */
  public Tensor unsqueeze(int dim) {
    return ShapeOps.unsqueeze(this, dim);
  }

  /**
   * A view without dimension {@code dim} if its size is 1, else this tensor, as {@code
   * torch.squeeze(dim)}; recorded for autograd like {@link #reshape}.
   */
  public Tensor squeeze(int dim) {
    return ShapeOps.squeeze(this, dim);
  }

  /** A view without every dimension of size 1, as {@code torch.squeeze()}. */
  public Tensor squeeze() {
    return ShapeOps.squeeze(this);
  }

  /**
   * A view with dimensions {@code startDim} to {@code endDim} (inclusive) merged into one, as
   * {@code torch.flatten}; a scalar becomes shape (1).
   */
  public Tensor flatten(int startDim, int endDim) {
    return ShapeOps.flatten(this, startDim, endDim);
  }

  /**
   * The values along {@code dim} picked by {@code index}, as {@code torch.gather}: for dim 1 of
   * a rank-3 tensor, {@code out[i][j][k] = this[i][index[i][j][k]][k]}. {@code index} is a float
   * tensor of integral values (exact below 2^24; {@link #argmax} and {@link #topk} make such
   * tensors) with this tensor's rank and, in every dimension but dim, at most its size; the
   * result has index's shape, new, in this tensor's arena; recorded for autograd (the backward
   * scatter-adds: repeated indices accumulate).
   *
   * @throws IndexOutOfBoundsException naming {@code index[i]} (row-major position) when out of
   *     range
   */
  public Tensor gather(int dim, Tensor index) {
    return IndexOps.gather(this, dim, index);
  }

  /**
   * {@link #gather(int, Tensor)} with the index as exact longs: {@code index} in row-major order,
   * of shape {@code indexShape}.
   */
  public Tensor gather(int dim, long[] index, long... indexShape) {
    return IndexOps.gather(this, dim, index, indexShape);
  }

  /**
   * The slices {@code indices[j]} along {@code dim}, in that order, as {@code
   * torch.index_select}: the result has this shape with dimension dim replaced by {@code
   * indices.length}, new, in this tensor's arena; recorded for autograd (duplicates accumulate).
   *
   * @throws IndexOutOfBoundsException naming {@code indices[j]} when out of range
   */
  public Tensor indexSelect(int dim, long[] indices) {
    return IndexOps.indexSelect(this, dim, indices);
  }

  /**
   * The index of the first largest value along {@code dim} (NaN counts as largest), as {@code
   * torch.argmax}: a float tensor of integral indices (exact: a dimension longer than 2^24 is
   * refused) with dim removed, or kept with size 1 when {@code keepDim} (ready for {@link
   * #gather}). New, in this tensor's arena; not differentiable, never recorded.
   */
  public Tensor argmax(int dim, boolean keepDim) {
    return SamplingOps.argmax(this, dim, keepDim);
  }

  /**
   * The result of {@link Tensor#topk}: the k largest values and their indices along the
   * dimension, both of the input's shape with that dimension's size k.
   *
   * @param values the values in descending order; recorded for autograd (its gradient flows to
   *     the selected positions)
   * @param indices their indices as a float tensor of integral values (exact below 2^24), never
   *     recorded
   */
  public record TopK(Tensor values, Tensor indices) {
    /** The indices as longs, in row-major order. */
    public long[] indexArray() {
      float[] raw = indices.toArray();
      long[] out = new long[raw.length];
      for (int i = 0; i < raw.length; i++) {
        out[i] = (long) raw[i];
      }
      return out;
    }
  }

  /**
   * The {@code k} largest values along {@code dim} in descending order and their indices, as
   * {@code torch.topk(k, dim)} (largest, sorted); equal values keep their order (the lower index
   * first). Both results are new, in this tensor's arena.
   *
   * @throws IllegalArgumentException if k is not in [0, size of dim]
   */
  public TopK topk(int k, int dim) {
    return SamplingOps.topk(this, k, dim);
  }

  /**
   * {@code numSamples} class indices drawn per row from this tensor of non-negative weights
   * (shape {@code (C)} or {@code (N, C)}; a row need not sum to 1), as {@code torch.multinomial}:
   * with or without replacement; a class of weight 0 is never drawn. The result, of shape
   * {@code (numSamples)} or {@code (N, numSamples)}, is a float tensor of integral indices, new,
   * in this tensor's arena; not differentiable. The same seed gives the same samples.
   *
   * @throws IllegalArgumentException if a weight is negative or not finite, a row sums to 0
   *     (naming the row), or without replacement a row has fewer positive classes than samples
   */
  public Tensor multinomial(int numSamples, boolean replacement, long seed) {
    return SamplingOps.multinomial(this, numSamples, replacement, SamplingOps.generator(seed));
  }

  /** {@link #multinomial(int, boolean, long)} drawing from {@code random}. */
  public Tensor multinomial(int numSamples, boolean replacement, RandomGenerator random) {
    return SamplingOps.multinomial(this, numSamples, replacement, random);
  }

  /**
   * Inverted dropout, as {@code torch.nn.functional.dropout}: when training, each element is
   * zeroed with probability {@code p} and the others scaled by {@code 1 / (1 - p)}, so the
   * expectation is unchanged; the mask is a function of {@code seed} and the element's position
   * (the same seed, the same mask). This tensor itself when not training or {@code p = 0}; zeros
   * when {@code p = 1}. The result is new, in this tensor's arena; recorded for autograd (the
   * gradient is masked and scaled alike).
   *
   * @throws IllegalArgumentException if p is not in [0, 1]
   */
  public Tensor dropout(float p, boolean training, long seed) {
    return SamplingOps.dropout(this, p, training, seed);
  }


  // ---- end ops-b
}
