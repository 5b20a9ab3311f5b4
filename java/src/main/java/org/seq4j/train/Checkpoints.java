package org.seq4j.train;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.seq4j.Tensor;
import org.seq4j.io.SafeTensors;
import org.seq4j.nn.Parameter;

/**
 * Saves and restores training: every parameter under its PyTorch name and, optionally, the
 * optimizer's state ({@code optimizer.exp_avg.<name>}, ...), its step count and learning rate, in
 * one safetensors file. Loading checks that the file belongs to this model and optimizer, so a run
 * resumes bit-identically or fails with a message that says why.
 */
public final class Checkpoints {
  private static final String STATE_PREFIX = "optimizer.";

  private Checkpoints() {}

  /**
   * Writes the parameters (and the optimizer's state when it is not null) to {@code path},
   * atomically.
   *
   * @param metadata extra strings to store (epoch, data position...); may be empty
   */
  public static void save(Path path, List<Parameter> parameters, Optimizer optimizer,
      Map<String, String> metadata) throws IOException {
    Map<String, Tensor> tensors = new LinkedHashMap<>();
    for (Parameter p : parameters) {
      if (tensors.put(p.name(), p.data()) != null) {
        throw new IllegalArgumentException("parameters: the name " + p.name() + " appears twice");
      }
    }
    Map<String, String> meta = new LinkedHashMap<>(metadata);
    meta.put("format", "seq4j-checkpoint-1");
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
   * #save}. Parameters are marked changed.
   *
   * @return the file's metadata
   * @throws IllegalArgumentException if the file is of another model or optimizer: a missing or
   *     extra tensor, a different shape or optimizer kind
   */
  public static Map<String, String> load(Path path, List<Parameter> parameters,
      Optimizer optimizer) throws IOException {
    try (Arena arena = Arena.ofConfined()) {
      SafeTensors.File file = SafeTensors.read(path, arena);
      Map<String, Tensor> stored = file.tensors();
      Set<String> unused = new HashSet<>(stored.keySet());
      Map<String, Tensor> targets = new LinkedHashMap<>();
      for (Parameter p : parameters) {
        targets.put(p.name(), p.data());
      }
      if (optimizer != null) {
        String kind = file.metadata().get("optimizer");
        if (!optimizer.getClass().getSimpleName().equals(kind)) {
          throw new IllegalArgumentException("checkpoint " + path + " holds the state of "
              + (kind == null ? "no optimizer" : kind) + ", not of "
              + optimizer.getClass().getSimpleName());
        }
        optimizer.state().forEach((name, tensor) -> targets.put(STATE_PREFIX + name, tensor));
      }
      for (Map.Entry<String, Tensor> target : targets.entrySet()) {
        Tensor source = stored.get(target.getKey());
        if (source == null) {
          throw new IllegalArgumentException("checkpoint " + path + " does not match this model:"
              + " it has no " + target.getKey() + " (it has " + stored.keySet() + ")");
        }
        if (!source.shape().equals(target.getValue().shape())) {
          throw new IllegalArgumentException("checkpoint " + path + " does not match this model: "
              + target.getKey() + " has shape " + source.shape() + " there and "
              + target.getValue().shape() + " here");
        }
        unused.remove(target.getKey());
      }
      if (optimizer == null) {
        unused.removeIf(name -> name.startsWith(STATE_PREFIX));
      }
      if (!unused.isEmpty()) {
        throw new IllegalArgumentException("checkpoint " + path + " does not match this model:"
            + " it has tensors the model lacks: " + unused);
      }
      for (Map.Entry<String, Tensor> target : targets.entrySet()) {
        target.getValue().copyFrom(stored.get(target.getKey()));
      }
      for (Parameter p : parameters) {
        p.markChanged();
      }
      if (optimizer != null) {
        optimizer.restoreSteps(Long.parseLong(file.metadata().get("optimizer.steps")));
        optimizer.setLearningRate(
            Double.parseDouble(file.metadata().get("optimizer.learning_rate")));
      }
      return file.metadata();
    }
  }
}
