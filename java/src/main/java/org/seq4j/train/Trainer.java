package org.seq4j.train;

import java.io.Console;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import org.seq4j.Autograd;
import org.seq4j.Tensor;
import org.seq4j.nn.Module;
import org.seq4j.nn.Parameter;

/**
 * A training loop, as Keras's {@code fit}: epochs over user batches, each step {@code zeroGrad},
 * the user's loss, {@code backward}, an optional NaN/Inf guard and gradient clipping, the
 * optimizer's step and a per-step schedule; after each epoch a validation pass (in {@link
 * Module#eval() eval} mode under {@link Autograd#noGrad()}), metrics, callbacks, early stopping,
 * checkpoints and a progress line.
 *
 * <pre>{@code
 * var trainer = Trainer.builder(model, adam, (m, b) -> Losses.mseLoss(m.forward(b.x()), b.y()))
 *     .epochs(20).clipGradNorm(1.0).scheduler(Scheduler.of(adam, Scheduler.Rule.cosine(2000, 0)))
 *     .validation(validationBatches).earlyStopping(new Trainer.EarlyStopping(3, 1e-4, true))
 *     .checkpoints(Path.of("runs/1"), 5, true).build();
 * History history = trainer.fit(trainingBatches);
 * }</pre>
 *
 * <p><b>Memory: one arena per step.</b> A layer's result lies in the arena of its input, so all
 * the tensors of a step (activations, the loss) lie in the arena of the batch's tensors. The
 * simplest way is a {@link StepLoss}: the trainer opens a confined arena for each training step
 * and each validation batch, passes it to the loss (and to {@link StepMetric}s) to make the
 * batch's tensors in, and closes it when the step is over, so batches can be plain Java data
 * (token arrays, say):
 *
 * <pre>{@code
 * Trainer.builder(model, adam, (m, b, arena) -> Losses.crossEntropy(m.forward(arena, b), b.y()))
 * }</pre>
 *
 * <p>Otherwise (with a {@link Loss}) make each batch in an arena of its own ({@code Arena.ofConfined()}, on the thread that calls {@link
 * #fit}) and let the batch object be {@link AutoCloseable}, closing that arena: the trainer closes
 * it as soon as the step (or the validation of that batch) is over, so a step's memory is freed
 * before the next step begins. The {@code Iterable} is iterated once per epoch; it should make
 * fresh batches each time (as {@link org.seq4j.data.MiniBatches} does). Batches that are not
 * {@code AutoCloseable}, or all batches after {@link Builder#closeBatches closeBatches(false)},
 * are left alone, and then their memory is the caller's to free.
 */
public final class Trainer<M extends Module, B> {
  /** The loss of one batch: a recorded single-element tensor (a scalar). */
  @FunctionalInterface
  public interface Loss<M extends Module, B> {
    /** Runs the model on {@code batch} and returns the scalar loss. */
    Tensor compute(M model, B batch);
  }

  /**
   * The loss of one batch whose tensors are made in {@code arena}: a confined arena the trainer
   * opens on the calling thread for this step (or validation batch) and closes after it.
   */
  @FunctionalInterface
  public interface StepLoss<M extends Module, B> {
    /** Runs the model on {@code batch}, making its tensors in {@code arena}; the scalar loss. */
    Tensor compute(M model, B batch, Arena arena);
  }

  /** A validation metric whose tensors are made in the batch's arena, as in {@link StepLoss}. */
  @FunctionalInterface
  public interface StepMetric<M extends Module, B> {
    /** The metric of {@code batch} (runs in eval mode under {@code noGrad}). */
    double compute(M model, B batch, Arena arena);
  }

  /** A number computed on each validation batch and averaged over the validation set. */
  @FunctionalInterface
  public interface Metric<M extends Module, B> {
    /** The metric of {@code batch} (runs in eval mode under {@code noGrad}). */
    double compute(M model, B batch);
  }

