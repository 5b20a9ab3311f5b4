package org.seq4j.spark;

import java.io.IOException;
import java.io.Serializable;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Stream;
import org.apache.spark.BarrierTaskContext;
import org.apache.spark.Partitioner;
import org.apache.spark.SparkFiles;
import org.apache.spark.api.java.JavaPairRDD;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.rdd.RDD;
import org.seq4j.Autograd;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Module;
import org.seq4j.nn.Parameter;
import org.seq4j.train.Checkpoints;
import org.seq4j.train.Losses;
import org.seq4j.train.Optimizer;
import scala.Tuple2;
import scala.reflect.ClassTag$;
import scala.runtime.AbstractFunction1;

/**
 * Data-parallel training of a seq4j model on Spark, in barrier mode: W tasks run at once, each on
 * its own replica of the model, and every step all-reduces the gradients so that every replica
 * applies the same optimizer step to the same parameters.
 *
 * <p><b>What a step computes.</b> The examples are numbered in the RDD's order ({@code
 * zipWithIndex}); step s of an epoch takes the global batch of examples {@code [s B, (s+1) B)}
 * (a last incomplete batch is dropped), and worker r the shard {@code [s B + r b, s B + (r+1) b)}
 * with {@code b = B / W}. Each worker computes the mean squared error over its shard and its
 * gradient (forward and backward through seq4j's autograd); the all-reduce sums the W gradients,
 * and dividing by W gives the gradient of the mean loss over all B examples, since for equal
 * shards {@code (1/B) sum_i g_i = (1/W) sum_r (1/b) sum_{i in shard r} g_i}. So W workers at
 * global batch B compute what one process computes at batch B, up to the rounding of the sums'
 * order (with W = 1, the same bits).
 *
 * <p><b>The all-reduce.</b> {@link Reduction#RING} (the default): a ring all-reduce over TCP between
 * the tasks, rendezvous through the barrier's {@code allGather} ({@link RingAllReduce}). {@link
 * Reduction#ALL_GATHER}: Spark's own barrier {@code allGather} of every gradient, summed in rank
 * order (simple, through the driver; for comparison and as a fallback). Both leave every worker
 * with the same bits.
 *
 * <p><b>Failures.</b> A failed task fails the barrier stage, its peers see their connections
 * close (or the barrier fail) and stop, and Spark retries the whole stage (the training stage is
 * a shuffle map stage, as Spark retries only those in barrier mode; up to {@code
 * spark.task.maxFailures} attempts, e.g. master {@code local[2, 3]}; {@code
 * spark.stage.maxConsecutiveAttempts}). With a checkpoint folder, rank 0 writes a checkpoint
 * (weights and optimizer state) every {@link Builder#checkpointEvery} steps and at the end, and a
 * retried attempt resumes from the latest one every worker can read (a folder all executors
 * share, on a cluster); without one it restarts from the initial weights. Either way it ends
 * where an uninterrupted run ends.
 */
public final class DataParallelTrainer implements Serializable {
  private static final long serialVersionUID = 1L;

  /** How gradients are summed across workers. */
  public enum Reduction {
    /** A ring all-reduce over TCP between the tasks. */
    RING,
    /** Spark's barrier allGather of every worker's gradient, summed in rank order. */
    ALL_GATHER
  }

  /** A test hook called before every step (to inject failures). */
  @FunctionalInterface
  interface StepHook extends Serializable {
    void beforeStep(int rank, int stageAttempt, long step) throws Exception;
  }

  private final ModelFactory factory;
  private final OptimizerFactory optimizer;
  private final long features;
  private final int workers;
  private final int globalBatch;
  private final int epochs;
  private final Reduction reduction;
  private final String checkpointDir;
  private final int checkpointEvery;
  private final Duration timeout;
  private final StepHook hook;

