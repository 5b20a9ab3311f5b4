package org.seq4j.nn;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;
import org.seq4j.Backend;
import org.seq4j.Seq4j;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.internal.NativeMemory;
import org.seq4j.train.Tape;

/**
 * A multi-layer, optionally bidirectional recurrent network: the common machinery of {@link
 * SimpleRnn}, {@link Lstm} and {@link Gru}. Each call runs on oneDNN's RNN primitives or on
 * seq4j's own BLAS backend ({@link Backend}): pinned by the builder's {@code backend}, else by
 * {@link Seq4j#setRecurrentBackend}, else chosen per call by {@link Backend#AUTO}; see {@link
 * #resolvedBackend}. {@link #step} is the streaming path for one event at a time.
 *
 * <p>Shapes: input {@code (T, N, inputSize)} (or {@code (N, T, inputSize)} when batch-first),
 * output {@code (T, N, D * Hout)} with {@code D} = 2 when bidirectional and {@code Hout} the
 * projection size of an LSTM with projection, else the hidden size. States are {@link
 * RecurrentState}s of shape {@code (numLayers * D, N, Hout)} (and {@code (numLayers * D, N,
 * hidden)} for the LSTM cell), always batch-second as in PyTorch.
 *
 * <p>Training: {@code forward(..., Mode.TRAINING)} returns a {@link RecurrentContext};
 * {@link #backward} returns the gradients of the input and initial state and <em>adds</em> the
 * parameter gradients into each {@link Parameter#grad()}. Truncated BPTT: feed one chunk's final
 * state as the next chunk's initial state, and stop the gradient there by not passing its gradient
 * on.
 *
 * <p>Threads: inference calls may run concurrently from many threads on one layer. Training
 * forwards and backwards of one layer must not run concurrently with each other (they add into the
 * same gradients), nor with writes to its parameters. {@link #close()} fails while a call is
 * running.
 */
public abstract sealed class RecurrentLayer implements AutoCloseable permits SimpleRnn, Lstm, Gru {

  /** The cell kinds, numbered as {@code SEQ4J_CELL_*} in {@code seq4j.h}. */
  enum Cell {
    RNN_TANH(0, 1),
    RNN_RELU(1, 1),
    LSTM(2, 4),
    GRU(3, 3);

    final int code;
    final int gates;

    Cell(int code, int gates) {
      this.code = code;
      this.gates = gates;
    }
  }

  /** The sizes and options of a network. */
  record Config(Cell cell, long inputSize, long hiddenSize, int numLayers, boolean bidirectional,
      boolean bias, boolean peephole, long projSize, float dropout, boolean batchFirst,
      long seed, Backend backend) {}

  /** {@code seq4j_rnn_layer_desc}. */
  private static final StructLayout LAYER_DESC = MemoryLayout.structLayout(
      JAVA_INT.withName("cell"), JAVA_INT.withName("directions"),
      JAVA_LONG.withName("input_size"), JAVA_LONG.withName("hidden_size"),
      JAVA_LONG.withName("proj_size"), JAVA_INT.withName("peephole"), JAVA_INT.withName("bias"));

  /** {@code seq4j_rnn_weights}: eight pointers in this order. */
  private static final String[] WEIGHT_FIELDS = {
    "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "weight_ci", "weight_cf",
    "weight_co"
  };

  private static final long WEIGHTS_STRUCT_BYTES = WEIGHT_FIELDS.length * ADDRESS.byteSize();

  final Config config;
  private final String typeName;
  private final Arena arena;
  private final int directions;
  private final long outputSize;
  private final Map<String, Parameter> parameters;
  private final Parameter[] parameterArray;
  private final MemorySegment[] handles;
  private final MemorySegment[] weightStructs;
  private final MemorySegment[] gradientStructs;
  /** The streaming step's arguments: every layer's handle, and its weights struct. */
  private final MemorySegment stepHandles;
  private final MemorySegment stepWeights;
  private final AtomicLong trainingCalls = new AtomicLong();

  RecurrentLayer(String typeName, Config config) {
    this.typeName = typeName;
    this.config = config;
    validate(config);
    this.directions = config.bidirectional() ? 2 : 1;
    this.outputSize = config.projSize() > 0 ? config.projSize() : config.hiddenSize();
    this.arena = Arena.ofShared();
    boolean built = false;
    try {
      this.parameters = createParameters();
      this.parameterArray = parameters.values().toArray(new Parameter[0]);
      this.handles = new MemorySegment[config.numLayers()];
      this.weightStructs = new MemorySegment[config.numLayers()];
      this.gradientStructs = new MemorySegment[config.numLayers()];
      for (int layer = 0; layer < config.numLayers(); layer++) {
        handles[layer] = createHandle(layer);
        weightStructs[layer] = pointerStruct(layer, false);
        gradientStructs[layer] = pointerStruct(layer, true);
      }
      this.stepHandles = arena.allocate(ADDRESS, config.numLayers());
      this.stepWeights = arena.allocate(ADDRESS, config.numLayers());
      for (int layer = 0; layer < config.numLayers(); layer++) {
        stepHandles.setAtIndex(ADDRESS, layer, handles[layer]);
        stepWeights.setAtIndex(ADDRESS, layer, weightStructs[layer]);
      }
      built = true;
    } finally {
      if (!built) {
        arena.close();
      }
    }
  }