  /**
   * What happened in one training step.
   *
   * @param gradientNorm the global L2 norm of the gradients before clipping, with {@link
   *     Builder#clipGradNorm} on (NaN without clipping, which does not compute it)
   */
  public record BatchRecord(int epoch, long batch, long step, double loss, double runningLoss,
      double learningRate, double gradientNorm) {}

  /**
   * What happened in one epoch.
   *
   * @param epoch its index, from 0
   * @param trainLoss the mean training loss of its batches
   * @param validationLoss the mean validation loss (NaN without a validation set)
   * @param metrics the user metrics' means over the validation set, by name
   * @param learningRate the first group's learning rate at the epoch's end
   * @param steps the optimizer's step count at the epoch's end
   * @param improved whether the monitored loss improved by more than the minimum delta
   */
  public record EpochRecord(int epoch, double trainLoss, double validationLoss,
      Map<String, Double> metrics, double learningRate, long steps, boolean improved) {
    /** Copies the metrics. */
    public EpochRecord {
      metrics = Collections.unmodifiableMap(new LinkedHashMap<>(metrics));
    }
  }

  /** Hooks called by {@link #fit}, all optional. */
  public interface Callback {
    /** Before the first batch of epoch {@code epoch} (from 0). */
    default void onEpochStart(int epoch) {}

    /** After each training step. */
    default void onBatchEnd(BatchRecord record) {}

    /** After the epoch's validation, checkpoints and early-stopping bookkeeping. */
    default void onEpochEnd(EpochRecord record) {}
  }

  /**
   * Stops when the monitored loss (the validation loss, or the training loss without a
   * validation set) has not improved by more than {@code minDelta} for {@code patience} epochs;
   * with {@code restoreBest} the weights of the best epoch are put back when the run ends.
   */
  public record EarlyStopping(int patience, double minDelta, boolean restoreBest) {
    /** Checks the values. */
    public EarlyStopping {
      if (patience < 1) {
        throw new IllegalArgumentException("patience: expected >= 1, got " + patience);
      }
      if (!(minDelta >= 0) || Double.isInfinite(minDelta)) {
        throw new IllegalArgumentException("minDelta: expected a finite value >= 0, got "
            + minDelta);
      }
    }
  }

  /** How progress is shown. */
  public enum Progress {
    /** {@link #UPDATING} on a terminal, {@link #LINES} otherwise (a log, a pipe, a CI). */
    AUTO,
    /** One plain line per epoch. */
    LINES,
    /** One line rewritten after every batch, kept at each epoch's end. */
    UPDATING,
    /** Nothing. */
    OFF
  }

  /** When a scheduler steps. */
  public enum Interval {
    /** After every optimizer step. */
    STEP,
    /** After every epoch. */
    EPOCH
  }

  private final M model;
  private final Optimizer optimizer;
  private final StepLoss<M, B> loss;
  private final int epochs;
  private final double clipNorm;
  private final boolean requireFinite;
  private final Scheduler scheduler;
  private final Interval schedulerInterval;
  private final Iterable<B> validation;
  private final Map<String, StepMetric<M, B>> metrics;
  private final List<Callback> callbacks;
  private final EarlyStopping earlyStopping;
  private final Path checkpointDirectory;
  private final int checkpointEvery;
  private final boolean checkpointBest;
  private final Progress progress;
  private final PrintStream out;
  private final boolean closeBatches;
  private double lastGradientNorm = Double.NaN;

  private Trainer(Builder<M, B> b) {
    this.model = b.model;
    this.optimizer = b.optimizer;
    this.loss = b.loss;
    this.epochs = b.epochs;
    this.clipNorm = b.clipNorm;
    this.requireFinite = b.requireFinite;
    this.scheduler = b.scheduler;
    this.schedulerInterval = b.schedulerInterval;
    this.validation = b.validation;
    this.metrics = new LinkedHashMap<>(b.metrics);
    this.callbacks = List.copyOf(b.callbacks);
    this.earlyStopping = b.earlyStopping;
    this.checkpointDirectory = b.checkpointDirectory;
    this.checkpointEvery = b.checkpointEvery;
    this.checkpointBest = b.checkpointBest;
    this.progress = b.progress;
    this.out = b.out;
    this.closeBatches = b.closeBatches;
  }

