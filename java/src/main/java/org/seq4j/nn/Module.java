package org.seq4j.nn;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.ref.Cleaner;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.seq4j.Tensor;
import org.seq4j.io.SafeTensors;

/**
 * A part of a model, as PyTorch's {@code nn.Module}: it owns parameters and submodules under
 * names, and gives them back under PyTorch's dotted names ({@code encoder.layers.0.linear1.weight})
 * so that {@link #stateDict()} has the keys {@code model.state_dict()} has for the same
 * architecture.
 *
 * <p>Every seq4j layer is a module. A model of your own extends this class and {@link #register}s
 * its parts in its constructor:
 *
 * <pre>{@code
 * final class Forecaster extends Module implements Layer {
 *   private final Lstm lstm = register("lstm", Lstm.builder(9, 64).build());
 *   private final Linear head = register("head", new Linear(64, 1));
 *
 *   public Tensor forward(Tensor x) {                       // x (T, N, 9)
 *     Tensor out = lstm.forward(x).output();                // (T, N, 64)
 *     return head.forward(out.slice(x.dim(0) - 1, x.dim(0)));  // the last step: (1, N, 1)
 *   }
 * }
 * }</pre>
 *
 * <p><b>Lifetime.</b> {@link #close()} closes the whole tree (the parts registered last first) and
 * frees their native memory; a closed module's calls throw {@link IllegalStateException}. A module
 * that becomes unreachable without being closed is reclaimed by a {@link Cleaner} as a safety net,
 * and the first such leak is reported once through {@link System.Logger} ({@code org.seq4j}). A
 * module stays reachable while any of its parameters is.
 *
 * <p><b>Modes.</b> A module is in training mode when made; {@link #eval()} and {@link #train()}
 * switch the whole tree. The mode changes what dropout does, not whether gradients are recorded
 * (that is {@link org.seq4j.Autograd}'s gradient mode, as in PyTorch).
 */
public abstract class Module implements AutoCloseable {
  private static final Cleaner CLEANER = Cleaner.create();
  private static final AtomicBoolean LEAK_REPORTED = new AtomicBoolean();
  private static final AtomicLong LEAKS = new AtomicLong();

  private final Map<String, Parameter> parameters = new LinkedHashMap<>();
  private final Map<String, Module> children = new LinkedHashMap<>();
  private final AtomicBoolean closed = new AtomicBoolean();
  private final List<Cleaner.Cleanable> cleanables = new ArrayList<>();
  private boolean training = true;

  /** A module with no parameters or parts yet. */
  protected Module() {}

  // ---- registration

  /**
   * Registers {@code parameter} under its name (which may be dotted, as PyTorch's {@code
   * MultiheadAttention} names {@code out_proj.weight}) and returns it.
   *
   * @throws IllegalArgumentException if the name is already taken
   */
  protected final Parameter registerParameter(Parameter parameter) {
    Objects.requireNonNull(parameter, "parameter");
    checkFree(parameter.name());
    parameters.put(parameter.name(), parameter);
    parameter.owner = this;
    return parameter;
  }

