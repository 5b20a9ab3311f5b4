package org.seq4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * Records the backward passes of the layers called while it is active, so that one {@link
 * #backward} call runs them all in reverse: a model of several layers trains without
 * hand-chaining {@code backward} calls. Each layer's own forward and backward stay available.
 *
 * <pre>{@code
 * try (Arena arena = Arena.ofConfined(); Tape tape = Tape.start(arena)) {
 *   Lstm.Result r = lstm.forward(arena, x, null, null, Mode.TRAINING);            // recorded
 *   Tensor last = r.output().slice(T - 1, T).reshape(N, H);                   // a view: no record
 *   Tensor y = head.forward(arena, last);                                      // recorded
 *   float loss = Losses.meanSquaredError(y, target, gradY);
 *   tape.backward(y, gradY);   // head's backward, then the LSTM's, with gradients routed between
 * }
 * }</pre>
 *
 * <p>Gradients are routed by memory: a recorded output owns a gradient buffer, and any tensor that
 * lies inside it (a slice or reshape is a view of the same memory) reads and adds its gradient
 * there. Only training-mode forwards are recorded. A tape belongs to the thread that started it
 * and records that thread's calls only; tapes do not nest.
 */
public final class Tape implements AutoCloseable {
  private static final ThreadLocal<Tape> ACTIVE = new ThreadLocal<>();

  /** The gradient of the recorded outputs, given the gradients of the inputs to fill. */
  @FunctionalInterface
  public interface Backward {
    /**
     * Runs one recorded backward.
     *
     * @param gradOutputs the gradients of the outputs, in recording order (null where nothing
     *     flowed back to that output)
     * @return the gradients of the inputs, in recording order (null where not wanted)
     */
    List<Tensor> run(List<Tensor> gradOutputs);
  }

  private record Entry(List<Tensor> inputs, List<Tensor> outputs, Backward backward) {}

  /** A recorded output's memory and its gradient buffer. */
  private record Buffer(MemorySegment memory, Tensor gradient) {}

  private final Arena arena;
  private final Thread owner = Thread.currentThread();
  private final List<Entry> entries = new ArrayList<>();
  private final List<Buffer> buffers = new ArrayList<>();
  private boolean open = true;
  private boolean replaying;

  private Tape(Arena arena) {
    this.arena = arena;
  }

  /**
   * Starts recording on this thread; gradients live in {@code arena}.
   *
   * @throws IllegalStateException if this thread is already recording
   */
  public static Tape start(Arena arena) {
    if (ACTIVE.get() != null) {
      throw new IllegalStateException("Tape: this thread is already recording; tapes do not nest");
    }
    Tape tape = new Tape(arena);
    ACTIVE.set(tape);
    return tape;
  }

  /** The tape recording on this thread, or null. */
  public static Tape active() {
    return ACTIVE.get();
  }

  /**
   * Records one operation (layers call this from their training forward).
   *
   * @param inputs the tensors whose gradients {@code backward} returns, in order
   * @param outputs the tensors whose gradients {@code backward} receives, in order
   */
  public void record(List<Tensor> inputs, List<Tensor> outputs, Backward backward) {
    if (!open) {
      throw new IllegalStateException("Tape: it is closed");
    }
    if (replaying) {
      return; // backward passes run by backward() are not recorded again
    }
    entries.add(new Entry(java.util.Collections.unmodifiableList(new ArrayList<>(inputs)),
        List.copyOf(outputs), backward));
    for (Tensor output : outputs) {
      buffers.add(new Buffer(output.segment(), Tensor.zeros(arena, output.size())));
    }
  }

  /** The part of a recorded output's gradient buffer that belongs to {@code tensor}, or null. */
  private Tensor gradientOf(Tensor tensor) {
    MemorySegment memory = tensor.segment();
    for (int i = buffers.size() - 1; i >= 0; i--) {
      Buffer buffer = buffers.get(i);
      long offset = memory.address() - buffer.memory().address();
      if (buffer.memory().scope().equals(memory.scope()) && offset >= 0
          && offset + memory.byteSize() <= buffer.memory().byteSize()) {
        return Tensor.ofSegment(
            buffer.gradient().segment().asSlice(offset, memory.byteSize()),
            tensor.shape().dims());
      }
    }
    return null;
  }

  /**
   * Runs every recorded backward in reverse order, starting from {@code gradient}, the gradient
   * of the loss with respect to {@code output} (a recorded output or a view of one). Parameter
   * gradients are added into each parameter's {@code grad}, as the layers' own backward does.
   * Gradients reaching tensors that no recorded operation produced (the data) are dropped.
   */
  public void backward(Tensor output, Tensor gradient) {
    if (Thread.currentThread() != owner) {
      throw new WrongThreadException("Tape: it belongs to thread '" + owner.getName() + "'");
    }
    if (output == null) {
      throw new NullPointerException("output");
    }
    if (gradient == null) {
      throw new NullPointerException("gradient");
    }
    org.seq4j.internal.Checks.usable(output.segment(), "output");
    org.seq4j.internal.Checks.usable(gradient.segment(), "gradient");
    if (!gradient.shape().equals(output.shape())) {
      throw new IllegalArgumentException("gradient: expected shape " + output.shape()
          + " (the shape of output), got " + gradient.shape());
    }
    Tensor start = gradientOf(output);
    if (start == null) {
      throw new IllegalArgumentException(
          "output: it is not (a view of) an output recorded on this tape");
    }
    TensorOps.add(start, gradient, start);
    replaying = true;
    try {
      replay();
    } finally {
      replaying = false;
    }
  }

  private void replay() {
    for (int e = entries.size() - 1; e >= 0; e--) {
      Entry entry = entries.get(e);
      List<Tensor> gradOutputs = new ArrayList<>();
      for (Tensor out : entry.outputs()) {
        gradOutputs.add(gradientOf(out));
      }
      List<Tensor> gradInputs = entry.backward().run(gradOutputs);
      for (int i = 0; i < entry.inputs().size(); i++) {
        Tensor input = entry.inputs().get(i);
        Tensor gradInput = i < gradInputs.size() ? gradInputs.get(i) : null;
        if (input == null || gradInput == null) {
          continue;
        }
        Tensor target = gradientOf(input);
        if (target != null) {
          TensorOps.add(target, gradInput, target);
        }
      }
    }
  }

  /** The gradient accumulated for {@code tensor} (a recorded output or a view of one), or null. */
  public Tensor gradient(Tensor tensor) {
    return gradientOf(tensor);
  }

  /** Stops recording. */
  @Override
  public void close() {
    if (open) {
      open = false;
      if (ACTIVE.get() == this) {
        ACTIVE.remove();
      }
    }
  }
}