  private DataParallelTrainer(Builder b) {
    this.factory = b.factory;
    this.optimizer = b.optimizer;
    this.features = b.features;
    this.workers = b.workers;
    this.globalBatch = b.globalBatch;
    this.epochs = b.epochs;
    this.reduction = b.reduction;
    this.checkpointDir = b.checkpointDir;
    this.checkpointEvery = b.checkpointEvery;
    this.timeout = b.timeout;
    this.hook = b.hook;
  }

  /**
   * A trainer of the model {@code factory} builds (its initial weights are those of one module it
   * builds on the driver), with the optimizer {@code optimizer} builds, on sequences of {@code
   * features} features per step.
   */
  public static Builder builder(ModelFactory factory, OptimizerFactory optimizer, long features) {
    return new Builder(factory, optimizer, features);
  }

  /** The trainer's settings. */
  public static final class Builder {
    private final ModelFactory factory;
    private final OptimizerFactory optimizer;
    private final long features;
    private int workers = 2;
    private int globalBatch = 32;
    private int epochs = 1;
    private Reduction reduction = Reduction.RING;
    private String checkpointDir;
    private int checkpointEvery = 10;
    private Duration timeout = Duration.ofSeconds(120);
    private StepHook hook;

    private Builder(ModelFactory factory, OptimizerFactory optimizer, long features) {
      this.factory = Objects.requireNonNull(factory, "factory");
      this.optimizer = Objects.requireNonNull(optimizer, "optimizer");
      if (features < 1) {
        throw new IllegalArgumentException("features: expected >= 1, got " + features);
      }
      this.features = features;
    }

    /** W, the number of barrier tasks (default 2); the cluster must have W free task slots. */
    public Builder workers(int workers) {
      if (workers < 1) {
        throw new IllegalArgumentException("workers: expected >= 1, got " + workers);
      }
      this.workers = workers;
      return this;
    }

    /** B, the examples of one step over all workers (default 32); a multiple of W. */
    public Builder globalBatch(int examples) {
      if (examples < 1) {
        throw new IllegalArgumentException("globalBatch: expected >= 1, got " + examples);
      }
      this.globalBatch = examples;
      return this;
    }

    /** Passes over the data (default 1). */
    public Builder epochs(int epochs) {
      if (epochs < 1) {
        throw new IllegalArgumentException("epochs: expected >= 1, got " + epochs);
      }
      this.epochs = epochs;
      return this;
    }

    /** How gradients are summed (default {@link Reduction#RING}). */
    public Builder reduction(Reduction reduction) {
      this.reduction = Objects.requireNonNull(reduction, "reduction");
      return this;
    }

    /**
     * Where rank 0 writes checkpoints ({@code step-<n>.safetensors}, weights and optimizer state)
     * and a retried attempt resumes from; it must be one folder for all executors (a shared file
     * system on a cluster). Default: none.
     */
    public Builder checkpointDir(Path folder) {
      this.checkpointDir = folder == null ? null : folder.toAbsolutePath().toString();
      return this;
    }

    /** Steps between checkpoints (default 10). */
    public Builder checkpointEvery(int steps) {
      if (steps < 1) {
        throw new IllegalArgumentException("checkpointEvery: expected >= 1, got " + steps);
      }
      this.checkpointEvery = steps;
      return this;
    }

    /** How long a worker waits for a peer before failing the task (default 120 s). */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    Builder stepHook(StepHook hook) {
      this.hook = hook;
      return this;
    }

    /** The trainer. */
    public DataParallelTrainer build() {
      if (globalBatch % workers != 0) {
        throw new IllegalArgumentException("globalBatch: expected a multiple of workers ("
            + workers + ") so that the shards are equal, got " + globalBatch);
      }
      return new DataParallelTrainer(this);
    }
  }

  /** The steps an epoch has for {@code count} examples. */
  public long stepsPerEpoch(long count) {
    return count / globalBatch;
  }

