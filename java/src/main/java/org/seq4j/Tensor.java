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

  private Tensor(MemorySegment segment, Shape shape) {
    this.segment = segment;
    this.shape = shape;
  }

  // ---- creation

  /** A tensor of zeros. */
  public static Tensor zeros(Arena arena, long... dims) {
    Shape shape = Shape.of(dims);
    return new Tensor(allocate(arena, shape), shape);
  }

  /**
   * A tensor whose contents are unspecified, for results that are about to be overwritten whole:
   * it skips the zeroing pass of {@link #zeros}. Its memory is freed when the arena closes.
   */
  public static Tensor uninitialized(Arena arena, long... dims) {
    Shape shape = Shape.of(dims);
    return new Tensor(org.seq4j.internal.NativeMemory.allocate(arena, byteSize(arena, shape)),
        shape);
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
    Tensor tensor = new Tensor(allocate(arena, shape), shape);
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
    Tensor tensor = new Tensor(allocate(arena, shape), shape);
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
    return new Tensor(segment, shape);
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
    return this;
  }

  /** A new tensor in {@code arena} with the same shape and values. */
  public Tensor copy(Arena arena) {
    Checks.usable(segment, "tensor");
    Tensor copy = new Tensor(allocate(arena, shape), shape);
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
    return new Tensor(segment, target);
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
    return new Tensor(segment.asSlice(start * rowBytes, (end - start) * rowBytes), Shape.of(dims));
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
}