  private void validate(Config c) {
    requirePositive("inputSize", c.inputSize());
    requirePositive("hiddenSize", c.hiddenSize());
    requirePositive("numLayers", c.numLayers());
    if (c.projSize() < 0 || (c.projSize() > 0 && c.projSize() >= c.hiddenSize())) {
      throw new IllegalArgumentException(
          "projSize: expected 0 (none) or 0 < projSize < hiddenSize = " + c.hiddenSize()
              + ", got " + c.projSize());
    }
    if (!(c.dropout() >= 0f && c.dropout() < 1f)) {
      throw new IllegalArgumentException("dropout: expected 0 <= p < 1, got " + c.dropout());
    }
  }

  private static void requirePositive(String name, long value) {
    if (value < 1) {
      throw new IllegalArgumentException(name + ": expected >= 1, got " + value);
    }
  }

  // ---- parameters

  private Map<String, Parameter> createParameters() {
    Map<String, Parameter> created = new LinkedHashMap<>();
    long gateRows = config.cell().gates * config.hiddenSize();
    // PyTorch's default: every parameter uniform in [-1/sqrt(hidden), 1/sqrt(hidden)].
    float bound = (float) (1.0 / Math.sqrt(config.hiddenSize()));
    RandomGenerator random = RandomGeneratorFactory.of("L64X128MixRandom").create(config.seed());
    for (int layer = 0; layer < config.numLayers(); layer++) {
      long layerInput = layer == 0 ? config.inputSize() : directions * outputSize;
      for (int direction = 0; direction < directions; direction++) {
        String suffix = "_l" + layer + (direction == 1 ? "_reverse" : "");
        add(created, "weight_ih" + suffix, random, bound, gateRows, layerInput);
        add(created, "weight_hh" + suffix, random, bound, gateRows, outputSize);
        if (config.bias()) {
          add(created, "bias_ih" + suffix, random, bound, gateRows);
          add(created, "bias_hh" + suffix, random, bound, gateRows);
        }
        if (config.projSize() > 0) {
          add(created, "weight_hr" + suffix, random, bound, config.projSize(),
              config.hiddenSize());
        }
        if (config.peephole()) {
          add(created, "weight_ci" + suffix, random, bound, config.hiddenSize());
          add(created, "weight_cf" + suffix, random, bound, config.hiddenSize());
          add(created, "weight_co" + suffix, random, bound, config.hiddenSize());
        }
      }
    }
    return Collections.unmodifiableMap(created);
  }