  /**
   * Trains on {@code data} and returns the trained weights and measurements. Checked on the
   * driver first: enough task slots, at least one global batch of data, and that the model
   * accepts the first example and gives as many outputs as it has targets.
   *
   * @throws IllegalArgumentException for data or a model that do not fit (on the driver)
   * @throws org.apache.spark.SparkException when the training stage fails for good
   */
  public TrainingResult fit(JavaSparkContext sc, JavaRDD<Example> data) {
    Objects.requireNonNull(sc, "sc");
    Objects.requireNonNull(data, "data");
    int slots = sc.sc().defaultParallelism();
    if (slots < workers) {
      throw new IllegalArgumentException("workers: " + workers + " barrier tasks need as many"
          + " free task slots, the cluster has " + slots + " (spark.default.parallelism)");
    }
    long count = data.count();
    long steps = stepsPerEpoch(count);
    if (steps == 0) {
      throw new IllegalArgumentException("data: " + count + " examples are less than one global"
          + " batch of " + globalBatch);
    }
    byte[] initial;
    try (Module module = SparkModel.create(factory)) {
      checkFits(module, data.first());
      initial = Weights.of(module);
    }
    Broadcast<byte[]> weights = sc.broadcast(initial);
    try {
      long used = steps * globalBatch;
      int shard = globalBatch / workers;
      int b = globalBatch;
      JavaPairRDD<Integer, Tuple2<Long, Example>> keyed = data.zipWithIndex()
          .filter(p -> p._2() < used)
          .mapToPair(p -> new Tuple2<>((int) (p._2() % b) / shard, new Tuple2<>(p._2(), p._1())));
      RDD<Tuple2<Long, Example>> sharded = keyed.partitionBy(new ByRank(workers)).values().rdd();
      RDD<WorkerResult> results = sharded.barrier().mapPartitions(
          new Work(this, weights, steps), false, ClassTag$.MODULE$.apply(WorkerResult.class));
      // Spark retries a failed barrier stage only when it is a shuffle map stage (a failed
      // barrier result stage aborts the job), so the results go through a shuffle
      List<WorkerResult> all = new ArrayList<>(
          JavaRDD.fromRDD(results, ClassTag$.MODULE$.apply(WorkerResult.class)).repartition(1)
              .collect());
      all.sort(Comparator.comparingInt(WorkerResult::rank));
      WorkerResult first = all.get(0);
      return new TrainingResult(first.weights, first.losses, workers, first.stageAttempt,
          first.firstStep, all.stream().map(r -> r.stepMillis).toList(),
          all.stream().map(r -> r.allReduceMillis).toList(),
          all.stream().map(r -> r.hash).toList());
    } finally {
      weights.destroy();
    }
  }

  private void checkFits(Module module, Example first) {
    if (first.input().length % features != 0) {
      throw new IllegalArgumentException("data: the first example's input has "
          + first.input().length + " floats, not a whole number of steps of " + features
          + " features");
    }
    try (var off = Autograd.noGrad(); Arena arena = Arena.ofConfined()) {
      Tensor x = Sequences.timeMajor(arena, List.of(first.input()), features, "first example");
      float[][] out = Sequences.perRow(((Layer) module).forward(x), 1);
      if (out[0].length != first.target().length) {
        throw new IllegalArgumentException("data: the model gives " + out[0].length
            + " outputs per example but the first example has " + first.target().length
            + " targets");
      }
    } catch (IllegalStateException e) {
      throw new IllegalArgumentException("the model does not accept the data (" + features
          + " features per step): " + e.getMessage(), e);
    } catch (IllegalArgumentException e) {
      if (e.getMessage() != null && e.getMessage().startsWith("data:")) {
        throw e;
      }
      throw new IllegalArgumentException("the model does not accept the data (examples of "
          + first.input().length / features + " steps x " + features + " features): "
          + e.getMessage(), e);
    }
  }

  /** Partition r holds worker r's examples. */
  private static final class ByRank extends Partitioner {
    private static final long serialVersionUID = 1L;
    private final int workers;

    ByRank(int workers) {
      this.workers = workers;
    }

