package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import org.seq4j.MatmulOptions;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.Tape;

/**
 * Multi-head attention with PyTorch's semantics and parameter names ({@code
 * nn.MultiheadAttention}): queries, keys and values are projected ({@code in_proj_weight (3E, E)},
 * {@code in_proj_bias (3E)}; or {@code q_proj_weight}, {@code k_proj_weight}, {@code
 * v_proj_weight} when the key or value size differs from E), split into heads, attended with
 * {@link ScaledDotProductAttention}, merged and projected ({@code out_proj.weight (E, E)}, {@code
 * out_proj.bias (E)}).
 *
 * <p>Shapes: query {@code (L, N, E)}, key {@code (S, N, kdim)}, value {@code (S, N, vdim)}, output
 * {@code (L, N, E)}; with {@code batchFirst}, {@code (N, L, E)} and so on. Masks as in {@link
 * ScaledDotProductAttention.Options} over {@code (N, heads, L, S)}. Weights start as PyTorch's:
 * Xavier-uniform projections, zero biases.
 */
public final class MultiHeadAttention implements AutoCloseable {
  private final long embedDim;
  private final int heads;
  private final long keyDim;
  private final long valueDim;
  private final boolean batchFirst;
  private final float dropout;
  private final Arena arena;
  private final List<Parameter> parameters = new ArrayList<>();
  private final Parameter inProjWeight; // packed (3E, E), or null
  private final Parameter qWeight;
  private final Parameter kWeight;
  private final Parameter vWeight;
  private final Parameter inProjBias; // (3E) or null
  private final Parameter outWeight;
  private final Parameter outBias;
  private final Seeds.DropoutSeeds dropoutSeeds;
  private final CallGuard guard = new CallGuard("MultiHeadAttention", "layer");

  /** The output and, when asked, the attention weights. */
  public record Result(Tensor output, Tensor weights, Context context) {}

  /** What the backward needs. */
  public static final class Context {
    private final MultiHeadAttention owner;
    private final Tensor query;
    private final Tensor key;
    private final Tensor value;
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor merged;
    private final ScaledDotProductAttention.Context attention;

    private Context(MultiHeadAttention owner, Tensor query, Tensor key, Tensor value, Tensor q,
        Tensor k, Tensor v, Tensor merged, ScaledDotProductAttention.Context attention) {
      this.owner = owner;
      this.query = query;
      this.key = key;
      this.value = value;
      this.q = q;
      this.k = k;
      this.v = v;
      this.merged = merged;
      this.attention = attention;
    }
  }

  /** Gradients of query, key and value, in their layouts. */
  public record Gradients(Tensor query, Tensor key, Tensor value) {}

  /** A builder of a layer of {@code heads} heads over embeddings of size {@code embedDim}. */
  public static Builder builder(long embedDim, int heads) {
    return new Builder(embedDim, heads);
  }

  /** {@code embedDim} over {@code heads} heads with PyTorch's defaults: {@code builder(...).build()}. */
  public MultiHeadAttention(long embedDim, int heads) {
    this(builder(embedDim, heads));
  }

  /**
   * The options of a {@link MultiHeadAttention}, PyTorch's defaults unless set: keys and values of
   * size embedDim, biases, no dropout, time-major inputs.
   */
  public static final class Builder {
    private final long embedDim;
    private final int heads;
    private long keyDim;
    private long valueDim;
    private boolean bias = true;
    private float dropout;
    private boolean batchFirst;
    private long seed = Seeds.DEFAULT_SEED;

    private Builder(long embedDim, int heads) {
      this.embedDim = embedDim;
      this.heads = heads;
    }

    /** The size of the keys ({@code kdim}; default embedDim). */
    public Builder keyDim(long keyDim) {
      this.keyDim = keyDim;
      return this;
    }

    /** The size of the values ({@code vdim}; default embedDim). */
    public Builder valueDim(long valueDim) {
      this.valueDim = valueDim;
      return this;
    }