  /**
   * Registers {@code module} as the part called {@code name} (PyTorch's attribute name, or an
   * index for a list of parts) and returns it; its parameters appear as {@code name.…}.
   *
   * @throws IllegalArgumentException if the name is empty, contains a dot or is already taken
   */
  protected final <M extends Module> M register(String name, M module) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(module, "module");
    if (name.isEmpty() || name.contains(".")) {
      throw new IllegalArgumentException(
          "name: expected a non-empty name without dots, got '" + name + "'");
    }
    if (module == this) {
      throw new IllegalArgumentException("module: a module cannot be its own part");
    }
    checkFree(name);
    children.put(name, module);
    return module;
  }

  private void checkFree(String name) {
    if (parameters.containsKey(name) || children.containsKey(name)) {
      throw new IllegalArgumentException(
          "name: " + getClass().getSimpleName() + " already has a part or parameter '" + name
              + "'");
    }
  }

  /**
   * Frees {@code resources} (usually the arena holding this module's parameters) if this module
   * becomes unreachable before it is closed, and reports that leak; call it from the constructor
   * once the resources exist. {@code resources} must not refer to this module.
   */
  protected final void reclaimWhenUnreachable(AutoCloseable resources) {
    Objects.requireNonNull(resources, "resources");
    String type = getClass().getSimpleName();
    AtomicBoolean closedFlag = closed;
    cleanables.add(CLEANER.register(this, () -> {
      if (!closedFlag.get()) {
        LEAKS.incrementAndGet();
        if (LEAK_REPORTED.compareAndSet(false, true)) {
          System.getLogger("org.seq4j").log(System.Logger.Level.WARNING, "a " + type
              + " was never closed; the garbage collector reclaimed its native memory. Close"
              + " modules (try-with-resources) to free it on time. Reported once.");
        }
        try {
          resources.close();
        } catch (Exception | Error ignored) {
          // a safety net must not throw on the cleaner's thread
        }
      }
    }));
  }

  /** How many modules the safety net reclaimed without a close, since the JVM started. */
  static long leakedModules() {
    return LEAKS.get();
  }

  // ---- the tree

  /** The direct parts, by name, in registration order. */
  public final Map<String, Module> children() {
    return Collections.unmodifiableMap(children);
  }

  /**
   * Every parameter of this module and its parts, under PyTorch's dotted names, in PyTorch's
   * order (a module's own parameters, then each part's in registration order). A parameter that
   * is shared by two parts is listed once, under its first name. The values share the tensors of
   * the originals.
   */
  public final Map<String, Parameter> namedParameters() {
    Map<String, Parameter> out = new LinkedHashMap<>();
    Map<Tensor, Boolean> seen = new IdentityHashMap<>();
    collect("", out, seen, false);
    return Collections.unmodifiableMap(out);
  }

  /** The values of {@link #namedParameters()}, named by their full dotted names. */
  public List<Parameter> parameters() {
    return List.copyOf(namedParameters().values());
  }

  private void collect(String prefix, Map<String, Parameter> out, Map<Tensor, Boolean> seen,
      boolean keepShared) {
    for (Parameter p : parameters.values()) {
      if (keepShared || seen.put(p.data(), Boolean.TRUE) == null) {
        out.put(prefix + p.name(),
            prefix.isEmpty() ? p : Parameter.prefixed(prefix, List.of(p)).get(0));
      }
    }
    for (Map.Entry<String, Module> child : children.entrySet()) {
      child.getValue().collect(prefix + child.getKey() + ".", out, seen, keepShared);
    }
  }

  /** Sets the gradient of every parameter in the tree to zero. */
  public void zeroGrad() {
    for (Parameter p : namedParameters().values()) {
      p.zeroGrad();
    }
  }

  /** Puts the tree in training mode ({@code true}) or inference mode; returns this. */
  public Module train(boolean on) {
    training = on;
    for (Module child : children.values()) {
      child.train(on);
    }
    return this;
  }

  /** {@code train(true)}. */
  public Module train() {
    return train(true);
  }

  /** {@code train(false)}: dropout becomes the identity. */
  public Module eval() {
    return train(false);
  }

  /** Whether this module is in training mode. */
  public final boolean isTraining() {
    return training;
  }

  // ---- state dict

  /**
   * Every parameter's values under its dotted name, as {@code model.state_dict()}: a shared
   * parameter appears under each of its names. The tensors are the parameters' own (not copies).
   */
  public final Map<String, Tensor> stateDict() {
    Map<String, Parameter> all = new LinkedHashMap<>();
    collect("", all, new IdentityHashMap<>(), true);
    Map<String, Tensor> out = new LinkedHashMap<>();
    all.forEach((name, p) -> out.put(name, p.data()));
    return Collections.unmodifiableMap(out);
  }

  /** The keys a {@link #loadStateDict} found missing and unexpected, as PyTorch reports them. */
  public record LoadResult(List<String> missingKeys, List<String> unexpectedKeys) {
    /** Copies the lists. */
    public LoadResult {
      missingKeys = List.copyOf(missingKeys);
      unexpectedKeys = List.copyOf(unexpectedKeys);
    }
  }

  /**
   * Copies {@code state} into the parameters with the same dotted names, all or nothing: every
   * shape is checked before any value is copied, so a failed load leaves the module unchanged.
   *
   * @param strict when true, a missing or unexpected key is an error (as PyTorch's default)
   * @return the missing and unexpected keys (both empty after a strict load)
   * @throws IllegalArgumentException listing the missing and unexpected keys (strict), or naming
   *     a key whose shape differs
   */
  public final LoadResult loadStateDict(Map<String, Tensor> state, boolean strict) {
    Objects.requireNonNull(state, "state");
    Map<String, Parameter> own = new LinkedHashMap<>();
    collect("", own, new IdentityHashMap<>(), true);
    List<String> missing = new ArrayList<>();
    List<String> unexpected = new ArrayList<>();
    for (String key : own.keySet()) {
      if (!state.containsKey(key)) {
        missing.add(key);
      }
    }
    for (String key : state.keySet()) {
      if (!own.containsKey(key)) {
        unexpected.add(key);
      }
    }
    List<String> errors = new ArrayList<>();
    if (strict && !missing.isEmpty()) {
      errors.add("Missing key(s) in state_dict: " + quoted(missing) + ".");
    }
    if (strict && !unexpected.isEmpty()) {
      errors.add("Unexpected key(s) in state_dict: " + quoted(unexpected) + ".");
    }
    for (Map.Entry<String, Parameter> e : own.entrySet()) {
      Tensor value = state.get(e.getKey());
      if (value == null) {
        continue;
      }
      if (!value.shape().equals(e.getValue().shape())) {
        errors.add("size mismatch for " + e.getKey() + ": copying a param with shape "
            + value.shape() + " from checkpoint, the shape in current model is "
            + e.getValue().shape() + ".");
      } else if (!value.isUsable()) {
        errors.add("state[" + e.getKey() + "] is not usable (its arena is closed or confined to"
            + " another thread).");
      }
    }
    if (!errors.isEmpty()) {
      throw new IllegalArgumentException("state: error(s) in loading state_dict for "
          + getClass().getSimpleName() + ":\n\t" + String.join("\n\t", errors));
    }
    for (Map.Entry<String, Parameter> e : own.entrySet()) {
      Tensor value = state.get(e.getKey());
      if (value != null) {
        Parameter p = e.getValue();
        org.seq4j.internal.Checks.writable(p.data().segment(), e.getKey());
      }
    }
    for (Map.Entry<String, Parameter> e : own.entrySet()) {
      Tensor value = state.get(e.getKey());
      if (value != null && value.segment().address() != e.getValue().data().segment().address()) {
        Parameter p = e.getValue();
        p.data().copyFrom(value);
        p.markChanged();
      }
    }
    return new LoadResult(missing, unexpected);
  }

  private static String quoted(List<String> keys) {
    List<String> q = new ArrayList<>();
    for (String k : keys) {
      q.add('"' + k + '"');
    }
    return String.join(", ", q);
  }

  /**
   * Writes {@link #stateDict()} to a safetensors file (atomically), with {@code format: pt} in
   * its metadata, so that {@code model.load_state_dict(safetensors.torch.load_file(path))} loads
   * it in PyTorch.
   */
  public final void save(Path path) throws IOException {
    save(path, SafeTensors.StorageDType.F32);
  }

  /**
   * {@link #save(Path)} storing the values as {@code dtype}: {@code BF16} halves the file (rounded
   * to nearest even, as {@code .to(torch.bfloat16)}); loading converts back to float32.
   */
  public final void save(Path path, SafeTensors.StorageDType dtype) throws IOException {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(dtype, "dtype");
    Map<String, Tensor> state = new LinkedHashMap<>();
    Map<Long, String> written = new java.util.HashMap<>();
    // safetensors refuses two keys over the same memory: a shared parameter is written as a copy
    try (Arena scratch = Arena.ofConfined()) {
      for (Map.Entry<String, Tensor> e : stateDict().entrySet()) {
        Tensor t = e.getValue();
        state.put(e.getKey(),
            written.putIfAbsent(t.segment().address(), e.getKey()) == null ? t : t.copy(scratch));
      }
      SafeTensors.write(path, state, Map.of("format", "pt"), dtype);
    }
  }

  /**
   * Loads a safetensors file written by {@link #save} or by {@code
   * safetensors.torch.save_file(model.state_dict(), path)}, as {@link #loadStateDict}: F32, F16,
   * BF16 and F64 tensors load (converted to float32).
   *
   * @throws IOException if the file cannot be read or is not a valid safetensors file
   */
  public final LoadResult load(Path path, boolean strict) throws IOException {
    Objects.requireNonNull(path, "path");
    try (Arena scratch = Arena.ofConfined()) {
      SafeTensors.File file = SafeTensors.read(path, scratch);
      return loadStateDict(file.tensors(), strict);
    }
  }

  // ---- closing

  /** Whether {@link #close()} was called. */
  public final boolean isClosed() {
    return closed.get();
  }

  /**
   * Closes the tree: the parts registered last first, then this module's own resources ({@link
   * #closeResources()}). Calls on a closed module throw {@link IllegalStateException}. Closing
   * again does nothing.
   */
  @Override
  public final void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    Throwable failure = null;
    List<Module> parts = new ArrayList<>(children.values());
    Collections.reverse(parts);
    for (Module part : parts) {
      try {
        part.close();
      } catch (RuntimeException | Error e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    try {
      closeResources();
    } catch (RuntimeException | Error e) {
      if (failure == null) {
        failure = e;
      } else {
        failure.addSuppressed(e);
      }
    }
    for (Cleaner.Cleanable c : cleanables) {
      c.clean(); // runs nothing: closed is set
    }
    if (failure instanceof RuntimeException r) {
      throw r;
    }
    if (failure instanceof Error e) {
      throw e;
    }
  }

  /**
   * Frees what this module itself owns (not its registered parts), after waiting for calls in
   * flight; called once by {@link #close()}. The default does nothing.
   */
  protected void closeResources() {}

  /**
   * The arena for a result computed from {@code input}: the input's own.
   *
   * @throws IllegalArgumentException if {@code input} lies in foreign memory (no arena)
   */
  protected static Arena arenaOf(Tensor input, String name) {
    if (input == null) {
      throw new NullPointerException(name);
    }
    Arena arena = input.arena();
    if (arena == null) {
      throw new IllegalArgumentException(name + ": a tensor over foreign memory (ofSegment) has no"
          + " arena for the result; use the forward that takes an arena");
    }
    return arena;
  }

  @Override
  public String toString() {
    if (children.isEmpty()) {
      return getClass().getSimpleName() + "()";
    }
    StringBuilder s = new StringBuilder(getClass().getSimpleName()).append("(\n");
    children.forEach((name, m) -> s.append("  (").append(name).append("): ")
        .append(m.toString().replace("\n", "\n  ")).append('\n'));
    return s.append(')').toString();
  }
}
