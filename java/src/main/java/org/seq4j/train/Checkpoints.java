package org.seq4j.train;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;
import org.seq4j.io.SafeTensors;
import org.seq4j.nn.Parameter;

/**
 * Saves and restores training: every parameter under its PyTorch name and, optionally, the
 * optimizer's state ({@code optimizer.exp_avg.<name>}, ...), its step count and learning rate, in
 * one safetensors file. Loading checks that the file belongs to this model and optimizer, so a run
 * resumes bit-identically or fails with a message that says why.
 *
 * <p>Checkpoints are written in F32, so that a resumed run is bit-identical. Loading also accepts
 * tensors stored as F16, BF16 or F64 (a state dict that PyTorch saved in half precision, say),
 * converted to F32 as {@link SafeTensors} reads them; other dtypes (I64, ...) do not match.
 *
 * <p>Loading is all-or-nothing: the file is validated completely ({@link SafeTensors}), every
 * tensor is matched against its target by name, readable dtype and shape, and the optimizer's
 * metadata is parsed, all before the first parameter is written. A load that fails leaves every
 * parameter and every optimizer state tensor, step count and learning rate as they were.
 */
public final class Checkpoints {
  private static final String STATE_PREFIX = "optimizer.";
  private static final String FORMAT = "seq4j-checkpoint-1";

  private Checkpoints() {}