    @Override
    public int numPartitions() {
      return workers;
    }

    @Override
    public int getPartition(Object key) {
      return (Integer) key;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof ByRank other && other.workers == workers;
    }

    @Override
    public int hashCode() {
      return workers;
    }
  }

  /** What one worker sends back to the driver. */
  record WorkerResult(int rank, byte[] weights, List<Float> losses, int stageAttempt,
      long firstStep, double stepMillis, double allReduceMillis, int hash)
      implements Serializable {}

  /** One barrier task's whole training run. */
  private static final class Work extends AbstractFunction1<
      scala.collection.Iterator<Tuple2<Long, Example>>, scala.collection.Iterator<WorkerResult>>
      implements Serializable {
    private static final long serialVersionUID = 1L;
    private final DataParallelTrainer trainer;
    private final Broadcast<byte[]> initial;
    private final long stepsPerEpoch;

    Work(DataParallelTrainer trainer, Broadcast<byte[]> initial, long stepsPerEpoch) {
      this.trainer = trainer;
      this.initial = initial;
      this.stepsPerEpoch = stepsPerEpoch;
    }

    @Override
    public scala.collection.Iterator<WorkerResult> apply(
        scala.collection.Iterator<Tuple2<Long, Example>> input) {
      List<Tuple2<Long, Example>> local = new ArrayList<>();
      input.foreach(t -> local.add(t));
      local.sort(Comparator.comparingLong(Tuple2::_1));
      List<Example> shard = local.stream().map(Tuple2::_2).toList();
      try {
        WorkerResult result = trainer.run(BarrierTaskContext.get(), initial.value(), shard,
            stepsPerEpoch);
        return scala.jdk.javaapi.CollectionConverters.asScala(List.of(result).iterator());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  private WorkerResult run(BarrierTaskContext context, byte[] initialWeights, List<Example> shard,
      long stepsPerEpoch) throws IOException {
    int rank = context.partitionId();
    int stageAttempt = context.stageAttemptNumber();
    int b = globalBatch / workers;
    if (shard.size() != stepsPerEpoch * b) {
      throw new IllegalStateException("worker " + rank + " got " + shard.size()
          + " examples, expected " + stepsPerEpoch * b);
    }
    Seq4j.setThreads(Math.max(1, context.cpus()));
    Path local = Path.of(SparkFiles.getRootDirectory(), "seq4j");
    Module module = SparkModel.create(factory);
    Optimizer opt = null;
    GradientReducer reducer = null;
    try {
      Weights.load(module, initialWeights, local);
      module.train();
      List<Parameter> parameters = module.parameters();
      opt = optimizer.create(parameters);
      String host = context.getTaskInfos()[rank].address();
      host = host.substring(0, host.lastIndexOf(':'));
      long tag = ((long) context.stageId() << 32) | stageAttempt;
      reducer = reduction == Reduction.RING
          ? RingAllReduce.connect(rank, workers, host, tag, context::allGather, timeout,
              context::isInterrupted)
          : new AllGatherReducer(context);
      long total = stepsPerEpoch * epochs;
      long first = resume(context, parameters, opt);
      int size = 0;
      for (Parameter p : parameters) {
        size += Math.toIntExact(p.shape().size());
      }
      float[] flat = new float[size + 1];
      List<Float> losses = new ArrayList<>();
      long reduceNanos = 0;
      long stepNanos = 0;
      for (long step = first; step < total; step++) {
        if (hook != null) {
          hook.beforeStep(rank, stageAttempt, step);
        }
        long t0 = System.nanoTime();
        module.zeroGrad();
        int from = (int) ((step % stepsPerEpoch) * b);
        List<Example> batch = shard.subList(from, from + b);
        float loss = gradients(module, batch, parameters, flat);
        flat[size] = loss;
        long t1 = System.nanoTime();
        reducer.sum(flat);
        reduceNanos += System.nanoTime() - t1;
        int offset = 0;
        for (Parameter p : parameters) {
          int n = Math.toIntExact(p.shape().size());
          Tensor grad = p.grad();
          for (int i = 0; i < n; i++) {
            grad.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, flat[offset + i] / workers);
          }
          grad.markChanged();
          offset += n;
        }
        opt.step();
        stepNanos += System.nanoTime() - t0;
        losses.add(flat[size] / workers);
        if (rank == 0 && checkpointDir != null
            && ((step + 1) % checkpointEvery == 0 || step + 1 == total)) {
          Path folder = Path.of(checkpointDir);
          Files.createDirectories(folder);
          Checkpoints.save(folder.resolve("step-" + (step + 1) + ".safetensors"), parameters, opt,
              Map.of("step", Long.toString(step + 1)));
        }
      }
      long done = Math.max(1, total - first);
      return new WorkerResult(rank, rank == 0 ? Weights.of(module) : null, losses, stageAttempt,
          first, stepNanos / 1e6 / done, reduceNanos / 1e6 / done, hash(parameters));
    } catch (IOException | RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("worker " + rank + ": " + e.getMessage(), e);
    } finally {
      // closing the sockets first tells the peers at once that this worker is gone
      if (reducer != null) {
        reducer.close();
      }
      if (opt != null) {
        opt.close();
      }
      module.close();
    }
  }

  /** The step to start from: 0, or the latest checkpoint every worker can read. */
  private long resume(BarrierTaskContext context, List<Parameter> parameters, Optimizer opt)
      throws IOException {
    if (checkpointDir == null) {
      return 0;
    }
    long latest = 0;
    Path folder = Path.of(checkpointDir);
    if (Files.isDirectory(folder)) {
      try (Stream<Path> files = Files.list(folder)) {
        latest = files.map(f -> f.getFileName().toString())
            .filter(n -> n.matches("step-\\d+\\.safetensors"))
            .mapToLong(n -> Long.parseLong(n.substring(5, n.length() - 12)))
            .max().orElse(0);
      }
    }
    // a checkpoint is written whole (atomically) and never changed: the smallest step all
    // workers found is one all of them can read
    long agreed = Long.MAX_VALUE;
    for (String s : context.allGather(Long.toString(latest))) {
      agreed = Math.min(agreed, Long.parseLong(s));
    }
    if (agreed > 0) {
      Checkpoints.load(folder.resolve("step-" + agreed + ".safetensors"), parameters, opt);
    }
    return agreed;
  }

  /** The mean squared error over {@code batch}; its gradients, flattened, into {@code flat}. */
  private float gradients(Module module, List<Example> batch, List<Parameter> parameters,
      float[] flat) {
    int n = batch.size();
    int k = batch.get(0).target().length;
    float[] targets = new float[n * k];
    List<float[]> inputs = new ArrayList<>(n);
    for (int r = 0; r < n; r++) {
      inputs.add(batch.get(r).input());
      System.arraycopy(batch.get(r).target(), 0, targets, r * k, k);
    }
    float loss;
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Sequences.timeMajor(arena, inputs, features, "training batch");
      Tensor prediction = ((Layer) module).forward(x);
      Tensor target = Tensor.fromArray(arena, targets, prediction.shape().dims());
      Tensor gradient = Tensor.zeros(arena, prediction.shape().dims());
      loss = Losses.meanSquaredError(prediction, target, gradient);
      prediction.backward(gradient);
    }
    int offset = 0;
    for (Parameter p : parameters) {
      int size = Math.toIntExact(p.shape().size());
      MemorySegment.copy(p.grad().segment(), ValueLayout.JAVA_FLOAT, 0, flat, offset, size);
      offset += size;
    }
    return loss;
  }

  private static int hash(List<Parameter> parameters) {
    int h = 1;
    for (Parameter p : parameters) {
      h = 31 * h + Arrays.hashCode(p.data().toArray());
    }
    return h;
  }
}