  /**
   * A builder for training {@code model} with {@code optimizer} on {@code loss}.
   *
   * @param loss {@code (model, batch) -> scalar loss tensor}, recorded (computed with grad mode
   *     on from the model's parameters)
   */
  public static <M extends Module, B> Builder<M, B> builder(M model, Optimizer optimizer,
      Loss<M, B> loss) {
    Objects.requireNonNull(loss, "loss");
    return new Builder<>(model, optimizer, (m, b, arena) -> loss.compute(m, b));
  }

  /**
   * A builder for training {@code model} with {@code optimizer} on {@code loss}, which makes each
   * step's tensors in the arena the trainer opens for that step and closes after it.
   *
   * @param loss {@code (model, batch, arena) -> scalar loss tensor}, recorded
   */
  public static <M extends Module, B> Builder<M, B> builder(M model, Optimizer optimizer,
      StepLoss<M, B> loss) {
    return new Builder<>(model, optimizer, loss);
  }

  /**
   * Trains over {@code batches}, iterated once per epoch.
   *
   * @return the per-epoch losses, the best epoch and whether the run stopped early
   * @throws NonFiniteGradientException with the guard on, at the first non-finite gradient (the
   *     optimizer has not stepped on it)
   * @throws IllegalStateException if the loss is not a recorded single-element tensor
   * @throws IllegalArgumentException if an epoch has no training batch
   * @throws UncheckedIOException if a checkpoint cannot be written
   */
  public History fit(Iterable<B> batches) {
    Objects.requireNonNull(batches, "batches");
    List<Double> trainLosses = new ArrayList<>();
    List<Double> validationLosses = new ArrayList<>();
    List<EpochRecord> records = new ArrayList<>();
    double best = Double.POSITIVE_INFINITY;
    int bestEpoch = -1;
    int sinceBest = 0;
    boolean stoppedEarly = false;
    boolean updating = progress == Progress.UPDATING
        || (progress == Progress.AUTO && isTerminal());
    boolean lines = progress != Progress.OFF && !updating;
    boolean keepBest = earlyStopping != null && earlyStopping.restoreBest();
    try (Arena bestArena = Arena.ofConfined()) {
      Map<String, Tensor> bestState = null;
      for (int epoch = 0; epoch < epochs; epoch++) {
        for (Callback c : callbacks) {
          c.onEpochStart(epoch);
        }
        model.train();
        double sum = 0;
        long count = 0;
        for (B batch : batches) {
          double value;
          try {
            value = trainStep(batch);
          } finally {
            release(batch);
          }
          sum += value;
          count++;
          BatchRecord record = new BatchRecord(epoch, count - 1, optimizer.steps(), value,
              sum / count, optimizer.learningRate(), lastGradientNorm);
          for (Callback c : callbacks) {
            c.onBatchEnd(record);
          }
          if (updating) {
            out.print(String.format(Locale.ROOT, "\repoch %d/%d  batch %d  loss %.5g   ",
                epoch + 1, epochs, count, sum / count));
            out.flush();
          }
        }
        if (count == 0) {
          throw new IllegalArgumentException("batches: epoch " + epoch + " had no training batch");
        }
        double trainLoss = sum / count;
        Map<String, Double> metricValues = new LinkedHashMap<>();
        double validationLoss = validation == null ? Double.NaN : validate(metricValues);
        if (scheduler != null && schedulerInterval == Interval.EPOCH) {
          scheduler.step();
        }
        double monitored = validation == null ? trainLoss : validationLoss;
        double minDelta = earlyStopping == null ? 0 : earlyStopping.minDelta();
        boolean improved = monitored < best - minDelta;
        if (improved) {
          best = monitored;
          bestEpoch = epoch;
          sinceBest = 0;
          if (keepBest) {
            bestState = copyState(bestArena, bestState);
          }
          if (checkpointBest) {
            checkpoint("best", epoch);
          }
        } else {
          sinceBest++;
        }
        if (checkpointEvery > 0 && (epoch + 1) % checkpointEvery == 0) {
          checkpoint("epoch-" + epoch, epoch);
        }
        trainLosses.add(trainLoss);
        validationLosses.add(validationLoss);
        EpochRecord record = new EpochRecord(epoch, trainLoss, validationLoss, metricValues,
            optimizer.learningRate(), optimizer.steps(), improved);
        records.add(record);
        for (Callback c : callbacks) {
          c.onEpochEnd(record);
        }
        if (updating || lines) {
          out.print((updating ? "\r" : "") + describe(record) + (updating ? "   \n" : "\n"));
          out.flush();
        }
        if (earlyStopping != null && sinceBest >= earlyStopping.patience()
            && epoch + 1 < epochs) {
          stoppedEarly = true;
          break;
        }
      }
      if (bestState != null && bestEpoch != records.size() - 1) {
        model.loadStateDict(bestState, true);
      }
    }
    return new History(trainLosses, validationLosses, bestEpoch, best, stoppedEarly, records);
  }