  private void add(Map<String, Parameter> into, String name, RandomGenerator random, float bound,
      long... dims) {
    Tensor data = Tensor.zeros(arena, dims);
    for (long i = 0; i < data.size(); i++) {
      data.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i,
          (float) ((random.nextDouble() * 2 - 1) * bound));
    }
    into.put(name, new Parameter(name, data, Tensor.zeros(arena, dims)));
  }

  /** Every parameter in PyTorch's order, peepholes last within each direction. */
  public List<Parameter> parameters() {
    return List.copyOf(parameters.values());
  }

  /**
   * The parameter with this PyTorch name.
   *
   * @throws IllegalArgumentException naming the known parameters when there is none
   */
  public Parameter parameter(String name) {
    Parameter parameter = parameters.get(name);
    if (parameter == null) {
      throw new IllegalArgumentException(
          "name: " + typeName + " has no parameter '" + name + "'; it has " + parameters.keySet());
    }
    return parameter;
  }

  /** Sets every parameter's gradient to zero. */
  public void zeroGrad() {
    requireOpen();
    for (Parameter parameter : parameters.values()) {
      parameter.zeroGrad();
    }
  }

  /** Marks every parameter changed: see {@link Parameter#markChanged()}. */
  public void parametersChanged() {
    for (Parameter parameter : parameters.values()) {
      parameter.markChanged();
    }
  }

  private long weightsVersion() {
    long sum = 0;
    for (Parameter parameter : parameterArray) {
      sum += parameter.version();
    }
    return sum;
  }

  // ---- sizes

  /** Input features per step. */
  public long inputSize() {
    return config.inputSize();
  }

  /** Hidden features per direction. */
  public long hiddenSize() {
    return config.hiddenSize();
  }

  /** Stacked layers. */
  public int numLayers() {
    return config.numLayers();
  }

  /** 2 when bidirectional, else 1. */
  public int directions() {
    return directions;
  }

  /** Output features per direction: the projection size of an LSTM with projection, else hidden. */
  public long outputSizePerDirection() {
    return outputSize;
  }

  /** Whether inputs and outputs are {@code (N, T, C)} rather than {@code (T, N, C)}. */
  public boolean batchFirst() {
    return config.batchFirst();
  }

  boolean hasCell() {
    return config.cell() == Cell.LSTM;
  }

  /** The backend the builder pinned, or null when {@link Seq4j#recurrentBackend()} decides. */
  public Backend backend() {
    return config.backend();
  }

  private Backend requestedBackend() {
    return config.backend() != null ? config.backend() : Seq4j.recurrentBackend();
  }

  /**
   * The backend a forward of {@code steps} steps of {@code batch} samples in this mode runs on
   * now: the pinned one, or {@link Backend#AUTO}'s choice for the shape (README, "Recurrent
   * backends"). A training forward's backward runs on the same one.
   */
  public Backend resolvedBackend(long steps, long batch, Mode mode) {
    requireOpen();
    requirePositive("steps", steps);
    requirePositive("batch", batch);
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    try (Arena call = Arena.ofConfined()) {
      MemorySegment chosen = call.allocate(JAVA_INT);
      NativeBindings.check((int) NativeBindings.RNN_LAYER_BACKEND.invokeExact(handles[0],
          requestedBackend().nativeCode(), steps, batch, mode == Mode.TRAINING ? 1 : 0, chosen));
      return chosen.get(JAVA_INT, 0) == Backend.BLAS.nativeCode() ? Backend.BLAS : Backend.ONEDNN;
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  // ---- native handles

  private MemorySegment createHandle(int layer) {
    long layerInput = layer == 0 ? config.inputSize() : directions * outputSize;
    try (Arena call = Arena.ofConfined()) {
      MemorySegment desc = call.allocate(LAYER_DESC);
      desc.set(JAVA_INT, LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("cell")),
          config.cell().code);
      desc.set(JAVA_INT,
          LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("directions")), directions);
      desc.set(JAVA_LONG,
          LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("input_size")), layerInput);
      desc.set(JAVA_LONG,
          LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("hidden_size")),
          config.hiddenSize());
      desc.set(JAVA_LONG,
          LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("proj_size")),
          config.projSize());
      desc.set(JAVA_INT, LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("peephole")),
          config.peephole() ? 1 : 0);
      desc.set(JAVA_INT, LAYER_DESC.byteOffset(MemoryLayout.PathElement.groupElement("bias")),
          config.bias() ? 1 : 0);
      MemorySegment out = call.allocate(ADDRESS);
      NativeBindings.check((int) NativeBindings.RNN_LAYER_CREATE.invokeExact(out, desc));
      MemorySegment raw = out.get(ADDRESS, 0);
      // Destroyed when the layer's arena closes, which cannot happen during a call using it.
      return raw.reinterpret(arena, RecurrentLayer::destroy);
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  private static void destroy(MemorySegment handle) {
    try {
      int ignored = (int) NativeBindings.RNN_LAYER_DESTROY.invokeExact(handle);
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  private MemorySegment pointerStruct(int layer, boolean gradients) {
    MemorySegment struct = arena.allocate(WEIGHTS_STRUCT_BYTES * directions, 8);
    for (int direction = 0; direction < directions; direction++) {
      String suffix = "_l" + layer + (direction == 1 ? "_reverse" : "");
      for (int field = 0; field < WEIGHT_FIELDS.length; field++) {
        Parameter parameter = parameters.get(WEIGHT_FIELDS[field] + suffix);
        MemorySegment pointer = parameter == null ? MemorySegment.NULL
            : gradients ? parameter.grad().segment() : parameter.data().segment();
        struct.set(ADDRESS, direction * WEIGHTS_STRUCT_BYTES + field * ADDRESS.byteSize(),
            pointer);
      }
    }
    return struct;
  }

  // ---- forward

  /** Inference from a zero state. */
  public RecurrentResult forward(Arena arena, Tensor input) {
    return forward(arena, input, null, null, Mode.INFERENCE);
  }

  /** Inference from {@code initial} (null: zeros), as when streaming a long sequence in chunks. */
  public RecurrentResult forward(Arena arena, Tensor input, RecurrentState initial) {
    return forward(arena, input, initial, null, Mode.INFERENCE);
  }

  /**
   * The full forward pass. Results are allocated in {@code arena}; in training mode so is the
   * context, which {@link #backward} reads while the arena is open.
   *
   * @param arena where the outputs (and the training context) live
   * @param input {@code (T, N, inputSize)}, or {@code (N, T, inputSize)} when batch-first
   * @param initial the initial state, or null for zeros
   * @param lengths each sample's length in {@code [1, T]}, or null when all are {@code T}
   * @param mode inference, or training (saves a context; applies dropout between layers)
   */
  public RecurrentResult forward(Arena arena, Tensor input, RecurrentState initial,
      long[] lengths, Mode mode) {
    requireOpen();
    checkInput(input);
    long steps = steps(input);
    long batch = batch(input);
    checkState(initial, "initial", batch);
    MemorySegment lengthSegment = lengthsSegment(arena, lengths, steps, batch);
    // every element of these is written by the native forward
    Tensor output = config.batchFirst()
        ? Tensor.uninitialized(arena, batch, steps, directions * outputSize)
        : Tensor.uninitialized(arena, steps, batch, directions * outputSize);
    RecurrentState finalState = new RecurrentState(
        Tensor.uninitialized(arena, (long) config.numLayers() * directions, batch, outputSize),
        hasCell() ? Tensor.uninitialized(arena, (long) config.numLayers() * directions, batch,
            config.hiddenSize()) : null);
    RecurrentContext context = mode == Mode.TRAINING
        ? new RecurrentContext(this, steps, batch, lengthSegment, config.numLayers()) : null;
    run(arena, input, initial, lengthSegment, steps, batch, output, finalState, context);
    Tape tape = Tape.active();
    if (context != null && tape != null) {
      record(tape, arena, input, initial, output, finalState, context);
    }
    return new RecurrentResult(output, finalState, context);
  }

  /** Registers this training forward's backward on the tape. */
  private void record(Tape tape, Arena arena, Tensor input, RecurrentState initial, Tensor output,
      RecurrentState finalState, RecurrentContext context) {
    java.util.List<Tensor> inputs = new java.util.ArrayList<>();
    inputs.add(input);
    inputs.add(initial == null ? null : initial.hidden());
    inputs.add(initial == null ? null : initial.cell());
    java.util.List<Tensor> outputs = new java.util.ArrayList<>();
    outputs.add(output);
    outputs.add(finalState.hidden());
    if (hasCell()) {
      outputs.add(finalState.cell());
    }
    tape.record(inputs, outputs, gradients -> {
          Tensor gradOutput = gradients.get(0) != null ? gradients.get(0)
              : Tensor.zeros(arena, output.shape().dims());
          Tensor gradHidden = gradients.get(1);
          Tensor gradCell = hasCell() ? gradients.get(2) : null;
          RecurrentState gradFinal = null;
          if (gradHidden != null || gradCell != null) {
            gradFinal = new RecurrentState(
                gradHidden != null ? gradHidden : Tensor.zeros(arena, finalState.hidden().shape().dims()),
                !hasCell() ? null : gradCell != null ? gradCell
                    : Tensor.zeros(arena, finalState.cell().shape().dims()));
          }
          RecurrentGradients grads = backward(arena, context, gradOutput, gradFinal);
          java.util.List<Tensor> result = new java.util.ArrayList<>();
          result.add(grads.input());
          result.add(grads.initialState().hidden());
          result.add(grads.initialState().cell());
          return result;
        });
  }

  /**
   * Inference into tensors the caller allocated once: for a service that calls one step per
   * event, this path allocates nothing on the Java heap once warm. {@code initial} (null for
   * zeros) and {@code finalState} must not share memory.
   *
   * @param input {@code (T, N, inputSize)}, or {@code (N, T, inputSize)} when batch-first
   * @param initial the state to start from, or null
   * @param output receives the outputs, shaped like those of {@link #forward(Arena, Tensor)}
   * @param finalState receives the final state
   */
  public void forward(Tensor input, RecurrentState initial, Tensor output,
      RecurrentState finalState) {
    requireOpen();
    checkInput(input);
    long steps = steps(input);
    long batch = batch(input);
    checkState(initial, "initial", batch);
    if (finalState == null) {
      throw new NullPointerException("finalState");
    }
    checkState(finalState, "finalState", batch);
    long first = config.batchFirst() ? batch : steps;
    long second = config.batchFirst() ? steps : batch;
    if (output.shape().rank() != 3 || output.dim(0) != first || output.dim(1) != second
        || output.dim(2) != directions * outputSize) {
      throw new IllegalArgumentException("output: expected shape "
          + Shape.of(first, second, directions * outputSize) + ", got " + output.shape());
    }
    Checks.usable(output.segment(), "output");
    if (initial != null) {
      Checks.disjoint(finalState.hidden().segment(), "finalState.hidden",
          initial.hidden().segment(), "initial.hidden");
      if (hasCell()) {
        Checks.disjoint(finalState.cell().segment(), "finalState.cell",
            initial.cell().segment(), "initial.cell");
      }
    }
    Scratch scratch = SCRATCH.get();
    run(null, input, initial, MemorySegment.NULL, steps, batch, output, finalState, null,
        scratch);
  }

  /**
   * One step of streaming inference, in place: the service that feeds one event at a time calls
   * this once per event. {@code state} is read as the state before the step and overwritten with
   * the state after it. With the BLAS backend (or AUTO) the whole stack runs in one native call
   * on weights packed once for matrix-vector work (re-packed after {@link Parameter#markChanged()}),
   * with no allocation once warm; batches above 8 take the GEMM route. A layer pinned to {@link
   * Backend#ONEDNN} runs oneDNN's primitive for one step instead. Results equal those of {@link
   * #forward(Arena, Tensor, RecurrentState)} on the same steps within the recurrent tolerance.
   *
   * @param input {@code (N, inputSize)}: this step of every sample
   * @param state the running state, {@code (numLayers, N, Hout)} (and {@code (numLayers, N,
   *     hidden)} cells for an LSTM)
   * @param output receives the top layer's new hidden state {@code (N, Hout)}, or null
   * @throws IllegalStateException for a bidirectional layer, which cannot stream
   */
  public void step(Tensor input, RecurrentState state, Tensor output) {
    requireOpen();
    if (config.bidirectional()) {
      throw new IllegalStateException(
          "step: a bidirectional " + typeName + " needs the whole sequence; use forward");
    }
    if (input == null) {
      throw new NullPointerException("input");
    }
    if (state == null) {
      throw new NullPointerException("state");
    }
    if (input.shape().rank() != 2 || input.dim(1) != config.inputSize()) {
      throw new IllegalArgumentException("input: expected shape (N, " + config.inputSize()
          + "), got " + input.shape());
    }
    Checks.usable(input.segment(), "input");
    long batch = input.dim(0);
    checkState(state, "state", batch);
    Checks.disjoint(input.segment(), "input", state.hidden().segment(), "state.hidden");
    if (output != null) {
      if (output.shape().rank() != 2 || output.dim(0) != batch || output.dim(1) != outputSize) {
        throw new IllegalArgumentException("output: expected shape (" + batch + ", " + outputSize
            + "), got " + output.shape());
      }
      Checks.usable(output.segment(), "output");
    }
    if (requestedBackend() == Backend.ONEDNN) {
      stepOnOnednn(input, state, batch);
    } else {
      try {
        NativeBindings.check((int) NativeBindings.RNN_STEP.invokeExact(stepHandles, stepWeights,
            weightsVersion(), config.numLayers(), state.hidden().segment(),
            segmentOrNull(hasCell() ? state.cell() : null), input.segment(), batch));
      } catch (Throwable t) {
        throw NativeBindings.rethrow(t);
      }
    }
    if (output != null) {
      long top = (long) (config.numLayers() - 1) * batch * outputSize * Float.BYTES;
      MemorySegment.copy(state.hidden().segment(), top, output.segment(), 0,
          batch * outputSize * Float.BYTES);
    }
  }

  private void stepOnOnednn(Tensor input, RecurrentState state, long batch) {
    long states = (long) config.numLayers() * directions;
    try (Arena call = Arena.ofConfined()) {
      Tensor sequence = config.batchFirst() ? Tensor.ofSegment(input.segment(), batch, 1,
          config.inputSize()) : Tensor.ofSegment(input.segment(), 1, batch, config.inputSize());
      Tensor output = config.batchFirst() ? Tensor.uninitialized(call, batch, 1, outputSize)
          : Tensor.uninitialized(call, 1, batch, outputSize);
      RecurrentState next = new RecurrentState(
          Tensor.uninitialized(call, states, batch, outputSize),
          hasCell() ? Tensor.uninitialized(call, states, batch, config.hiddenSize()) : null);
      forward(sequence, state, output, next);
      MemorySegment.copy(next.hidden().segment(), 0, state.hidden().segment(), 0,
          next.hidden().segment().byteSize());
      if (hasCell()) {
        MemorySegment.copy(next.cell().segment(), 0, state.cell().segment(), 0,
            next.cell().segment().byteSize());
      }
    }
  }

  /** Per-thread buffers of the allocation-free path: GC-managed, grown as needed. */
  private static final class Scratch {
    private final MemorySegment[] buffers = new MemorySegment[4];

    Tensor tensor(int slot, long... dims) {
      long bytes = Shape.of(dims).size() * Float.BYTES;
      if (buffers[slot] == null || buffers[slot].byteSize() < bytes) {
        buffers[slot] = Arena.ofAuto().allocate(Math.max(bytes, 64), 64);
      }
      return Tensor.ofSegment(buffers[slot].asSlice(0, bytes), dims);
    }
  }

  private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

  private void run(Arena arena, Tensor input, RecurrentState initial, MemorySegment lengths,
      long steps, long batch, Tensor output, RecurrentState finalState,
      RecurrentContext context) {
    run(arena, input, initial, lengths, steps, batch, output, finalState, context, null);
  }

  /**
   * Runs every layer. Intermediate tensors come from {@code arena}, or from {@code scratch} on
   * the allocation-free path (where arena is null).
   */
  private void run(Arena arena, Tensor input, RecurrentState initial, MemorySegment lengths,
      long steps, long batch, Tensor output, RecurrentState finalState,
      RecurrentContext context, Scratch scratch) {
    boolean training = context != null;
    long width = directions * outputSize;
    Tensor layerInput = input;
    if (config.batchFirst()) {
      layerInput = scratch != null ? scratch.tensor(0, steps, batch, config.inputSize())
          : Tensor.uninitialized(arena, steps, batch, config.inputSize());
      swapLeadingAxes(input, layerInput);
    }
    Tensor timeMajorOutput = !config.batchFirst() ? output
        : scratch != null ? scratch.tensor(1, steps, batch, width)
        : Tensor.uninitialized(arena, steps, batch, width);
    long callSeed = training ? mixSeed(config.seed(), trainingCalls.getAndIncrement()) : 0;
    long version = weightsVersion();
    // A training forward fixes its backend, so the backward runs on the same one.
    int backend = training ? resolvedBackend(steps, batch, Mode.TRAINING).nativeCode()
        : requestedBackend().nativeCode();
    if (training) {
      context.backend = backend;
    }
    for (int layer = 0; layer < config.numLayers(); layer++) {
      boolean last = layer == config.numLayers() - 1;
      Tensor layerOutput = last ? timeMajorOutput
          : scratch != null ? scratch.tensor(2 + (layer & 1), steps, batch, width)
          : Tensor.uninitialized(arena, steps, batch, width);
      long firstState = (long) layer * directions;
      Tensor h0 = initial == null ? null
          : initial.hidden().slice(firstState, firstState + directions);
      Tensor c0 = initial == null || !hasCell() ? null
          : initial.cell().slice(firstState, firstState + directions);
      Tensor hN = finalState.hidden().slice(firstState, firstState + directions);
      Tensor cN = hasCell() ? finalState.cell().slice(firstState, firstState + directions) : null;
      MemorySegment workspace = MemorySegment.NULL;
      if (training) {
        long bytes = workspaceSize(layer, backend, lengths, steps, batch);
        workspace = NativeMemory.allocate(arena, Math.max(bytes, 1));
        context.inputs[layer] = layerInput;
        context.outputs[layer] = layerOutput;
        context.initialHidden[layer] = h0;
        context.initialCell[layer] = c0;
        context.finalHidden[layer] = hN;
        context.finalCell[layer] = cN;
        context.workspaces[layer] = workspace;
      }
      forwardLayer(layer, backend, training ? -1L : version, layerOutput, hN, cN, workspace,
          layerInput, h0, c0, lengths, steps, batch);
      if (!last) {
        if (training && config.dropout() > 0f) {
          long seed = callSeed + layer;
          context.dropoutSeeds[layer] = seed;
          Tensor dropped = Tensor.uninitialized(arena, steps, batch, width);
          dropout(layerOutput, dropped, seed);
          layerInput = dropped;
        } else {
          layerInput = layerOutput;
        }
      }
    }
    if (config.batchFirst()) {
      swapLeadingAxes(timeMajorOutput, output);
    }
  }

  private void forwardLayer(int layer, int backend, long version, Tensor output, Tensor hN,
      Tensor cN, MemorySegment workspace, Tensor input, Tensor h0, Tensor c0,
      MemorySegment lengths, long steps, long batch) {
    try {
      NativeBindings.check((int) NativeBindings.RNN_LAYER_FORWARD.invokeExact(
          handles[layer], backend, weightStructs[layer], version, output.segment(), hN.segment(),
          segmentOrNull(cN), workspace, workspace.byteSize(), input.segment(),
          segmentOrNull(h0), segmentOrNull(c0), lengths, steps, batch));
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  private long workspaceSize(int layer, int backend, MemorySegment lengths, long steps,
      long batch) {
    try (Arena call = Arena.ofConfined()) {
      MemorySegment bytes = call.allocate(JAVA_LONG);
      NativeBindings.check((int) NativeBindings.RNN_LAYER_WORKSPACE_SIZE.invokeExact(
          handles[layer], backend, lengths, steps, batch, bytes));
      return bytes.get(JAVA_LONG, 0);
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  // ---- backward

  /**
   * Backpropagation through time of one training forward. May be called more than once; each call
   * adds the parameter gradients again.
   *
   * @param arena where the returned gradients live
   * @param context the context of a {@link Mode#TRAINING} forward of this layer
   * @param gradOutput the gradient of the loss with respect to the output (same shape)
   * @param gradFinalState the gradient with respect to the final state, or null for zero
   */
  public RecurrentGradients backward(Arena arena, RecurrentContext context, Tensor gradOutput,
      RecurrentState gradFinalState) {
    requireOpen();
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.layer != this) {
      throw new IllegalArgumentException(
          "context: it belongs to another layer; pass the context of this layer's forward");
    }
    if (!context.isUsable()) {
      throw new IllegalStateException(
          "context: the arena of its forward pass is closed (or owned by another thread)");
    }
    long steps = context.steps;
    long batch = context.batch;
    long width = directions * outputSize;
    Shape expected = config.batchFirst() ? Shape.of(batch, steps, width)
        : Shape.of(steps, batch, width);
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (!gradOutput.shape().equals(expected)) {
      throw new IllegalArgumentException(
          "gradOutput: expected shape " + expected + " (the output's), got " + gradOutput.shape());
    }
    Checks.usable(gradOutput.segment(), "gradOutput");
    checkState(gradFinalState, "gradFinalState", batch);
    Tensor gradLayerOutput = gradOutput;
    if (config.batchFirst()) {
      gradLayerOutput = Tensor.uninitialized(arena, steps, batch, width);
      swapLeadingAxes(gradOutput, gradLayerOutput);
    }
    long states = (long) config.numLayers() * directions;
    RecurrentState gradInitial = new RecurrentState(
        Tensor.uninitialized(arena, states, batch, outputSize),
        hasCell() ? Tensor.uninitialized(arena, states, batch, config.hiddenSize()) : null);
    Tensor gradInput = null;
    for (int layer = config.numLayers() - 1; layer >= 0; layer--) {
      long first = (long) layer * directions;
      long inputWidth = layer == 0 ? config.inputSize() : width;
      Tensor gradLayerInput = Tensor.uninitialized(arena, steps, batch, inputWidth);
      Tensor gradHN = gradFinalState == null ? null
          : gradFinalState.hidden().slice(first, first + directions);
      Tensor gradCN = gradFinalState == null || !hasCell() ? null
          : gradFinalState.cell().slice(first, first + directions);
      Tensor gradH0 = gradInitial.hidden().slice(first, first + directions);
      Tensor gradC0 = hasCell() ? gradInitial.cell().slice(first, first + directions) : null;
      MemorySegment workspace = context.workspaces[layer];
      try {
        NativeBindings.check((int) NativeBindings.RNN_LAYER_BACKWARD.invokeExact(
            handles[layer], context.backend, weightStructs[layer], gradientStructs[layer],
            gradLayerInput.segment(), gradH0.segment(), segmentOrNull(gradC0),
            gradLayerOutput.segment(), segmentOrNull(gradHN), segmentOrNull(gradCN),
            workspace, workspace.byteSize(), context.inputs[layer].segment(),
            segmentOrNull(context.initialHidden[layer]),
            segmentOrNull(context.initialCell[layer]), context.outputs[layer].segment(),
            context.finalHidden[layer].segment(), segmentOrNull(context.finalCell[layer]),
            context.lengths, steps, batch));
      } catch (Throwable t) {
        throw NativeBindings.rethrow(t);
      }
      if (layer > 0 && config.dropout() > 0f) {
        dropout(gradLayerInput, gradLayerInput, context.dropoutSeeds[layer - 1]);
      }
      gradLayerOutput = gradLayerInput;
      gradInput = gradLayerInput;
    }
    if (config.batchFirst()) {
      Tensor batchFirst = Tensor.uninitialized(arena, batch, steps, config.inputSize());
      swapLeadingAxes(gradInput, batchFirst);
      gradInput = batchFirst;
    }
    return new RecurrentGradients(gradInput, gradInitial);
  }

  // ---- checks and helpers

  private long steps(Tensor input) {
    return config.batchFirst() ? input.dim(1) : input.dim(0);
  }

  private long batch(Tensor input) {
    return config.batchFirst() ? input.dim(0) : input.dim(1);
  }

  private void checkInput(Tensor input) {
    if (input == null) {
      throw new NullPointerException("input");
    }
    if (input.shape().rank() != 3 || input.dim(2) != config.inputSize()) {
      throw new IllegalArgumentException(
          "input: expected shape " + inputLayout() + ", got " + input.shape());
    }
    if (steps(input) < 1 || batch(input) < 1) {
      throw new IllegalArgumentException("input: expected at least one step and one sample in "
          + inputLayout() + ", got " + input.shape());
    }
    Checks.usable(input.segment(), "input");
  }

  private String inputLayout() {
    return config.batchFirst() ? "(N, T, " + config.inputSize() + ") [batch-first]"
        : "(T, N, " + config.inputSize() + ") [time-major]";
  }

  private void checkState(RecurrentState state, String name, long batch) {
    if (state == null) {
      return;
    }
    long states = (long) config.numLayers() * directions;
    if (!hasShape(state.hidden(), states, batch, outputSize)) {
      throw new IllegalArgumentException(
          name + ".hidden: expected shape " + Shape.of(states, batch, outputSize)
              + " (layers * directions, N, "
              + (config.projSize() > 0 ? "projSize" : "hiddenSize") + "), got "
              + (state.hidden() == null ? "null" : state.hidden().shape()));
    }
    Checks.usable(state.hidden().segment(), name, ".hidden");
    if (hasCell()) {
      if (!hasShape(state.cell(), states, batch, config.hiddenSize())) {
        throw new IllegalArgumentException(name + ".cell: expected shape "
            + Shape.of(states, batch, config.hiddenSize()) + " (layers * directions, N, hiddenSize), got "
                + (state.cell() == null ? "null" : state.cell().shape()));
      }
      Checks.usable(state.cell().segment(), name, ".cell");
    } else if (state.cell() != null) {
      throw new IllegalArgumentException(
          name + ".cell: expected null, " + typeName + " has no cell state");
    }
  }

  private static boolean hasShape(Tensor tensor, long d0, long d1, long d2) {
    return tensor != null && tensor.shape().rank() == 3 && tensor.dim(0) == d0
        && tensor.dim(1) == d1 && tensor.dim(2) == d2;
  }

  private static MemorySegment lengthsSegment(Arena arena, long[] lengths, long steps,
      long batch) {
    if (lengths == null) {
      return MemorySegment.NULL;
    }
    if (lengths.length != batch) {
      throw new IllegalArgumentException(
          "lengths: expected " + batch + " values (one per sample), got " + lengths.length);
    }
    for (int i = 0; i < lengths.length; i++) {
      if (lengths[i] < 1 || lengths[i] > steps) {
        throw new IllegalArgumentException(
            "lengths[" + i + "]: expected 1 <= length <= " + steps + " (T), got " + lengths[i]);
      }
    }
    return arena.allocateFrom(JAVA_LONG, lengths);
  }

  private static MemorySegment segmentOrNull(Tensor tensor) {
    return tensor == null ? MemorySegment.NULL : tensor.segment();
  }

  private static void swapLeadingAxes(Tensor in, Tensor out) {
    try {
      NativeBindings.check((int) NativeBindings.SWAP_LEADING_AXES.invokeExact(out.segment(),
          in.segment(), in.dim(0), in.dim(1), in.dim(2)));
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  private void dropout(Tensor in, Tensor out, long seed) {
    try {
      NativeBindings.check((int) NativeBindings.DROPOUT.invokeExact(out.segment(), in.segment(),
          in.size(), config.dropout(), seed));
    } catch (Throwable t) {
      throw NativeBindings.rethrow(t);
    }
  }

  private static long mixSeed(long seed, long call) {
    long z = seed + call * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  private void requireOpen() {
    if (!arena.scope().isAlive()) {
      throw new IllegalStateException(typeName + ": the layer is closed");
    }
  }

  /** Frees the parameters and native resources. Fails while a call on this layer is running. */
  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  @Override
  public String toString() {
    StringBuilder text = new StringBuilder(typeName).append("(").append(config.inputSize())
        .append(", ").append(config.hiddenSize());
    if (config.numLayers() > 1) {
      text.append(", numLayers=").append(config.numLayers());
    }
    if (config.bidirectional()) {
      text.append(", bidirectional");
    }
    if (config.projSize() > 0) {
      text.append(", projSize=").append(config.projSize());
    }
    if (config.peephole()) {
      text.append(", peepholes");
    }
    if (!config.bias()) {
      text.append(", bias=false");
    }
    if (config.dropout() > 0) {
      text.append(", dropout=").append(config.dropout());
    }
    if (config.batchFirst()) {
      text.append(", batchFirst");
    }
    return text.append(")").toString();
  }

  /** The settings every recurrent builder shares. */
  abstract static class Builder<B extends Builder<B>> {
    final long inputSize;
    final long hiddenSize;
    int numLayers = 1;
    boolean bidirectional;
    boolean bias = true;
    float dropout;
    boolean batchFirst;
    long seed = 0x5EED;
    Backend backend;

    Builder(long inputSize, long hiddenSize) {
      this.inputSize = inputSize;
      this.hiddenSize = hiddenSize;
    }

    abstract B self();

    /** Stacked layers (default 1). */
    public B numLayers(int numLayers) {
      this.numLayers = numLayers;
      return self();
    }

    /** Whether to run a second, backward direction and concatenate (default false). */
    public B bidirectional(boolean bidirectional) {
      this.bidirectional = bidirectional;
      return self();
    }

    /** Whether the cells have biases (default true). */
    public B bias(boolean bias) {
      this.bias = bias;
      return self();
    }

    /** Dropout probability on the outputs of every layer but the last, in training (default 0). */
    public B dropout(float probability) {
      this.dropout = probability;
      return self();
    }

    /** Whether inputs and outputs are {@code (N, T, C)} (default false: {@code (T, N, C)}). */
    public B batchFirst(boolean batchFirst) {
      this.batchFirst = batchFirst;
      return self();
    }

    /** The seed of the initial parameters and of dropout (default fixed, so runs repeat). */
    public B seed(long seed) {
      this.seed = seed;
      return self();
    }

    /**
     * Pins this layer's backend (default: none, so {@link Seq4j#recurrentBackend()} decides at
     * each call). {@link Backend#AUTO} picks per call from the measured table.
     */
    public B backend(Backend backend) {
      if (backend == null) {
        throw new NullPointerException("backend");
      }
      this.backend = backend;
      return self();
    }
  }
}