  /**
   * Writes the parameters (and the optimizer's state when it is not null) to {@code path},
   * atomically: the previous file at {@code path} stays whole until the new one is complete.
   *
   * @param metadata extra strings to store (epoch, data position...); may be empty. The keys
   *     {@code format}, {@code optimizer}, {@code optimizer.steps} and {@code
   *     optimizer.learning_rate} are written by this method and override the caller's.
   * @throws IllegalArgumentException if two parameters share a name, a name begins with {@code
   *     optimizer.} (reserved for the optimizer's state), or a name or value cannot be written
   */
  public static void save(Path path, List<Parameter> parameters, Optimizer optimizer,
      Map<String, String> metadata) throws IOException {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(parameters, "parameters");
    Objects.requireNonNull(metadata, "metadata");
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Parameter p : parameters) {
      checkName(p);
      if (tensors.put(p.name(), p.data()) != null) {
        throw new IllegalArgumentException("parameters: the name " + p.name() + " appears twice");
      }
    }
    Map<String, String> meta = new LinkedHashMap<>(metadata);
    meta.put("format", FORMAT);
    if (optimizer != null) {
      optimizer.state().forEach((name, tensor) -> tensors.put(STATE_PREFIX + name, tensor));
      meta.put("optimizer", optimizer.getClass().getSimpleName());
      meta.put("optimizer.steps", Long.toString(optimizer.steps()));
      meta.put("optimizer.learning_rate", Double.toString(optimizer.learningRate()));
    }
    SafeTensors.write(path, tensors, meta);
  }

  /**
   * Restores parameters (and the optimizer when it is not null) from a file written by {@link
   * #save}, strictly: the file must hold exactly these tensors (its optimizer state is ignored
   * when {@code optimizer} is null). Parameters are marked changed.
   *
   * @return the file's metadata
   * @throws IOException if the file cannot be read, is not valid safetensors, or its optimizer
   *     metadata is malformed; nothing is changed
   * @throws IllegalArgumentException if the file is of another model or optimizer: a missing or
   *     extra tensor, a different shape, dtype or optimizer kind; nothing is changed
   */
  public static Map<String, String> load(Path path, List<Parameter> parameters,
      Optimizer optimizer) throws IOException {
    return load(path, parameters, optimizer, true);
  }

  /**
   * {@link #load(Path, List, Optimizer)}, where {@code strict = false} also accepts a file that
   * holds tensors the model lacks (they are ignored, as PyTorch's {@code load_state_dict(strict=
   * False)} ignores unexpected keys). A tensor the model has and the file lacks is always an
   * error: it would silently keep its initial values.
   */
  public static Map<String, String> load(Path path, List<Parameter> parameters,
      Optimizer optimizer, boolean strict) throws IOException {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(parameters, "parameters");
    Map<String, Tensor> targets = new LinkedHashMap<>();
    for (Parameter p : parameters) {
      checkName(p);
      if (targets.put(p.name(), p.data()) != null) {
        throw new IllegalArgumentException("parameters: the name " + p.name() + " appears twice");
      }
    }
    if (optimizer != null) {
      for (Map.Entry<String, Tensor> state : optimizer.state().entrySet()) {
        targets.put(STATE_PREFIX + state.getKey(), state.getValue());
      }
    }
    for (Map.Entry<String, Tensor> target : targets.entrySet()) {
      Checks.writable(target.getValue().segment(), target.getKey().startsWith(STATE_PREFIX)
          ? "optimizer state " + target.getKey() : "parameters[" + target.getKey() + "]");
    }
    try (SafeTensors.Reader file = SafeTensors.open(path); Arena staging = Arena.ofConfined()) {
      Map<String, SafeTensors.Entry> stored = file.entries();
      Map<String, String> metadata = file.metadata();
      long steps = 0;
      double learningRate = 0;
      if (optimizer != null) {
        String kind = metadata.get("optimizer");
        if (!optimizer.getClass().getSimpleName().equals(kind)) {
          throw new IllegalArgumentException("checkpoint " + path + " holds the state of "
              + (kind == null ? "no optimizer" : kind) + ", not of "
              + optimizer.getClass().getSimpleName());
        }
        steps = parseSteps(path, metadata.get("optimizer.steps"));
        learningRate = parseLearningRate(path, metadata.get("optimizer.learning_rate"));
      }
      List<String> missing = new ArrayList<>();
      for (Map.Entry<String, Tensor> target : targets.entrySet()) {
        SafeTensors.Entry source = stored.get(target.getKey());
        if (source == null) {
          missing.add(target.getKey());
          continue;
        }
        if (!source.readable()) { // F16, BF16 and F64 are converted to F32 as they are read
          throw new IllegalArgumentException("checkpoint " + path + " does not match this model: "
              + target.getKey() + " has dtype " + source.dtype() + " there and "
              + target.getValue().dtype() + " here");
        }
        if (!source.shape().equals(target.getValue().shape())) {
          throw new IllegalArgumentException("checkpoint " + path + " does not match this model: "
              + target.getKey() + " has shape " + source.shape() + " there and "
              + target.getValue().shape() + " here");
        }
      }
      if (!missing.isEmpty()) {
        throw new IllegalArgumentException("checkpoint " + path + " does not match this model:"
            + " it has no " + String.join(", ", missing) + " (it has " + stored.keySet() + ")");
      }
      List<String> unexpected = new ArrayList<>();
      for (String name : stored.keySet()) {
        if (!targets.containsKey(name) && !(optimizer == null && name.startsWith(STATE_PREFIX))) {
          unexpected.add(name);
        }
      }
      if (strict && !unexpected.isEmpty()) {
        throw new IllegalArgumentException("checkpoint " + path + " does not match this model:"
            + " it has tensors the model lacks: " + unexpected);
      }
      // every check passed: read into staging memory (this may still fail, on a file truncated
      // meanwhile), and only then overwrite the targets, which can no longer fail
      Map<String, Tensor> values = file.read(staging, targets.keySet());
      for (Map.Entry<String, Tensor> target : targets.entrySet()) {
        target.getValue().copyFrom(values.get(target.getKey()));
      }
      for (Parameter p : parameters) {
        p.markChanged();
      }
      if (optimizer != null) {
        optimizer.restoreSteps(steps);
        optimizer.setLearningRate(learningRate);
      }
      return metadata;
    }
  }

  private static void checkName(Parameter p) {
    Objects.requireNonNull(p, "parameters: a parameter is null");
    if (p.name().startsWith(STATE_PREFIX)) {
      throw new IllegalArgumentException("parameters: the name " + p.name() + " begins with "
          + STATE_PREFIX + ", which checkpoints reserve for the optimizer's state");
    }
  }

  private static long parseSteps(Path path, String text) throws IOException {
    long steps = -1;
    if (text != null && text.matches("[0-9]{1,19}")) {
      try {
        steps = Long.parseLong(text);
      } catch (NumberFormatException tooLarge) {
        steps = -1;
      }
    }
    if (steps < 0) {
      throw new IOException("checkpoint " + path + ": metadata optimizer.steps is "
          + (text == null ? "missing" : "'" + text + "'") + ", expected an integer >= 0");
    }
    return steps;
  }

  private static double parseLearningRate(Path path, String text) throws IOException {
    double rate = Double.NaN;
    if (text != null && text.matches("[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
      rate = Double.parseDouble(text);
    }
    if (!(rate >= 0) || Double.isInfinite(rate)) {
      throw new IOException("checkpoint " + path + ": metadata optimizer.learning_rate is "
          + (text == null ? "missing" : "'" + text + "'") + ", expected a finite number >= 0");
    }
    return rate;
  }
}
