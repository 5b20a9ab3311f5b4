package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.seq4j.Backend;
import org.seq4j.Seq4j;
import org.seq4j.Shape;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.internal.NativeMemory;
import org.seq4j.internal.RecurrentLayerHandles;

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
 * <p>Autograd: while gradients are recorded (see {@link Autograd}; the parameters require them
 * unless frozen), {@link #forward(Arena, Tensor)} runs a training forward and records it, so that
 * {@code loss.backward()} reaches the input, the initial state and the parameters; otherwise it
 * runs the cheaper inference forward. An explicit {@link Mode#INFERENCE} forward under recording
 * marks its outputs, and a backward that reaches them throws instead of giving a zero gradient.
 * Dropout between layers applies only in training mode ({@link Module#train()}).
 *
 * <p>Explicit training: {@code forward(..., Mode.TRAINING)} returns a {@link Context};
 * {@link #backward} returns the gradients of the input and initial state and <em>adds</em> the
 * parameter gradients into each {@link Parameter#grad()}. Truncated BPTT: feed one chunk's final
 * state as the next chunk's initial state, and stop the gradient there by not passing its gradient
 * on.
 *
 * <p>Threads: inference calls may run concurrently from many threads on one layer (an inference
 * call is one under {@link Autograd#noGrad()} or on frozen parameters, or an explicit {@link
 * Mode#INFERENCE} one; under noGrad the streaming paths allocate nothing once warm). Training
 * forwards and backwards of one layer must not run concurrently with each other (they add into the
 * same gradients), nor with writes to its parameters. {@link #close()} waits for the calls in
 * flight and then frees; calls that start after it throw {@link IllegalStateException}.
 */
public abstract sealed class RecurrentLayer extends Module permits SimpleRnn, Lstm, Gru {
  /**
   * What a recurrent forward pass returns.
   *
   * @param output every time step's output of the last layer: {@code (T, N, directions * Hout)},
   *     or {@code (N, T, directions * Hout)} for a batch-first layer; zero past each sample's
   *     length
   * @param finalState the state after each sample's last step, to feed into the next call
   * @param context what {@code backward} needs, or null after an inference pass
   */
  public record Result(Tensor output, RecurrentState finalState, Context context) {}

  /**
   * Gradients of the loss with respect to a recurrent layer's inputs; parameter gradients are
   * added into each {@link Parameter#grad()} instead.
   *
   * @param input the gradient of the input, in the input's layout
   * @param initialState the gradient of the initial state (also when the forward started from
   *     zeros)
   */
  public record Gradients(Tensor input, RecurrentState initialState) {}

  /**
   * What a training forward saved for its backward: each layer's input, output, states and the
   * backend's workspace. It lives in the arena the forward was given and may be used for any
   * number of backward calls while that arena is open.
   */
  public static final class Context {
    final RecurrentLayer layer;
    final long steps;
    final long batch;
    final MemorySegment lengths;
    final Tensor[] inputs;
    final Tensor[] outputs;
    final Tensor[] initialHidden;
    final Tensor[] initialCell;
    final Tensor[] finalHidden;
    final Tensor[] finalCell;
    final MemorySegment[] workspaces;
    final long[] dropoutSeeds;
    /** Whether dropout ran between layers (training forward in training mode). */
    boolean dropped;
    /** The graph's record of this forward, claimed by an explicit backward. */
    volatile Autograd.Recording recording;
    /** The backend the forward ran on ({@code SEQ4J_BACKEND_*}); the backward runs on it too. */
    int backend;

    Context(RecurrentLayer layer, long steps, long batch, MemorySegment lengths, int layers) {
      this.layer = layer;
      this.steps = steps;
      this.batch = batch;
      this.lengths = lengths;
      this.inputs = new Tensor[layers];
      this.outputs = new Tensor[layers];
      this.initialHidden = new Tensor[layers];
      this.initialCell = new Tensor[layers];
      this.finalHidden = new Tensor[layers];
      this.finalCell = new Tensor[layers];
      this.workspaces = new MemorySegment[layers];
      this.dropoutSeeds = new long[layers];
    }

    /** Whether the arena holding the saved tensors is still open. */
    public boolean isUsable() {
      return outputs[0].isUsable();
    }
  }

  final RecurrentConfig config;
  private final String typeName;
  private final Arena arena;
  private final int directions;
  private final long outputSize;
  private final RecurrentShapes shapes;
  private final Map<String, Parameter> parameters;
  private final Parameter[] parameterArray;
  private final RecurrentLayerHandles handles;
  private final Seeds.DropoutSeeds dropoutSeeds;
  private final CallGuard guard;
  private volatile StepWeights stepWeights;

  RecurrentLayer(String typeName, RecurrentConfig config) {
    this.typeName = typeName;
    this.guard = new CallGuard(typeName, "layer");
    this.config = config;
    this.directions = config.directions();
    this.outputSize = config.outputSize();
    this.shapes = new RecurrentShapes(config, typeName);
    this.dropoutSeeds = new Seeds.DropoutSeeds(config.seed());
    this.arena = Arena.ofShared();
    boolean built = false;
    try {
      this.parameters = RecurrentParameters.create(arena, config);
      this.parameterArray = parameters.values().toArray(new Parameter[0]);
      this.handles = new RecurrentLayerHandles(arena, config.cell().code, config.numLayers(),
          directions, config.inputSize(), config.hiddenSize(), config.projSize(),
          config.peephole(), config.bias());
      RecurrentParameters.wire(handles, config, parameters);
      this.stepWeights = config.stepWeights();
      if (stepWeights != StepWeights.FLOAT32) {
        handles.setStepWeights(stepWeightsCode(stepWeights));
      }
      built = true;
    } finally {
      if (!built) {
        arena.close();
      }
    }
    for (Parameter parameter : parameterArray) {
      registerParameter(parameter);
    }
    reclaimWhenUnreachable(arena);
  }

  // ---- parameters

  /** Every parameter in PyTorch's order, peepholes last within each direction. */
  @Override
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
  @Override
  public void zeroGrad() {
    guard.enter();
    try {
      zeroGradUnguarded();
    } finally {
      guard.exit();
    }
  }

  private void zeroGradUnguarded() {
    for (Parameter parameter : parameters.values()) {
      parameter.zeroGrad();
    }
  }

  /** Marks every parameter changed: see {@link Parameter#markChanged()}. */
  public void parametersChanged() {
    guard.enter();
    try {
      parametersChangedUnguarded();
    } finally {
      guard.exit();
    }
  }

  private void parametersChangedUnguarded() {
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
    return config.hasCell();
  }

  /** How the weights packed for the streaming step and small-batch inference are stored. */
  public StepWeights stepWeights() {
    return stepWeights;
  }

  /**
   * Stores the weights packed for the streaming {@link #step step} and for small-batch inference
   * (N &le; 8) on the BLAS backend as {@code storage} from the next call on (they are re-packed
   * then); see {@link StepWeights} for what {@link StepWeights#BFLOAT16} trades. Training and
   * everything else keep reading the float32 parameters.
   *
   * @return this layer
   */
  public RecurrentLayer stepWeights(StepWeights storage) {
    Objects.requireNonNull(storage, "storage");
    guard.enter();
    try {
      handles.setStepWeights(stepWeightsCode(storage));
      stepWeights = storage;
    } finally {
      guard.exit();
    }
    return this;
  }

  private static int stepWeightsCode(StepWeights storage) {
    return switch (storage) {
      case FLOAT32 -> AbiConstants.STEP_WEIGHTS_F32;
      case BFLOAT16 -> AbiConstants.STEP_WEIGHTS_BF16;
    };
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
    guard.enter();
    try {
      return resolvedBackendUnguarded(steps, batch, mode);
    } finally {
      guard.exit();
    }
  }

  private Backend resolvedBackendUnguarded(long steps, long batch, Mode mode) {
    RecurrentConfig.requirePositive("steps", steps);
    RecurrentConfig.requirePositive("batch", batch);
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    return AbiConstants.resolvedBackend(handles.backend(
        AbiConstants.backend(requestedBackend()), steps, batch, mode == Mode.TRAINING));
  }

  // ---- forward

  /**
   * The forward from a zero state, its results in the input's arena: recorded for autograd while
   * gradients are recorded (a training forward), else an inference forward.
   */
  public Result forward(Tensor input) {
    return forward(arenaOf(input, "input"), input);
  }

  /** {@link #forward(Tensor)} from {@code initial} (null: zeros). */
  public Result forward(Tensor input, RecurrentState initial) {
    return forward(arenaOf(input, "input"), input, initial);
  }

  /**
   * The forward from a zero state: a training forward recorded for autograd while gradients are
   * recorded (the parameters or the input require them), else an inference forward.
   */
  public Result forward(Arena arena, Tensor input) {
    return forward(arena, input, null, null, automaticMode(input, null));
  }

  /**
   * {@link #forward(Arena, Tensor)} from {@code initial} (null: zeros), as when streaming a long
   * sequence in chunks.
   */
  public Result forward(Arena arena, Tensor input, RecurrentState initial) {
    return forward(arena, input, initial, null, automaticMode(input, initial));
  }

  private Mode automaticMode(Tensor input, RecurrentState initial) {
    return Autograd.isRecording(recordingInputs(input, initial)) ? Mode.TRAINING : Mode.INFERENCE;
  }

  private List<Tensor> recordingInputs(Tensor input, RecurrentState initial) {
    List<Tensor> inputs = new ArrayList<>();
    inputs.add(input);
    inputs.add(initial == null ? null : initial.hidden());
    inputs.add(initial == null ? null : initial.cell());
    for (Parameter p : parameterArray) {
      inputs.add(p.data());
    }
    return inputs;
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
  public Result forward(Arena arena, Tensor input, RecurrentState initial,
      long[] lengths, Mode mode) {
    guard.enter();
    try {
      return forwardUnguarded(arena, input, initial, lengths, mode);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor input, RecurrentState initial,
      long[] lengths, Mode mode) {
    shapes.checkInput(input);
    long steps = shapes.steps(input);
    long batch = shapes.batch(input);
    shapes.checkState(initial, "initial", batch);
    MemorySegment lengthSegment = RecurrentShapes.lengths(arena, lengths, steps, batch);
    // every element of these is written by the native forward
    Tensor output = config.batchFirst()
        ? Tensor.uninitialized(arena, batch, steps, config.outputWidth())
        : Tensor.uninitialized(arena, steps, batch, config.outputWidth());
    RecurrentState finalState = new RecurrentState(
        Tensor.uninitialized(arena, config.states(), batch, outputSize),
        hasCell() ? Tensor.uninitialized(arena, config.states(), batch, config.hiddenSize())
            : null);
    Context context = mode == Mode.TRAINING
        ? new Context(this, steps, batch, lengthSegment, config.numLayers()) : null;
    run(arena, input, initial, lengthSegment, steps, batch, output, finalState, context, null);
    List<Tensor> outputs = new ArrayList<>();
    outputs.add(output);
    outputs.add(finalState.hidden());
    if (hasCell()) {
      outputs.add(finalState.cell());
    }
    if (context != null) {
      record(input, initial, outputs, finalState, context);
    } else {
      Autograd.recordUnsupported(typeName + ".forward(Mode.INFERENCE)", "an inference forward"
          + " keeps nothing for a backward; use forward(arena, input) (it records while gradients"
          + " are recorded) or Mode.TRAINING, or run it inside Autograd.noGrad() if no gradient"
          + " is wanted", recordingInputs(input, initial), outputs);
    }
    return new Result(output, finalState, context);
  }

  /** Records this training forward's backward for autograd. */
  private void record(Tensor input, RecurrentState initial, List<Tensor> outputs,
      RecurrentState finalState, Context context) {
    Tensor output = outputs.get(0);
    List<Tensor> inputs = recordingInputs(input, initial);
    List<Tensor> saved = new ArrayList<>();
    saved.add(input);
    if (initial != null) {
      saved.add(initial.hidden());
      saved.add(initial.cell());
    }
    for (Parameter p : parameterArray) {
      saved.add(p.data());
    }
    context.recording = Autograd.recordConsumable(typeName + ".forward", inputs, outputs, saved,
        (arena, gradients) -> {
      Tensor gradOutput = gradients[0] != null ? gradients[0]
          : Tensor.zeros(arena, output.shape().dims());
      Tensor gradHidden = gradients[1];
      Tensor gradCell = hasCell() ? gradients[2] : null;
      RecurrentState gradFinal = null;
      if (gradHidden != null || gradCell != null) {
        gradFinal = new RecurrentState(
            gradHidden != null ? gradHidden
                : Tensor.zeros(arena, finalState.hidden().shape().dims()),
            !hasCell() ? null : gradCell != null ? gradCell
                : Tensor.zeros(arena, finalState.cell().shape().dims()));
      }
      Gradients grads = backwardFromGraph(arena, context, gradOutput, gradFinal);
      Tensor[] result = new Tensor[inputs.size()];
      result[0] = grads.input();
      result[1] = grads.initialState().hidden();
      result[2] = grads.initialState().cell();
      return result;
    });
  }

  private Gradients backwardFromGraph(Arena arena, Context context, Tensor gradOutput,
      RecurrentState gradFinalState) {
    guard.enter();
    try {
      return backwardUnguarded(arena, context, gradOutput, gradFinalState);
    } finally {
      guard.exit();
    }
  }

  /**
   * Inference into tensors the caller allocated once: for a service that calls one step per
   * event, this path allocates nothing on the Java heap once warm. {@code initial} (null for
   * zeros) and {@code finalState} must not share memory; nor may any two of {@code output},
   * {@code finalState.hidden} and {@code finalState.cell}, nor any of them with {@code input}.
   * {@code output} and {@code finalState} must be writable (not read-only tensors).
   *
   * @param input {@code (T, N, inputSize)}, or {@code (N, T, inputSize)} when batch-first
   * @param initial the state to start from, or null
   * @param output receives the outputs, shaped like those of {@link #forward(Arena, Tensor)}
   * @param finalState receives the final state
   */
  public void forward(Tensor input, RecurrentState initial, Tensor output,
      RecurrentState finalState) {
    guard.enter();
    try {
      forwardUnguarded(input, initial, output, finalState);
    } finally {
      guard.exit();
    }
  }

  private void forwardUnguarded(Tensor input, RecurrentState initial, Tensor output,
      RecurrentState finalState) {
    shapes.checkInput(input);
    long steps = shapes.steps(input);
    long batch = shapes.batch(input);
    shapes.checkState(initial, "initial", batch);
    shapes.checkWrittenState(finalState, "finalState", batch);
    shapes.checkOutput(output, "output", steps, batch);
    // what the call writes: output and finalState, which must not overlap each other ...
    Checks.disjointOutputs(output.segment(), "output", finalState.hidden().segment(),
        "finalState.hidden");
    if (hasCell()) {
      Checks.disjointOutputs(output.segment(), "output", finalState.cell().segment(),
          "finalState.cell");
    }
    // ... nor anything it reads: input and initial
    Checks.disjoint(output.segment(), "output", input.segment(), "input");
    shapes.checkDisjoint(output, "output", initial, "initial");
    Checks.disjoint(finalState.hidden().segment(), "finalState.hidden", input.segment(), "input");
    shapes.checkDisjoint(finalState.hidden(), "finalState.hidden", initial, "initial");
    if (hasCell()) {
      Checks.disjoint(finalState.cell().segment(), "finalState.cell", input.segment(), "input");
      shapes.checkDisjoint(finalState.cell(), "finalState.cell", initial, "initial");
    }
    run(null, input, initial, MemorySegment.NULL, steps, batch, output, finalState, null,
        RecurrentScratch.current());
    if (Autograd.isGradEnabled()) { // skips the lists on the service path under noGrad
      List<Tensor> written = new ArrayList<>(List.of(output, finalState.hidden()));
      if (hasCell()) {
        written.add(finalState.cell());
      }
      markWritten(typeName + ".forward(input, initial, output, finalState)",
          recordingInputs(input, initial), written);
    } else {
      output.markChanged();
      finalState.hidden().markChanged();
      if (hasCell()) {
        finalState.cell().markChanged();
      }
    }
  }

  /** Counts the in-place writes and marks them as results that cannot give gradients. */
  private static void markWritten(String call, List<Tensor> inputs, List<Tensor> written) {
    for (Tensor t : written) {
      if (t != null) {
        t.markChanged();
      }
    }
    Autograd.recordUnsupportedInPlace(call, "it writes into the caller's tensors and keeps"
        + " nothing for a backward; use forward(arena, input) for training, or run it inside"
        + " Autograd.noGrad()", inputs, written);
  }

  /**
   * One step of streaming inference, in place: the service that feeds one event at a time calls
   * this once per event. {@code state} is read as the state before the step and overwritten with
   * the state after it. With the BLAS backend (or AUTO) the whole stack runs in one native call
   * on weights packed once for matrix-vector work (re-packed after {@link Parameter#markChanged()}),
   * with no allocation once warm; batches above 8 take the GEMM route. {@link
   * #stepWeights(StepWeights) stepWeights(StepWeights.BFLOAT16)} halves the bytes that path
   * streams per step, at the accuracy {@link StepWeights} states. A layer pinned to {@link
   * Backend#ONEDNN} runs oneDNN's primitive for one step instead. Results equal those of {@link
   * #forward(Arena, Tensor, RecurrentState)} on the same steps within the recurrent tolerance.
   *
   * @param input {@code (N, inputSize)}: this step of every sample
   * @param state the running state, {@code (numLayers, N, Hout)} (and {@code (numLayers, N,
   *     hidden)} cells for an LSTM)
   * @param output receives the top layer's new hidden state {@code (N, Hout)}, or null
   * @throws IllegalStateException for a bidirectional layer, which cannot stream
   * @throws IllegalArgumentException if {@code state} or {@code output} is read-only, or if any
   *     two of {@code state.hidden}, {@code state.cell}, {@code output} and {@code input} share
   *     memory ({@code output} may overlap {@code input}, which is read before it is written)
   */
  public void step(Tensor input, RecurrentState state, Tensor output) {
    guard.enter();
    try {
      stepUnguarded(input, state, output);
    } finally {
      guard.exit();
    }
  }

  private void stepUnguarded(Tensor input, RecurrentState state, Tensor output) {
    shapes.checkStep(input, state, output);
    long batch = input.dim(0);
    if (requestedBackend() == Backend.ONEDNN) {
      stepOnOnednn(input, state, batch);
    } else {
      handles.step(weightsVersion(), state.hidden().segment(),
          segmentOrNull(hasCell() ? state.cell() : null), input.segment(), batch);
    }
    if (output != null) {
      long top = (long) (config.numLayers() - 1) * batch * outputSize * Float.BYTES;
      MemorySegment.copy(state.hidden().segment(), top, output.segment(), 0,
          batch * outputSize * Float.BYTES);
    }
    if (Autograd.isGradEnabled()) { // skips the lists on the streaming path under noGrad
      List<Tensor> written = new ArrayList<>();
      written.add(state.hidden());
      written.add(hasCell() ? state.cell() : null);
      written.add(output);
      markWritten(typeName + ".step", recordingInputs(input, state), written);
    } else {
      state.hidden().markChanged();
      if (hasCell()) {
        state.cell().markChanged();
      }
      if (output != null) {
        output.markChanged();
      }
    }
  }

  private void stepOnOnednn(Tensor input, RecurrentState state, long batch) {
    long states = config.states();
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

  /**
   * Runs every layer. Intermediate tensors come from {@code arena}, or from {@code scratch} on
   * the allocation-free path (where arena is null).
   */
  private void run(Arena arena, Tensor input, RecurrentState initial, MemorySegment lengths,
      long steps, long batch, Tensor output, RecurrentState finalState,
      Context context, RecurrentScratch scratch) {
    boolean training = context != null;
    long width = config.outputWidth();
    Tensor layerInput = input;
    if (config.batchFirst()) {
      layerInput = scratch != null ? scratch.tensor(0, steps, batch, config.inputSize())
          : Tensor.uninitialized(arena, steps, batch, config.inputSize());
      swapLeadingAxes(input, layerInput);
    }
    Tensor timeMajorOutput = !config.batchFirst() ? output
        : scratch != null ? scratch.tensor(1, steps, batch, width)
        : Tensor.uninitialized(arena, steps, batch, width);
    long callSeed = training ? dropoutSeeds.next() : 0;
    long version = weightsVersion();
    // A training forward fixes its backend, so the backward runs on the same one.
    int backend = AbiConstants.backend(
        training ? resolvedBackend(steps, batch, Mode.TRAINING) : requestedBackend());
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
        long bytes = handles.workspaceSize(layer, backend, lengths, steps, batch);
        workspace = NativeMemory.allocate(arena, Math.max(bytes, 1));
        context.inputs[layer] = layerInput;
        context.outputs[layer] = layerOutput;
        context.initialHidden[layer] = h0;
        context.initialCell[layer] = c0;
        context.finalHidden[layer] = hN;
        context.finalCell[layer] = cN;
        context.workspaces[layer] = workspace;
      }
      handles.forward(layer, backend, training ? -1L : version, layerOutput.segment(),
          hN.segment(), segmentOrNull(cN), workspace, layerInput.segment(), segmentOrNull(h0),
          segmentOrNull(c0), lengths, steps, batch);
      if (!last) {
        if (training && config.dropout() > 0f && isTraining()) {
          context.dropped = true;
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

  // ---- backward

  /**
   * Backpropagation through time of one training forward. May be called more than once; each call
   * adds the parameter gradients again. A forward that autograd recorded gives either this
   * explicit backward or the graph's, not both: the second of the two throws {@link
   * IllegalStateException}, so no gradient is added twice.
   *
   * @param arena where the returned gradients live
   * @param context the context of a {@link Mode#TRAINING} forward of this layer
   * @param gradOutput the gradient of the loss with respect to the output (same shape)
   * @param gradFinalState the gradient with respect to the final state, or null for zero
   */
  public Gradients backward(Arena arena, Context context, Tensor gradOutput,
      RecurrentState gradFinalState) {
    guard.enter();
    try {
      Autograd.Recording recording = context == null ? null : context.recording;
      if (recording != null && context.layer == this) {
        recording.consumeExplicitly(typeName + ".backward");
      }
      return backwardUnguarded(arena, context, gradOutput, gradFinalState);
    } finally {
      guard.exit();
    }
  }

  private Gradients backwardUnguarded(Arena arena, Context context, Tensor gradOutput,
      RecurrentState gradFinalState) {
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
    long width = config.outputWidth();
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
    shapes.checkState(gradFinalState, "gradFinalState", batch);
    Tensor gradLayerOutput = gradOutput;
    if (config.batchFirst()) {
      gradLayerOutput = Tensor.uninitialized(arena, steps, batch, width);
      swapLeadingAxes(gradOutput, gradLayerOutput);
    }
    RecurrentState gradInitial = new RecurrentState(
        Tensor.uninitialized(arena, config.states(), batch, outputSize),
        hasCell() ? Tensor.uninitialized(arena, config.states(), batch, config.hiddenSize())
            : null);
    Tensor gradInput = null;
    for (int layer = config.numLayers() - 1; layer >= 0; layer--) {
      long first = (long) layer * directions;
      Tensor gradLayerInput = Tensor.uninitialized(arena, steps, batch,
          config.layerInputSize(layer));
      Tensor gradHN = gradFinalState == null ? null
          : gradFinalState.hidden().slice(first, first + directions);
      Tensor gradCN = gradFinalState == null || !hasCell() ? null
          : gradFinalState.cell().slice(first, first + directions);
      Tensor gradH0 = gradInitial.hidden().slice(first, first + directions);
      Tensor gradC0 = hasCell() ? gradInitial.cell().slice(first, first + directions) : null;
      MemorySegment workspace = context.workspaces[layer];
      handles.backward(layer, context.backend, gradLayerInput.segment(), gradH0.segment(),
          segmentOrNull(gradC0), gradLayerOutput.segment(), segmentOrNull(gradHN),
          segmentOrNull(gradCN), workspace, context.inputs[layer].segment(),
          segmentOrNull(context.initialHidden[layer]),
          segmentOrNull(context.initialCell[layer]), context.outputs[layer].segment(),
          context.finalHidden[layer].segment(), segmentOrNull(context.finalCell[layer]),
          context.lengths, steps, batch);
      if (layer > 0 && config.dropout() > 0f && context.dropped) {
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
    return new Gradients(gradInput, gradInitial);
  }

  // ---- helpers

  private static MemorySegment segmentOrNull(Tensor tensor) {
    return tensor == null ? MemorySegment.NULL : tensor.segment();
  }

  private static void swapLeadingAxes(Tensor in, Tensor out) {
    NativeBindings.swapLeadingAxes(out.segment(), in.segment(), in.dim(0), in.dim(1), in.dim(2));
  }

  private void dropout(Tensor in, Tensor out, long seed) {
    NativeBindings.dropout(out.segment(), in.segment(), in.size(), config.dropout(), seed);
  }

  /**
   * Frees the parameters and native resources, after waiting for the calls in flight on other
   * threads (a close that waits holds back calls that start later, so it cannot be starved);
   * calls that start after it throw {@link IllegalStateException}. Closing again does nothing.
   */
  @Override
  protected void closeResources() {
    guard.close(arena::close);
  }

  @Override
  public String toString() {
    return config.describe(typeName);
  }
}