    /** Whether the projections have biases (default true). */
    public Builder bias(boolean bias) {
      this.bias = bias;
      return this;
    }

    /** Dropout on the attention weights in training (default 0). */
    public Builder dropout(float probability) {
      this.dropout = probability;
      return this;
    }

    /** Whether inputs and outputs are {@code (N, L, E)} (default false: {@code (L, N, E)}). */
    public Builder batchFirst(boolean batchFirst) {
      this.batchFirst = batchFirst;
      return this;
    }

    /** The seed of the initial weights and of dropout (default fixed, so runs repeat). */
    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    /** The layer. */
    public MultiHeadAttention build() {
      return new MultiHeadAttention(this);
    }
  }

  private MultiHeadAttention(Builder options) {
    long embedDim = options.embedDim;
    int heads = options.heads;
    if (embedDim < 1 || heads < 1 || embedDim % heads != 0) {
      throw new IllegalArgumentException("embedDim, heads: expected embedDim divisible by heads,"
          + " both >= 1, got " + embedDim + " and " + heads);
    }
    if (!(options.dropout >= 0 && options.dropout < 1)) {
      throw new IllegalArgumentException("dropout: expected 0 <= p < 1, got " + options.dropout);
    }
    if (options.keyDim < 0 || options.valueDim < 0) {
      throw new IllegalArgumentException("keyDim, valueDim: expected >= 1 (or 0 for embedDim),"
          + " got " + options.keyDim + " and " + options.valueDim);
    }
    long widest = Math.max(embedDim, Math.max(options.keyDim, options.valueDim));
    Checks.multiply(Checks.multiply(Checks.multiply(3, embedDim, "embedDim", "in_proj_weight"),
        widest, "embedDim", "the projections (3 * " + embedDim + ", " + widest + ")"),
        Float.BYTES, "embedDim", "the projections (3 * " + embedDim + ", " + widest + ")");
    this.embedDim = embedDim;
    this.heads = heads;
    this.keyDim = options.keyDim == 0 ? embedDim : options.keyDim;
    this.valueDim = options.valueDim == 0 ? embedDim : options.valueDim;
    this.batchFirst = options.batchFirst;
    this.dropout = options.dropout;
    this.dropoutSeeds = new Seeds.DropoutSeeds(options.seed);
    if (this.keyDim < 1 || this.valueDim < 1) {
      throw new IllegalArgumentException("keyDim, valueDim: expected >= 1 (or 0 for embedDim), got "
          + options.keyDim + " and " + options.valueDim);
    }
    this.arena = Arena.ofShared();
    boolean built = false;
    try { // all or nothing: a failed allocation frees the parameters before it
      RandomGenerator random = Seeds.generator(options.seed);
      boolean packed = this.keyDim == embedDim && this.valueDim == embedDim;
      if (packed) {
        inProjWeight = parameter("in_proj_weight", xavier(random, 3 * embedDim, embedDim),
            3 * embedDim, embedDim);
        qWeight = view(inProjWeight, 0);
        kWeight = view(inProjWeight, 1);
        vWeight = view(inProjWeight, 2);
      } else {
        inProjWeight = null;
        qWeight = parameter("q_proj_weight", xavier(random, embedDim, embedDim), embedDim,
            embedDim);
        kWeight = parameter("k_proj_weight", xavier(random, embedDim, this.keyDim), embedDim,
            this.keyDim);
        vWeight = parameter("v_proj_weight", xavier(random, embedDim, this.valueDim), embedDim,
            this.valueDim);
      }
      inProjBias = options.bias ? parameter("in_proj_bias", null, 3 * embedDim) : null;
      outWeight = parameter("out_proj.weight", uniform(random,
          1 / Math.sqrt(embedDim), embedDim, embedDim), embedDim, embedDim);
      outBias = options.bias ? parameter("out_proj.bias", null, embedDim) : null;
      built = true;
    } finally {
      if (!built) {
        arena.close();
      }
    }
  }