  private double trainStep(B batch) {
    double scalar;
    try (Arena arena = Arena.ofConfined()) {
      model.zeroGrad();
      Tensor value = loss.compute(model, batch, arena);
      scalar = scalar(value, true);
      value.backward();
      if (requireFinite) {
        GradientChecks.requireFinite(model.namedParameters());
      }
      lastGradientNorm = clipNorm > 0
          ? GradientClipping.clipByGlobalNorm(optimizer.parameters(), clipNorm) : Double.NaN;
      optimizer.step();
    }
    if (scheduler != null && schedulerInterval == Interval.STEP) {
      scheduler.step();
    }
    return scalar;
  }

  private double validate(Map<String, Double> metricValues) {
    double sum = 0;
    long count = 0;
    double[] metricSums = new double[metrics.size()];
    model.eval();
    try (var off = Autograd.noGrad()) {
      for (B batch : validation) {
        try (Arena arena = Arena.ofConfined()) {
          sum += scalar(loss.compute(model, batch, arena), false);
          int i = 0;
          for (StepMetric<M, B> m : metrics.values()) {
            metricSums[i++] += m.compute(model, batch, arena);
          }
        } finally {
          release(batch);
        }
        count++;
      }
    } finally {
      model.train();
    }
    if (count == 0) {
      throw new IllegalArgumentException("validation: the validation set had no batch");
    }
    int i = 0;
    for (String name : metrics.keySet()) {
      metricValues.put(name, metricSums[i++] / count);
    }
    return sum / count;
  }

  private static double scalar(Tensor loss, boolean recorded) {
    if (loss == null) {
      throw new IllegalStateException("loss: the loss function returned null");
    }
    if (loss.size() != 1) {
      throw new IllegalStateException("loss: expected a single-element tensor, got shape "
          + loss.shape() + " (reduce it, with a mean, to a scalar)");
    }
    if (recorded && !loss.requiresGrad()) {
      throw new IllegalStateException("loss: it does not require a gradient, so backward cannot"
          + " reach the parameters (computed under Autograd.noGrad(), from detached tensors, or"
          + " with every parameter frozen?)");
    }
    return loss.toArray()[0];
  }

  private void release(B batch) {
    if (closeBatches && batch instanceof AutoCloseable closeable) {
      try {
        closeable.close();
      } catch (RuntimeException e) {
        throw e;
      } catch (Exception e) {
        throw new IllegalStateException("batch: closing it failed: " + e.getMessage(), e);
      }
    }
  }

