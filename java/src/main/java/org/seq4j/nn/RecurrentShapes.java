package org.seq4j.nn;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;

/**
 * The argument checks of a recurrent network's calls, run before any native call: each failure is
 * an exception naming the argument, the expected shape and the actual one.
 */
final class RecurrentShapes {
  private final RecurrentConfig config;
  private final String typeName;

  RecurrentShapes(RecurrentConfig config, String typeName) {
    this.config = config;
    this.typeName = typeName;
  }

  long steps(Tensor input) {
    return config.batchFirst() ? input.dim(1) : input.dim(0);
  }

  long batch(Tensor input) {
    return config.batchFirst() ? input.dim(0) : input.dim(1);
  }

  /** A sequence input {@code (T, N, I)}, or {@code (N, T, I)} when batch-first. */
  void checkInput(Tensor input) {
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

  /** A sequence output the call writes, shaped like the forward's output. */
  void checkOutput(Tensor output, String name, long steps, long batch) {
    if (output == null) {
      throw new NullPointerException(name);
    }
    long width = config.outputWidth();
    long first = config.batchFirst() ? batch : steps;
    long second = config.batchFirst() ? steps : batch;
    if (output.shape().rank() != 3 || output.dim(0) != first || output.dim(1) != second
        || output.dim(2) != width) {
      throw new IllegalArgumentException(name + ": expected shape "
          + Shape.of(first, second, width) + ", got " + output.shape());
    }
    Checks.writable(output.segment(), name);
  }

  /**
   * A state the call writes (the final state of the allocation-free forward, the streaming step's
   * state): {@link #checkState}, writable, and its hidden and cell tensors share no memory (else
   * writing one overwrites the other, and the two backends, which write them in different orders,
   * disagree).
   */
  void checkWrittenState(RecurrentState state, String name, long batch) {
    if (state == null) {
      throw new NullPointerException(name);
    }
    checkState(state, name, batch);
    Checks.writable(state.hidden().segment(), name, ".hidden");
    if (config.hasCell()) {
      Checks.writable(state.cell().segment(), name, ".cell");
      // names built only on failure: this runs on the allocation-free paths
      if (Checks.overlaps(state.hidden().segment(), state.cell().segment())) {
        Checks.disjointOutputs(state.hidden().segment(), name + ".hidden",
            state.cell().segment(), name + ".cell");
      }
    }
  }

  /**
   * Throws unless {@code written} shares no memory with {@code read}'s hidden and cell tensors:
   * the recurrent kernels read their inputs while they write their outputs, so no output may
   * overlap an input.
   */
  void checkDisjoint(Tensor written, String writtenName, RecurrentState read, String readName) {
    if (read == null) {
      return;
    }
    // names built only on failure: this runs on the allocation-free path
    if (Checks.overlaps(written.segment(), read.hidden().segment())) {
      Checks.disjoint(written.segment(), writtenName, read.hidden().segment(),
          readName + ".hidden");
    }
    if (config.hasCell() && Checks.overlaps(written.segment(), read.cell().segment())) {
      Checks.disjoint(written.segment(), writtenName, read.cell().segment(), readName + ".cell");
    }
  }

  /** A state {@code (numLayers * D, N, Hout)}, cells {@code (numLayers * D, N, H)}; or null. */
  void checkState(RecurrentState state, String name, long batch) {
    if (state == null) {
      return;
    }
    long states = config.states();
    long outputSize = config.outputSize();
    if (!hasShape(state.hidden(), states, batch, outputSize)) {
      throw new IllegalArgumentException(
          name + ".hidden: expected shape " + Shape.of(states, batch, outputSize)
              + " (layers * directions, N, "
              + (config.projSize() > 0 ? "projSize" : "hiddenSize") + "), got "
              + (state.hidden() == null ? "null" : state.hidden().shape()));
    }
    Checks.usable(state.hidden().segment(), name, ".hidden");
    if (config.hasCell()) {
      if (!hasShape(state.cell(), states, batch, config.hiddenSize())) {
        throw new IllegalArgumentException(name + ".cell: expected shape "
            + Shape.of(states, batch, config.hiddenSize())
            + " (layers * directions, N, hiddenSize), got "
            + (state.cell() == null ? "null" : state.cell().shape()));
      }
      Checks.usable(state.cell().segment(), name, ".cell");
    } else if (state.cell() != null) {
      throw new IllegalArgumentException(
          name + ".cell: expected null, " + typeName + " has no cell state");
    }
  }

  /** The streaming step's input {@code (N, I)}, state, and output {@code (N, Hout)} or null. */
  void checkStep(Tensor input, RecurrentState state, Tensor output) {
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
    checkWrittenState(state, "state", batch);
    // the state is overwritten layer by layer while the input is read
    Checks.disjoint(state.hidden().segment(), "state.hidden", input.segment(), "input");
    if (config.hasCell()) {
      Checks.disjoint(state.cell().segment(), "state.cell", input.segment(), "input");
    }
    if (output != null) {
      long outputSize = config.outputSize();
      if (output.shape().rank() != 2 || output.dim(0) != batch || output.dim(1) != outputSize) {
        throw new IllegalArgumentException("output: expected shape (" + batch + ", " + outputSize
            + "), got " + output.shape());
      }
      Checks.writable(output.segment(), "output");
      Checks.disjointOutputs(output.segment(), "output", state.hidden().segment(),
          "state.hidden");
      if (config.hasCell()) {
        Checks.disjointOutputs(output.segment(), "output", state.cell().segment(), "state.cell");
      }
    }
  }

  private static boolean hasShape(Tensor tensor, long d0, long d1, long d2) {
    return tensor != null && tensor.shape().rank() == 3 && tensor.dim(0) == d0
        && tensor.dim(1) == d1 && tensor.dim(2) == d2;
  }

  /** The lengths as native {@code int64_t}s in {@code arena}, or NULL when all are T. */
  static MemorySegment lengths(Arena arena, long[] lengths, long steps, long batch) {
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
    if (arena == null) {
      throw new NullPointerException("arena");
    }
    try {
      return arena.allocateFrom(JAVA_LONG, lengths);
    } catch (WrongThreadException wrongThread) {
      throw new WrongThreadException("arena: it is confined to another thread than '"
          + Thread.currentThread().getName() + "'");
    } catch (IllegalStateException closed) {
      throw new IllegalStateException("arena: it is closed", closed);
    }
  }
}