  private Tensor xavier(RandomGenerator random, long rows, long columns) {
    // PyTorch initialises the packed in_proj_weight as one (3E, E) matrix
    return uniform(random, Math.sqrt(6.0 / (rows + columns)), rows, columns);
  }

  private Tensor uniform(RandomGenerator random, double bound, long... dims) {
    Tensor t = Tensor.zeros(arena, dims);
    for (long i = 0; i < t.size(); i++) {
      t.segment().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i,
          (float) ((random.nextDouble() * 2 - 1) * bound));
    }
    return t;
  }

  private Parameter parameter(String name, Tensor data, long... dims) {
    Parameter p = new Parameter(name, data != null ? data : Tensor.zeros(arena, dims),
        Tensor.zeros(arena, dims));
    parameters.add(p);
    return p;
  }

  /** Rows [part·E, (part+1)·E) of the packed projection: a view, not a separate parameter. */
  private Parameter view(Parameter packed, int part) {
    return new Parameter(packed.name(), packed.data().slice(part * embedDim, (part + 1) * embedDim),
        packed.grad().slice(part * embedDim, (part + 1) * embedDim));
  }

  private Tensor biasPart(boolean gradient, int part) {
    if (inProjBias == null) {
      return null;
    }
    Tensor whole = gradient ? inProjBias.grad() : inProjBias.data();
    return whole.slice(part * embedDim, (part + 1) * embedDim);
  }

  /** The parameters, under PyTorch's names, in PyTorch's order. */
  public List<Parameter> parameters() {
    return List.copyOf(parameters);
  }

  /** The number of heads. */
  public int heads() {
    return heads;
  }

  /** The size of the queries and of the output (E), for the callers' entry checks. */
  long embedDimension() {
    return embedDim;
  }

  /** Whether inputs are {@code (N, L, E)}, for the callers' entry checks. */
  boolean isBatchFirst() {
    return batchFirst;
  }

  /**
   * Attends {@code query} over {@code key}/{@code value}; the result's weights are null.
   *
   * @param options masks and scale; its dropout is replaced by this layer's (applied in training)
   */
  public Result forward(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, Mode mode) {
    return forward(arena, query, key, value, options, false, mode);
  }

  /**
   * {@link #forward} that also returns the attention weights averaged over the heads {@code (N, L,
   * S)} (PyTorch's {@code need_weights=True}): the full matrix the memory-efficient path avoids.
   */
  public Result forwardWithWeights(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, Mode mode) {
    return forward(arena, query, key, value, options, true, mode);
  }

  private Result forward(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, boolean needWeights, Mode mode) {
    guard.enter();
    try {
      return forwardUnguarded(arena, query, key, value, options, needWeights, mode);
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, boolean needWeights, Mode mode) {
    if (options == null) {
      throw new NullPointerException("options");
    }
    if (mode == null) {
      throw new NullPointerException("mode");
    }
    long[] sizes = check(query, key, value);
    long l = sizes[0];
    long s = sizes[1];
    long n = sizes[2];
    long d = embedDim / heads;
    // (L, N, E) rows -> projections -> (N, H, L, d)
    Tensor q = toHeads(arena, project(arena, query, qWeight, biasPart(false, 0), l, n), l, n, d);
    Tensor k = toHeads(arena, project(arena, key, kWeight, biasPart(false, 1), s, n), s, n, d);
    Tensor v = toHeads(arena, project(arena, value, vWeight, biasPart(false, 2), s, n), s, n, d);
    ScaledDotProductAttention.Options attentionOptions =
        options.dropout(mode == Mode.TRAINING ? dropout : 0f, dropoutSeeds.next());
    ScaledDotProductAttention.Result attended =
        ScaledDotProductAttention.forward(arena, q, k, v, attentionOptions, mode);
    Tensor merged = fromHeads(arena, attended.output(), l, n, d); // (L·N, E) rows, time-major
    Tensor outRows = Tensor.uninitialized(arena, l * n, embedDim);
    linear(merged, outWeight.data(), outBias == null ? null : outBias.data(), outRows);
    Tensor output = layout(arena, outRows, l, n, embedDim);
    Tensor weights = null;
    if (needWeights) {
      Tensor all = ScaledDotProductAttention.weights(arena, q, k, attentionOptions);
      weights = Tensor.zeros(arena, n, l, s);
      for (long b = 0; b < n; b++) {
        for (int h = 0; h < heads; h++) {
          TensorOps.axpy(1f / heads, all.slice(b, b + 1).reshape(heads, l, s).slice(h, h + 1)
              .reshape(l, s), weights.slice(b, b + 1).reshape(l, s));
        }
      }
    }
    Context context = mode == Mode.TRAINING
        ? new Context(this, query, key, value, q, k, v, merged, attended.context()) : null;
    Tape tape = Tape.active();
    if (context != null && tape != null) {
      tape.record(List.of(query, key, value), List.of(output), gradients -> {
        List<Tensor> result = new ArrayList<>();
        if (gradients.get(0) != null) {
          Gradients g = backward(arena, context, gradients.get(0));
          result.add(g.query());
          result.add(g.key());
          result.add(g.value());
        }
        return result;
      });
    }
    return new Result(output, weights, context);
  }

  /**
   * The projected keys and values of the positions decoded so far, for incremental decoding:
   * producing token t attends over the t cached positions instead of re-projecting the whole
   * prefix, so each step costs O(t), not O(t²). Create one per sequence batch with {@link
   * #newCache}; it lives in the arena given there.
   */
  public final class Cache {
    private final Arena cacheArena;
    private final long batch;
    private final long capacity;
    private final Tensor keys; // (N, H, capacity, d)
    private final Tensor values; // (N, H, capacity, d)
    private long length;

    private Cache(Arena arena, long batch, long capacity) {
      this.cacheArena = arena;
      this.batch = batch;
      this.capacity = capacity;
      long d = embedDim / heads;
      this.keys = Tensor.zeros(arena, batch, heads, capacity, d);
      this.values = Tensor.zeros(arena, batch, heads, capacity, d);
    }

    private MultiHeadAttention owner() {
      return MultiHeadAttention.this;
    }

    /** Positions cached so far. */
    public long length() {
      return length;
    }

    /** Forgets every position (for the next sequence). */
    public void clear() {
      length = 0;
    }

    /** The first {@code t} cached positions as a contiguous (N, H, t, d) tensor. */
    private Tensor prefix(Arena target, Tensor cached, long t) {
      long d = embedDim / heads;
      Tensor out = Tensor.uninitialized(target, batch, heads, t, d);
      for (long b = 0; b < batch; b++) {
        for (long h = 0; h < heads; h++) {
          long index = b * heads + h;
          out.reshape(batch * heads, t, d).slice(index, index + 1).copyFrom(
              cached.reshape(batch * heads, capacity, d).slice(index, index + 1)
                  .reshape(capacity, d).slice(0, t).reshape(1, t, d));
        }
      }
      return out;
    }
  }

  /** A cache for {@code batch} sequences of up to {@code capacity} positions, in {@code arena}. */
  public Cache newCache(Arena arena, long batch, long capacity) {
    guard.requireOpen();
    if (arena == null) {
      throw new NullPointerException("arena");
    }
    if (batch < 1 || capacity < 1) {
      throw new IllegalArgumentException(
          "batch, capacity: expected >= 1, got " + batch + " and " + capacity);
    }
    return new Cache(arena, batch, capacity);
  }

  /**
   * Self-attention for new positions during decoding (inference): projects {@code step} (one or
   * more new positions, shaped like a query), appends its keys and values to {@code cache}, and
   * attends each new position over every cached position up to itself. Equal to a causal {@link
   * #forward} over the whole sequence, position by position.
   */
  public Tensor forwardStep(Arena arena, Tensor step, Cache cache) {
    guard.enter();
    try {
      return forwardStepUnguarded(arena, step, cache);
    } finally {
      guard.exit();
    }
  }

  private Tensor forwardStepUnguarded(Arena arena, Tensor step, Cache cache) {
    if (cache == null) {
      throw new NullPointerException("cache");
    }
    if (cache.owner() != this) {
      throw new IllegalArgumentException("cache: it was made by another MultiHeadAttention; use"
          + " the cache of this layer's newCache");
    }
    if (!cache.cacheArena.scope().isAlive()) {
      throw new IllegalStateException("cache: the arena it was made in is closed");
    }
    if (keyDim != embedDim || valueDim != embedDim) {
      throw new IllegalStateException("forwardStep: self-attention needs keyDim = valueDim ="
          + " embedDim, this layer has embedDim " + embedDim + ", keyDim " + keyDim
          + " and valueDim " + valueDim);
    }
    SequenceChecks.requireSequence(step, "step", "T", embedDim, batchFirst);
    long[] sizes = check(step, step, step);
    long t = sizes[0];
    long n = sizes[2];
    if (n != cache.batch) {
      throw new IllegalArgumentException("step: expected a batch of " + cache.batch
          + " (the cache's), got " + n);
    }
    if (cache.length + t > cache.capacity) {
      throw new IllegalStateException("cache: it holds " + cache.length + " of "
          + cache.capacity + " positions; " + t + " more do not fit");
    }
    long d = embedDim / heads;
    Tensor q = toHeads(arena, project(arena, step, qWeight, biasPart(false, 0), t, n), t, n, d);
    Tensor k = toHeads(arena, project(arena, step, kWeight, biasPart(false, 1), t, n), t, n, d);
    Tensor v = toHeads(arena, project(arena, step, vWeight, biasPart(false, 2), t, n), t, n, d);
    for (long index = 0; index < n * heads; index++) {
      cache.keys.reshape(n * heads, cache.capacity, d).slice(index, index + 1)
          .reshape(cache.capacity, d).slice(cache.length, cache.length + t)
          .copyFrom(k.reshape(n * heads, t, d).slice(index, index + 1).reshape(t, d));
      cache.values.reshape(n * heads, cache.capacity, d).slice(index, index + 1)
          .reshape(cache.capacity, d).slice(cache.length, cache.length + t)
          .copyFrom(v.reshape(n * heads, t, d).slice(index, index + 1).reshape(t, d));
    }
    long total = cache.length + t;
    Tensor keys = cache.prefix(arena, cache.keys, total);
    Tensor values = cache.prefix(arena, cache.values, total);
    // new position i (absolute cache.length + i) sees keys j <= cache.length + i
    Tensor visible = Tensor.zeros(arena, t, total);
    for (long i = 0; i < t; i++) {
      visible.slice(i, i + 1).reshape(total).slice(0, cache.length + i + 1).fill(1f);
    }
    ScaledDotProductAttention.Result attended = ScaledDotProductAttention.forward(arena, q, keys,
        values, ScaledDotProductAttention.Options.DEFAULT.booleanMask(visible), Mode.INFERENCE);
    cache.length = total;
    Tensor merged = fromHeads(arena, attended.output(), t, n, d);
    Tensor outRows = Tensor.uninitialized(arena, t * n, embedDim);
    linear(merged, outWeight.data(), outBias == null ? null : outBias.data(), outRows);
    return layout(arena, outRows, t, n, embedDim);
  }

  /** Gradients of the inputs; adds into every parameter's gradient. */
  public Gradients backward(Arena arena, Context context, Tensor gradOutput) {
    guard.enter();
    try {
      return backwardUnguarded(arena, context, gradOutput);
    } finally {
      guard.exit();
    }
  }

  private Gradients backwardUnguarded(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another MultiHeadAttention;"
          + " pass the context of this layer's forward");
    }
    if (!context.merged.isUsable()) {
      throw new IllegalStateException("context: the arena of its forward pass is closed (or owned"
          + " by another thread)");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    long[] sizes = check(context.query, context.key, context.value);
    long l = sizes[0];
    long s = sizes[1];
    long n = sizes[2];
    long d = embedDim / heads;
    Shape expected = batchFirst ? Shape.of(n, l, embedDim) : Shape.of(l, n, embedDim);
    if (!gradOutput.shape().equals(expected)) {
      throw new IllegalArgumentException("gradOutput: expected shape " + expected
          + " (the output's), got " + gradOutput.shape());
    }
    Checks.usable(gradOutput.segment(), "gradOutput");
    Tensor gradRows = rows(arena, gradOutput, l, n, embedDim); // (L·N, E)
    // out-projection: y = m Wᵀ + b
    TensorOps.matmul(gradRows, context.merged, outWeight.grad(),
        MatmulOptions.DEFAULT.transposeA(true).accumulate());
    if (outBias != null) {
      addColumnSums(arena, gradRows, outBias.grad());
    }
    Tensor gradMerged = Tensor.uninitialized(arena, l * n, embedDim);
    TensorOps.matmul(gradRows, outWeight.data(), gradMerged);
    Tensor gradAttended = toHeads(arena, gradMerged, l, n, d);
    ScaledDotProductAttention.Gradients g =
        ScaledDotProductAttention.backward(arena, context.attention, gradAttended);
    Tensor gradQuery = projectBackward(arena, context.query, fromHeads(arena, g.query(), l, n, d),
        qWeight, 0, l, n, embedDim);
    Tensor gradKey = projectBackward(arena, context.key, fromHeads(arena, g.key(), s, n, d),
        kWeight, 1, s, n, keyDim);
    Tensor gradValue = projectBackward(arena, context.value, fromHeads(arena, g.value(), s, n, d),
        vWeight, 2, s, n, valueDim);
    return new Gradients(gradQuery, gradKey, gradValue);
  }

  /** x (T·N rows, time-major) · Wᵀ + b for an input in the layer's layout. */
  private Tensor project(Arena arena, Tensor input, Parameter weight, Tensor bias, long t,
      long n) {
    Tensor inputRows = rows(arena, input, t, n, input.dim(-1));
    Tensor out = Tensor.uninitialized(arena, t * n, embedDim);
    linear(inputRows, weight.data(), bias, out);
    return out;
  }

  private Tensor projectBackward(Arena arena, Tensor input, Tensor gradRows, Parameter weight,
      int part, long t, long n, long inputSize) {
    Tensor inputRows = rows(arena, input, t, n, inputSize);
    TensorOps.matmul(gradRows, inputRows, weight.grad(),
        MatmulOptions.DEFAULT.transposeA(true).accumulate());
    Tensor biasGrad = biasPart(true, part);
    if (biasGrad != null) {
      addColumnSums(arena, gradRows, biasGrad);
    }
    Tensor gradInputRows = Tensor.uninitialized(arena, t * n, inputSize);
    TensorOps.matmul(gradRows, weight.data(), gradInputRows);
    return layout(arena, gradInputRows, t, n, inputSize);
  }

  private static void linear(Tensor rows, Tensor weight, Tensor bias, Tensor out) {
    TensorOps.matmul(rows, weight, out, MatmulOptions.DEFAULT.transposeB(true));
    if (bias != null) {
      try (Arena call = Arena.ofConfined()) {
        TensorOps.matmul(Tensor.ones(call, rows.dim(0), 1), bias.reshape(1, bias.size()), out,
            MatmulOptions.DEFAULT.accumulate());
      }
    }
  }

  private static void addColumnSums(Arena arena, Tensor rows, Tensor into) {
    Tensor ones = Tensor.ones(arena, 1, rows.dim(0));
    TensorOps.matmul(ones, rows, into.reshape(1, into.size()), MatmulOptions.DEFAULT.accumulate());
  }

  /** The input as time-major rows (T·N, C): a view, or a transposed copy when batch-first. */
  private Tensor rows(Arena arena, Tensor input, long t, long n, long c) {
    if (!batchFirst) {
      return input.reshape(t * n, c);
    }
    Tensor out = Tensor.uninitialized(arena, t, n, c);
    swap(input, out, n, t, c);
    return out.reshape(t * n, c);
  }

  /** Time-major rows (T·N, C) in the layer's layout. */
  private Tensor layout(Arena arena, Tensor timeMajorRows, long t, long n, long c) {
    if (!batchFirst) {
      return timeMajorRows.reshape(t, n, c);
    }
    Tensor out = Tensor.uninitialized(arena, n, t, c);
    swap(timeMajorRows, out, t, n, c);
    return out;
  }

  /** (T·N, H·d) time-major rows -> (N, H, T, d). */
  private Tensor toHeads(Arena arena, Tensor rows, long t, long n, long d) {
    Tensor batchMajor = Tensor.uninitialized(arena, n, t, heads * d);
    swap(rows, batchMajor, t, n, heads * d);
    Tensor out = Tensor.uninitialized(arena, n, heads, t, d);
    for (long b = 0; b < n; b++) {
      swap(batchMajor.slice(b, b + 1), out.slice(b, b + 1), t, heads, d);
    }
    return out;
  }

  /** (N, H, T, d) -> (T·N, H·d) time-major rows. */
  private Tensor fromHeads(Arena arena, Tensor headsTensor, long t, long n, long d) {
    Tensor batchMajor = Tensor.uninitialized(arena, n, t, heads * d);
    for (long b = 0; b < n; b++) {
      swap(headsTensor.slice(b, b + 1), batchMajor.slice(b, b + 1), heads, t, d);
    }
    Tensor out = Tensor.uninitialized(arena, t, n, heads * d);
    swap(batchMajor, out, n, t, heads * d);
    return out.reshape(t * n, heads * d);
  }

  /** out (b, a, c) = in (a, b, c). */
  private static void swap(Tensor in, Tensor out, long a, long b, long c) {
    NativeBindings.swapLeadingAxes(out.segment(), in.segment(), a, b, c);
  }

  /** {L, S, N} after checking the three inputs. */
  private long[] check(Tensor query, Tensor key, Tensor value) {
    String layout = batchFirst ? "(N, L, " : "(L, N, ";
    requireShape(query, "query", embedDim, layout);
    requireShape(key, "key", keyDim, batchFirst ? "(N, S, " : "(S, N, ");
    requireShape(value, "value", valueDim, batchFirst ? "(N, S, " : "(S, N, ");
    long n = batchFirst ? query.dim(0) : query.dim(1);
    long l = batchFirst ? query.dim(1) : query.dim(0);
    long s = batchFirst ? key.dim(1) : key.dim(0);
    long keyBatch = batchFirst ? key.dim(0) : key.dim(1);
    if (keyBatch != n || !key.shape().equals(Shape.of(key.dim(0), key.dim(1), keyDim))
        || value.dim(0) != key.dim(0) || value.dim(1) != key.dim(1)) {
      throw new IllegalArgumentException("key, value: expected the same batch (" + n
          + ") and source length, got key " + key.shape() + " and value " + value.shape());
    }
    Checks.usable(query.segment(), "query");
    Checks.usable(key.segment(), "key");
    Checks.usable(value.segment(), "value");
    return new long[] {l, s, n};
  }

  private static void requireShape(Tensor t, String name, long features, String layout) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (t.shape().rank() != 3 || t.dim(2) != features) {
      throw new IllegalArgumentException(
          name + ": expected shape " + layout + features + "), got " + t.shape());
    }
  }

  /**
   * Frees the parameters, after waiting for the calls in flight on other threads; calls that
   * start later throw {@link IllegalStateException}. Closing again does nothing.
   */
  @Override
  public void close() {
    guard.close(arena::close);
  }
}