  private Map<String, Tensor> copyState(Arena arena, Map<String, Tensor> previous) {
    Map<String, Tensor> state = model.stateDict();
    if (previous == null) {
      Map<String, Tensor> copy = new LinkedHashMap<>();
      state.forEach((name, t) -> copy.put(name, t.copy(arena)));
      return copy;
    }
    state.forEach((name, t) -> previous.get(name).copyFrom(t));
    return previous;
  }

  private void checkpoint(String stem, int epoch) {
    try {
      Files.createDirectories(checkpointDirectory);
      model.save(checkpointDirectory.resolve(stem + ".safetensors"));
      Map<String, String> meta = new LinkedHashMap<>();
      meta.put("epoch", Integer.toString(epoch));
      if (scheduler != null) {
        meta.put("scheduler.count", Long.toString(scheduler.count()));
      }
      Checkpoints.save(checkpointDirectory.resolve(stem + ".optimizer.safetensors"),
          List.<Parameter>of(), optimizer, meta);
    } catch (IOException e) {
      throw new UncheckedIOException("checkpoint " + stem + " in " + checkpointDirectory
          + " could not be written: " + e.getMessage(), e);
    }
  }

  private String describe(EpochRecord r) {
    StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "epoch %d/%d: loss %.5g",
        r.epoch() + 1, epochs, r.trainLoss()));
    if (validation != null) {
      s.append(String.format(Locale.ROOT, ", val_loss %.5g", r.validationLoss()));
    }
    r.metrics().forEach((name, v) -> s.append(String.format(Locale.ROOT, ", %s %.5g", name, v)));
    s.append(String.format(Locale.ROOT, ", lr %.3g, %d steps", r.learningRate(), r.steps()));
    if (r.improved() && (earlyStopping != null || checkpointBest)) {
      s.append(" (best)");
    }
    return s.toString();
  }

  private static boolean isTerminal() {
    Console console = System.console();
    return console != null && console.isTerminal();
  }

  /** Builds a {@link Trainer}. */
  public static final class Builder<M extends Module, B> {
    private final M model;
    private final Optimizer optimizer;
    private final StepLoss<M, B> loss;
    private int epochs = 1;
    private double clipNorm;
    private boolean requireFinite;
    private Scheduler scheduler;
    private Interval schedulerInterval = Interval.STEP;
    private Iterable<B> validation;
    private final Map<String, StepMetric<M, B>> metrics = new LinkedHashMap<>();
    private final List<Callback> callbacks = new ArrayList<>();
    private EarlyStopping earlyStopping;
    private Path checkpointDirectory;
    private int checkpointEvery;
    private boolean checkpointBest;
    private Progress progress = Progress.AUTO;
    private PrintStream out = System.out;
    private boolean closeBatches = true;

    private Builder(M model, Optimizer optimizer, StepLoss<M, B> loss) {
      this.model = Objects.requireNonNull(model, "model");
      this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
      this.loss = Objects.requireNonNull(loss, "loss");
    }

    /** The number of epochs (default 1). */
    public Builder<M, B> epochs(int epochs) {
      if (epochs < 1) {
        throw new IllegalArgumentException("epochs: expected >= 1, got " + epochs);
      }
      this.epochs = epochs;
      return this;
    }

    /** Clips the gradients' global L2 norm to {@code maxNorm} before each step (default: off). */
    public Builder<M, B> clipGradNorm(double maxNorm) {
      if (!(maxNorm > 0) || Double.isInfinite(maxNorm)) {
        throw new IllegalArgumentException("maxNorm: expected a finite value > 0, got "
            + maxNorm);
      }
      this.clipNorm = maxNorm;
      return this;
    }

    /**
     * Checks every gradient after each backward and stops at the first NaN or infinity with a
     * {@link NonFiniteGradientException} naming the parameter, before the optimizer steps
     * (default: off; it reads every gradient once per step).
     */
    public Builder<M, B> requireFiniteGradients(boolean on) {
      this.requireFinite = on;
      return this;
    }

    /** Steps {@code scheduler} after every optimizer step. */
    public Builder<M, B> scheduler(Scheduler scheduler) {
      return scheduler(scheduler, Interval.STEP);
    }

    /** Steps {@code scheduler} after every step or every epoch. */
    public Builder<M, B> scheduler(Scheduler scheduler, Interval interval) {
      this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
      this.schedulerInterval = Objects.requireNonNull(interval, "interval");
      if (scheduler.optimizer() != optimizer) {
        throw new IllegalArgumentException("scheduler: it drives another optimizer than the"
            + " trainer's");
      }
      return this;
    }

    /** The validation batches, evaluated after each epoch (iterated once per epoch). */
    public Builder<M, B> validation(Iterable<B> batches) {
      this.validation = Objects.requireNonNull(batches, "batches");
      return this;
    }

    /** A metric averaged over the validation batches, reported under {@code name}. */
    public Builder<M, B> metric(String name, Metric<M, B> metric) {
      Objects.requireNonNull(metric, "metric");
      return metric(name, (StepMetric<M, B>) (m, b, arena) -> metric.compute(m, b));
    }

    /** A metric made in the batch's arena, averaged over the validation batches. */
    public Builder<M, B> metric(String name, StepMetric<M, B> metric) {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(metric, "metric");
      if (metrics.putIfAbsent(name, metric) != null) {
        throw new IllegalArgumentException("name: a metric '" + name + "' is already there");
      }
      return this;
    }

    /** Adds a callback (called in the order added). */
    public Builder<M, B> callback(Callback callback) {
      callbacks.add(Objects.requireNonNull(callback, "callback"));
      return this;
    }

    /** Early stopping on the validation loss (or the training loss without validation). */
    public Builder<M, B> earlyStopping(EarlyStopping earlyStopping) {
      this.earlyStopping = Objects.requireNonNull(earlyStopping, "earlyStopping");
      return this;
    }

    /**
     * Writes checkpoints into {@code directory}: after every {@code everyEpochs}-th epoch (0:
     * never) as {@code epoch-<index>.safetensors}, and with {@code best} at each improvement as
     * {@code best.safetensors}. Each is the model's state dict ({@link Module#save}, loadable by
     * {@link Module#load} and by PyTorch) beside {@code <name>.optimizer.safetensors}, the
     * optimizer's state, step count and rate with the epoch in the metadata ({@link
     * Checkpoints#save}, loadable by {@code Checkpoints.load(path, List.of(), optimizer)}). Both
     * are written atomically.
     */
    public Builder<M, B> checkpoints(Path directory, int everyEpochs, boolean best) {
      this.checkpointDirectory = Objects.requireNonNull(directory, "directory");
      if (everyEpochs < 0) {
        throw new IllegalArgumentException("everyEpochs: expected >= 0, got " + everyEpochs);
      }
      this.checkpointEvery = everyEpochs;
      this.checkpointBest = best;
      return this;
    }

    /** How progress is shown (default {@link Progress#AUTO}), on standard output. */
    public Builder<M, B> progress(Progress progress) {
      this.progress = Objects.requireNonNull(progress, "progress");
      return this;
    }

    /** How progress is shown, and where. */
    public Builder<M, B> progress(Progress progress, PrintStream out) {
      this.out = Objects.requireNonNull(out, "out");
      return progress(progress);
    }

    /**
     * Whether batches that are {@link AutoCloseable} are closed once used (default true): turn it
     * off when the {@code Iterable} hands out the same batch objects every epoch.
     */
    public Builder<M, B> closeBatches(boolean on) {
      this.closeBatches = on;
      return this;
    }

    /** The trainer. */
    public Trainer<M, B> build() {
      return new Trainer<>(this);
    }
  }
}
