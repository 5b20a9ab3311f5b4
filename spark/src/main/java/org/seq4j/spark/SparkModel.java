package org.seq4j.spark;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Module;

/**
 * A seq4j model shipped to a Spark cluster: the factory that builds its architecture and its
 * weights as one broadcast of safetensors bytes, sent once to each executor.
 *
 * <p>On an executor, {@link #module()} builds the module once per JVM and broadcast (a static
 * cache keyed by the broadcast's id, loaded lazily by the first task that needs it) and shares it
 * between that JVM's tasks: seq4j's inference under {@link org.seq4j.Autograd#noGrad()} saves
 * nothing and is thread-safe. The cached modules live as long as the executor; {@link
 * #destroy()} drops the driver's broadcast (later use fails on the driver with a clear message)
 * and, in local mode, the cache entry.
 */
public final class SparkModel implements Serializable {
  private static final long serialVersionUID = 1L;
  private static final ConcurrentMap<Long, Module> EXECUTOR_MODULES = new ConcurrentHashMap<>();

  private final ModelFactory factory;
  private final Broadcast<byte[]> weights;

  private SparkModel(ModelFactory factory, Broadcast<byte[]> weights) {
    this.factory = factory;
    this.weights = weights;
  }

  /**
   * Broadcasts {@code trained}'s weights for modules built by {@code factory}. Checked here, on
   * the driver: the factory's module must be a {@link Layer} and accept the weights strictly.
   *
   * @throws IllegalArgumentException when the factory's architecture does not match {@code
   *     trained} (the message lists the missing, unexpected and mis-shaped keys)
   */
  public static SparkModel broadcast(JavaSparkContext sc, ModelFactory factory, Module trained) {
    Objects.requireNonNull(sc, "sc");
    Objects.requireNonNull(factory, "factory");
    Objects.requireNonNull(trained, "trained");
    byte[] bytes = Weights.of(trained);
    try (Module probe = create(factory)) {
      probe.loadStateDict(trained.stateDict(), true);
    }
    return new SparkModel(factory, sc.broadcast(bytes));
  }

  static Module create(ModelFactory factory) {
    Module module = factory.create();
    if (module == null) {
      throw new IllegalArgumentException("factory: returned null instead of a module");
    }
    if (!(module instanceof Layer)) {
      module.close();
      throw new IllegalArgumentException("factory: the module " + module.getClass().getName()
          + " must implement org.seq4j.nn.Layer (its forward(Tensor) is the model's forward)");
    }
    return module;
  }

  /** The factory that builds the architecture. */
  public ModelFactory factory() {
    return factory;
  }

  /** The broadcast of the weights' safetensors bytes. */
  public Broadcast<byte[]> weights() {
    return weights;
  }

  /**
   * Throws a clear error on the driver when the weights' broadcast is gone, before a job starts
   * tasks that would each fail on it.
   */
  void requireUsable() {
    if (!weights.isValid()) {
      throw new IllegalStateException("the model's weights (broadcast " + weights.id()
          + ") were destroyed; broadcast the model again with SparkModel.broadcast");
    }
  }

  /**
   * A new module holding the broadcast weights, for the driver or for a task that needs its own
   * copy (training); the caller closes it.
   */
  Module newModule(Path folder) {
    Module module = create(factory);
    try {
      Weights.load(module, weights.value(), folder);
    } catch (RuntimeException e) {
      module.close();
      throw e;
    }
    return module;
  }

  /**
   * The module of this JVM for this broadcast, shared by its tasks (built on first use, in
   * inference mode). Do not close it.
   */
  Module module() {
    return EXECUTOR_MODULES.computeIfAbsent(weights.id(), id -> {
      Module m = newModule(Path.of(SparkFiles.getRootDirectory(), "seq4j"));
      m.eval();
      return m;
    });
  }

  /** Destroys the broadcast (blocking) and this JVM's cached module of it. */
  public void destroy() {
    Module m = EXECUTOR_MODULES.remove(weights.id());
    if (m != null) {
      m.close();
    }
    weights.destroy();
  }

  /** How many modules this JVM holds in its cache (for tests). */
  static int cachedModules() {
    return EXECUTOR_MODULES.size();
  }
}
