package org.seq4j;

import java.lang.foreign.Arena;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Reverse-mode automatic differentiation, as PyTorch's autograd: while gradients are wanted, every
 * operation on a tensor that {@linkplain Tensor#requiresGrad() requires a gradient} records how to
 * run its backward, and {@link Tensor#backward()} on the result (a loss) runs the recorded graph
 * in reverse, adding each leaf's gradient into its {@link Tensor#grad()} (for a layer's {@code
 * Parameter}, its {@code grad()}).
 *
 * <pre>{@code
 * try (Arena arena = Arena.ofConfined()) {
 *   Tensor logits = head.forward(lstm.forward(arena, x).output());  // both recorded
 *   Tensor loss = Losses.crossEntropy(logits, targets);            // a scalar, recorded
 *   loss.backward();                      // gradients land in every parameter's grad()
 *   optimizer.step();
 * }
 * try (var scope = Autograd.noGrad()) {   // inference: nothing is recorded
 *   Tensor prediction = model.forward(x);
 * }
 * }</pre>
 *
 * <h2>Rules</h2>
 * <ul>
 *   <li><b>When an operation records.</b> Gradient mode is on by default, per thread; {@link
 *       #noGrad()} turns it off for a scope. An operation records when gradient mode is on and
 *       one of its inputs (or, for a layer, one of its parameters) requires a gradient. Its
 *       outputs then require a gradient too.
 *   <li><b>Never a silent zero gradient.</b> A forward that cannot compute gradients (a recurrent
 *       layer's forward in {@code Mode.INFERENCE}, say) still marks its outputs; a backward that
 *       reaches them throws {@link IllegalStateException} naming the call and how to fix it.
 *   <li><b>In-place changes are detected.</b> Every tensor counts the changes made to its memory
 *       through seq4j ({@link Tensor#set}, {@link Tensor#fill}, an op's output, an optimizer's
 *       step; views share the count; after writing through {@link Tensor#segment()} yourself,
 *       call {@link Tensor#markChanged()}). A recorded operation remembers the counts of the
 *       tensors it saved; a backward that finds one changed throws, naming the operation.
 *   <li><b>One backward per graph.</b> A backward frees what the graph saved; running a second
 *       backward through the same operations throws (build the forward again). A layer's explicit
 *       {@code backward} on a forward that the graph also recorded counts as that one backward:
 *       whichever runs second throws, so the two cannot add a gradient twice.
 *   <li><b>Threads and memory.</b> A graph belongs to no thread, but one backward runs on the
 *       calling thread. The intermediate gradients live in a confined arena that the backward
 *       closes when it returns; a leaf's gradient lives in the arena of the leaf (a parameter's in
 *       its layer).
 * </ul>
 *
 * <p>Custom operations record themselves with {@link #record}: compute the result with gradient
 * mode off, then register the backward.
 */
public final class Autograd {
  private Autograd() {}

  private static final ThreadLocal<boolean[]> ENABLED = ThreadLocal.withInitial(() -> new boolean[] {true});

  // ---- gradient mode

  /** A scope that restores the previous gradient mode when closed. */
  public interface Scope extends AutoCloseable {
    /** Restores the gradient mode in force before this scope; closing again does nothing. */
    @Override
    void close();
  }

  /** Whether operations on this thread record their backward now. */
  public static boolean isGradEnabled() {
    return ENABLED.get()[0];
  }

  /** Turns gradient recording off on this thread until the scope closes (scopes nest). */
  public static Scope noGrad() {
    return setGradEnabled(false);
  }

  /** Turns gradient recording on on this thread until the scope closes (inside a noGrad scope). */
  public static Scope enableGrad() {
    return setGradEnabled(true);
  }

  private static Scope setGradEnabled(boolean on) {
    boolean[] flag = ENABLED.get();
    boolean previous = flag[0];
    Thread owner = Thread.currentThread();
    flag[0] = on;
    return new Scope() {
      private boolean closed;

      @Override
      public void close() {
        if (!closed) {
          if (Thread.currentThread() != owner) {
            throw new WrongThreadException(
                "scope: it was opened on thread '" + owner.getName() + "'");
          }
          closed = true;
          flag[0] = previous;
        }
      }
    };
  }

  // ---- recording

  /**
   * How a recorded operation computes the gradients of its inputs from those of its outputs.
   */
  @FunctionalInterface
  public interface Backward {
    /**
     * Runs the backward of one recorded operation.
     *
     * @param arena where to allocate the returned gradients (confined to the calling thread, open
     *     for the rest of this backward only)
     * @param gradOutputs the gradient of each output, in recording order; null where no gradient
     *     flowed back to that output
     * @return the gradient of each input, in recording order, each with its input's shape; null
     *     where an input gets none (or needs none)
     */
    Tensor[] apply(Arena arena, Tensor[] gradOutputs);
  }

  /**
   * Whether an operation over {@code inputs} must record now: gradient mode is on and one of
   * them (nulls are skipped) requires a gradient.
   */
  public static boolean isRecording(Tensor... inputs) {
    if (!isGradEnabled()) {
      return false;
    }
    for (Tensor t : inputs) {
      if (t != null && t.requiresGrad()) {
        return true;
      }
    }
    return false;
  }

  /** {@link #isRecording(Tensor...)} over a list. */
  public static boolean isRecording(List<Tensor> inputs) {
    return isRecording(inputs.toArray(new Tensor[0]));
  }

  /**
   * Records one operation when {@link #isRecording} holds for {@code inputs}; does nothing
   * otherwise. The outputs then require a gradient and have this operation as their origin.
   *
   * @param operation what the user called, named in errors (such as {@code "Lstm.forward"})
   * @param inputs the tensors whose gradients {@code backward} returns, in order (nulls allowed)
   * @param outputs the tensors whose gradients {@code backward} receives, in order; new tensors
   *     this operation produced
   * @param saved the tensors the backward will read, checked for in-place changes
   * @param backward the backward
   * @return whether it recorded
   */
  public static boolean record(String operation, List<Tensor> inputs, List<Tensor> outputs,
      List<Tensor> saved, Backward backward) {
    Objects.requireNonNull(operation, "operation");
    Objects.requireNonNull(backward, "backward");
    if (!isRecording(inputs)) {
      return false;
    }
    Node node = new Node(operation, inputs, outputs.size(), saved, backward, null);
    attach(node, outputs);
    return true;
  }

  /**
   * Marks the outputs of a forward that cannot compute gradients, when {@link #isRecording}
   * holds for {@code inputs}: a backward that reaches them throws {@link IllegalStateException}
   * with {@code operation} and {@code remedy} in its message, instead of a silent zero gradient.
   *
   * @return whether it marked them
   */
  public static boolean recordUnsupported(String operation, String remedy, List<Tensor> inputs,
      List<Tensor> outputs) {
    if (!isRecording(inputs)) {
      return false;
    }
    attach(new Node(operation, inputs, outputs.size(), List.of(), null, remedy), outputs);
    return true;
  }

  /**
   * As {@link #recordUnsupported}, for a call that writes its results into tensors the caller
   * passed (a streaming step, a forward into preallocated tensors): each written tensor that is
   * not a leaf requiring a gradient is marked, replacing an earlier such mark, so that a backward
   * reaching it throws instead of giving a zero gradient.
   *
   * @return whether it marked them
   */
  public static boolean recordUnsupportedInPlace(String operation, String remedy,
      List<Tensor> inputs, List<Tensor> written) {
    if (!isRecording(inputs)) {
      return false;
    }
    Node node = new Node(operation, inputs, written.size(), List.of(), null, remedy);
    for (int i = 0; i < written.size(); i++) {
      Tensor out = written.get(i);
      if (out == null || out.autograd.leaf) {
        continue;
      }
      Node previous = out.autograd.origin;
      if (previous == null || previous.unsupportedRemedy != null) {
        out.autograd.origin = node;
        out.autograd.outputIndex = i;
      }
    }
    return true;
  }

  /**
   * A handle on a recorded operation for layers whose explicit {@code backward} takes a context:
   * returned by {@link #recordConsumable}; {@link #consumeExplicitly} at the start of the
   * explicit backward makes that backward and the graph's mutually exclusive.
   */
  public static final class Recording {
    private final Node node;

    private Recording(Node node) {
      this.node = node;
    }

    /**
     * Claims this operation's backward for explicit calls (which may repeat): the graph's
     * backward can no longer run through it.
     *
     * @throws IllegalStateException if the graph's backward already ran through it
     */
    public void consumeExplicitly(String call) {
      synchronized (node) {
        String claim = "an explicit " + call;
        if (node.consumedBy != null && !node.consumedBy.equals(claim)) {
          throw new IllegalStateException(call + ": the forward's backward already ran ("
              + node.consumedBy + "); a recorded forward gives the graph's backward or explicit"
              + " ones, not both, so gradients are not added twice");
        }
        node.consumedBy = claim;
        node.saved = new Tensor[0];
        node.backward = null;
      }
    }
  }

  /**
   * As {@link #record}, for a layer whose explicit backward may also run on the same forward:
   * returns the handle the explicit backward claims, or null when nothing was recorded. The
   * handle stays reachable as long as the outputs are, so a layer may keep it in a weak map.
   */
  public static Recording recordConsumable(String operation, List<Tensor> inputs,
      List<Tensor> outputs, List<Tensor> saved, Backward backward) {
    Objects.requireNonNull(operation, "operation");
    Objects.requireNonNull(backward, "backward");
    if (!isRecording(inputs)) {
      return null;
    }
    Node node = new Node(operation, inputs, outputs.size(), saved, backward, null);
    attach(node, outputs);
    Recording recording = new Recording(node);
    node.recording = recording; // lives as long as the outputs: callers may hold it weakly
    return recording;
  }

  private static void attach(Node node, List<Tensor> outputs) {
    for (int i = 0; i < outputs.size(); i++) {
      Tensor out = outputs.get(i);
      if (out == null) {
        continue;
      }
      TensorState state = out.autograd;
      if (state.origin != null || state.leaf) {
        throw new IllegalArgumentException(node.operation + ": output " + i
            + " is already part of the graph (an output must be a new tensor)");
      }
      state.origin = node;
      state.outputIndex = i;
    }
  }

  // ---- state kept per tensor

  /** Counts in-place changes; shared by a tensor and its views. */
  static final class Storage {
    volatile long version;

    void bump() {
      version++;
    }
  }

  /** A tensor's autograd state. */
  static final class TensorState {
    /** The recorded operation that produced it, or null for a leaf or untracked tensor. */
    Node origin;
    int outputIndex;
    /** Whether it is a leaf that requires a gradient. */
    boolean leaf;
    /** A leaf's gradient (a parameter's is given; a user leaf's is allocated on first use). */
    Tensor gradient;
  }

  /** One recorded operation. */
  static final class Node {
    final String operation;
    final Tensor[] inputs;
    final int outputCount;
    Tensor[] saved;
    long[] savedVersions;
    Backward backward;
    final String unsupportedRemedy;
    String consumedBy;
    Recording recording;

    Node(String operation, List<Tensor> inputs, int outputCount, List<Tensor> saved,
        Backward backward, String unsupportedRemedy) {
      this.operation = operation;
      this.inputs = inputs.toArray(new Tensor[0]);
      for (int i = 0; i < this.inputs.length; i++) {
        if (this.inputs[i] != null && !this.inputs[i].requiresGrad()) {
          this.inputs[i] = null; // no gradient to route there
        }
      }
      this.outputCount = outputCount;
      this.saved = saved.toArray(new Tensor[0]);
      this.savedVersions = new long[this.saved.length];
      for (int i = 0; i < this.saved.length; i++) {
        savedVersions[i] = this.saved[i] == null ? 0 : this.saved[i].storage().version;
      }
      this.backward = backward;
      this.unsupportedRemedy = unsupportedRemedy;
    }
  }

  // ---- backward

  static void backward(Tensor root, Tensor gradient) {
    if (!root.requiresGrad()) {
      throw new IllegalStateException("tensor: it does not require a gradient (no recorded"
          + " operation produced it from a tensor that does; was it computed under noGrad, or"
          + " from parameters with requiresGrad(false)?)");
    }
    if (gradient == null) {
      if (root.size() != 1) {
        throw new IllegalArgumentException("gradient: expected a gradient of shape "
            + root.shape() + " for a non-scalar tensor (only a single-element tensor has the"
            + " implicit gradient 1), got none");
      }
    } else if (!gradient.shape().equals(root.shape())) {
      throw new IllegalArgumentException("gradient: expected shape " + root.shape()
          + " (the tensor's), got " + gradient.shape());
    }
    try (Arena arena = Arena.ofConfined(); Scope off = noGrad()) {
      Tensor start = gradient != null ? gradient : Tensor.ones(arena, root.shape().dims());
      if (root.autograd.leaf) {
        accumulateLeaf(root, start);
        return;
      }
      run(arena, root.autograd.origin, root.autograd.outputIndex, start);
    }
  }

  /** Runs the graph below {@code rootNode} in reverse topological order. */
  private static void run(Arena arena, Node rootNode, int rootIndex, Tensor start) {
    List<Node> order = topologicalOrder(rootNode);
    Map<Node, Tensor[]> pending = new IdentityHashMap<>();
    Map<Node, boolean[]> owned = new IdentityHashMap<>();
    pending.computeIfAbsent(rootNode, n -> new Tensor[n.outputCount])[rootIndex] = start;
    owned.computeIfAbsent(rootNode, n -> new boolean[n.outputCount]);
    for (Node node : order) {
      Tensor[] gradOutputs = pending.remove(node);
      owned.remove(node);
      if (gradOutputs == null) {
        continue;
      }
      Tensor[] gradInputs = apply(arena, node, gradOutputs);
      for (int i = 0; i < node.inputs.length; i++) {
        Tensor input = node.inputs[i];
        Tensor gradInput = gradInputs == null || i >= gradInputs.length ? null : gradInputs[i];
        if (input == null || gradInput == null) {
          continue;
        }
        if (!gradInput.shape().equals(input.shape())) {
          if (gradInput.size() != input.size()) {
            throw new IllegalStateException(node.operation + ": its backward returned a"
                + " gradient of shape " + gradInput.shape() + " for input " + i + " of shape "
                + input.shape());
          }
          gradInput = gradInput.view(input.shape().dims());
        }
        TensorState state = input.autograd;
        if (state.leaf) {
          accumulateLeaf(input, gradInput);
        } else if (state.origin != null) {
          Tensor[] slots = pending.computeIfAbsent(state.origin, n -> new Tensor[n.outputCount]);
          boolean[] mine = owned.computeIfAbsent(state.origin, n -> new boolean[n.outputCount]);
          int k = state.outputIndex;
          if (slots[k] == null) {
            slots[k] = gradInput;
          } else if (mine[k]) {
            TensorOps.add(slots[k], gradInput, slots[k]);
          } else {
            Tensor sum = Tensor.uninitialized(arena, input.shape().dims());
            TensorOps.add(slots[k], gradInput, sum);
            slots[k] = sum;
            mine[k] = true;
          }
        }
      }
    }
  }

  private static Tensor[] apply(Arena arena, Node node, Tensor[] gradOutputs) {
    Backward backward;
    synchronized (node) {
      if (node.unsupportedRemedy != null) {
        throw new IllegalStateException(node.operation + " cannot compute gradients, but a"
            + " gradient reached its output: " + node.unsupportedRemedy);
      }
      if (node.consumedBy != null) {
        throw new IllegalStateException(node.operation + ": trying to run its backward a second"
            + " time (it already ran: " + node.consumedBy + "); the tensors it saved are freed"
            + " after one backward — run the forward again");
      }
      for (int i = 0; i < node.saved.length; i++) {
        Tensor t = node.saved[i];
        if (t != null && t.storage().version != node.savedVersions[i]) {
          throw new IllegalStateException(node.operation + ": a tensor it saved for backward"
              + " (saved tensor " + i + ", shape " + t.shape() + ") was modified in place after"
              + " the forward (change count " + node.savedVersions[i] + ", now "
              + t.storage().version + "); compute into a new tensor instead");
        }
      }
      node.consumedBy = "a backward of the graph";
      backward = node.backward;
      node.backward = null;
      node.saved = new Tensor[0];
    }
    return backward.apply(arena, gradOutputs);
  }

  /** The nodes reachable from {@code root}, every node before the nodes it feeds from. */
  private static List<Node> topologicalOrder(Node root) {
    List<Node> postOrder = new ArrayList<>();
    Map<Node, Boolean> seen = new IdentityHashMap<>();
    ArrayDeque<Object[]> stack = new ArrayDeque<>(); // {node, next input index}
    stack.push(new Object[] {root, 0});
    seen.put(root, Boolean.TRUE);
    while (!stack.isEmpty()) {
      Object[] frame = stack.peek();
      Node node = (Node) frame[0];
      int next = (Integer) frame[1];
      if (next < node.inputs.length) {
        frame[1] = next + 1;
        Tensor input = node.inputs[next];
        Node child = input == null ? null : input.autograd.origin;
        if (child != null && seen.put(child, Boolean.TRUE) == null) {
          stack.push(new Object[] {child, 0});
        }
      } else {
        stack.pop();
        postOrder.add(node);
      }
    }
    java.util.Collections.reverse(postOrder);
    return postOrder;
  }

  private static void accumulateLeaf(Tensor leaf, Tensor gradient) {
    TensorState state = leaf.autograd;
    synchronized (state) {
      if (state.gradient == null) {
        Arena home = leaf.arena();
        if (home == null) {
          throw new IllegalStateException("tensor: a leaf over foreign memory has nowhere to keep"
              + " its gradient");
        }
        state.gradient = Tensor.zeros(home, leaf.shape().dims());
      }
      org.seq4j.internal.Checks.usable(state.gradient.segment(), "grad");
      TensorOps.add(state.gradient, gradient, state.gradient);
    }
  }
}
