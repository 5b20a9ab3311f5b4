package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;
import org.seq4j.Autograd;
import org.seq4j.MatmulOptions;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.internal.CallGuard;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;

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
 *
 * <p><b>Autograd.</b> While gradients are recorded (see {@link Autograd}: gradient mode on and the
 * inputs or parameters require a gradient), a {@link Mode#TRAINING} forward records its backward;
 * the explicit {@link #backward} on the same forward then throws (and the other way round), so a
 * gradient is never added twice. A {@link Mode#INFERENCE} forward saves nothing: a backward that
 * reaches its output throws, naming the call. The attention weights ({@link #forwardWithWeights})
 * are differentiable too: their gradient flows into the queries, keys and parameters, as in
 * PyTorch. Dropout applies in training mode ({@link #isTraining()}) of a {@link Mode#TRAINING}
 * forward.
 */
public final class MultiHeadAttention extends Module {
  private final long embedDim;
  private final int heads;
  private final long keyDim;
  private final long valueDim;
  private final boolean batchFirst;
  private final float dropout;
  private final Arena arena;
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
    private final ScaledDotProductAttention.Options options;
    /** The attention weights before dropout (N, H, L, S) when weights were returned, or null. */
    private final Tensor probabilities;
    private final boolean averaged;
    /** Whether q, k and v are the parts of one (3, N, H, L, d) tensor (packed self-attention). */
    private final boolean packed;
    private Autograd.Recording recording;

    private Context(MultiHeadAttention owner, Tensor query, Tensor key, Tensor value, Tensor q,
        Tensor k, Tensor v, Tensor merged, ScaledDotProductAttention.Context attention,
        ScaledDotProductAttention.Options options, Tensor probabilities, boolean averaged,
        boolean packed) {
      this.packed = packed;
      this.owner = owner;
      this.query = query;
      this.key = key;
      this.value = value;
      this.q = q;
      this.k = k;
      this.v = v;
      this.merged = merged;
      this.attention = attention;
      this.options = options;
      this.probabilities = probabilities;
      this.averaged = averaged;
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
    reclaimWhenUnreachable(arena);
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
    return registerParameter(p);
  }

  /** Rows [part·E, (part+1)·E) of the packed projection: a view, not a separate parameter. */
  private Parameter view(Parameter packed, int part) {
    try (var off = Autograd.noGrad()) { // a view for reading, not an operation of the graph
      return new Parameter(packed.name(), packed.data().slice(part * embedDim,
          (part + 1) * embedDim), packed.grad().slice(part * embedDim, (part + 1) * embedDim));
    }
  }

  /** Whether backward passes add into the gradient of the projection of {@code part}. */
  private boolean accumulates(int part) {
    Parameter registered = inProjWeight != null ? inProjWeight
        : part == 0 ? qWeight : part == 1 ? kWeight : vWeight;
    return registered.requiresGrad();
  }

  /** The data of every registered parameter: inputs of a recorded forward (leaves). */
  private List<Tensor> parameterData() {
    List<Tensor> data = new ArrayList<>();
    for (Parameter p : namedParameters().values()) {
      data.add(p.data());
    }
    return data;
  }

  private Tensor biasPart(boolean gradient, int part) {
    if (inProjBias == null) {
      return null;
    }
    if (gradient && !inProjBias.requiresGrad()) {
      return null; // frozen
    }
    Tensor whole = gradient ? inProjBias.grad() : inProjBias.data();
    try (var off = Autograd.noGrad()) {
      return whole.slice(part * embedDim, (part + 1) * embedDim);
    }
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
   * @param options masks and scale; its dropout is replaced by this layer's (applied in a {@link
   *     Mode#TRAINING} forward while the layer is in training mode)
   */
  public Result forward(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, Mode mode) {
    requireMode(mode);
    return forward(arena, query, key, value, options, false, true, mode == Mode.TRAINING,
        mode == Mode.TRAINING && isTraining(), "MultiHeadAttention.forward");
  }

  /**
   * {@link #forward} that also returns the attention weights averaged over the heads {@code (N, L,
   * S)} (PyTorch's {@code need_weights=True}): the full matrix the memory-efficient path avoids.
   * As in PyTorch, they are the weights the output was computed with, dropout included; their
   * gradient flows back into the queries, keys and parameters.
   */
  public Result forwardWithWeights(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, Mode mode) {
    return forwardWithWeights(arena, query, key, value, options, true, mode);
  }

  /**
   * {@link #forwardWithWeights(Arena, Tensor, Tensor, Tensor, ScaledDotProductAttention.Options,
   * Mode)} with PyTorch's {@code average_attn_weights}: when false, the weights are per head,
   * {@code (N, heads, L, S)}.
   */
  public Result forwardWithWeights(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, boolean averageWeights, Mode mode) {
    requireMode(mode);
    return forward(arena, query, key, value, options, true, averageWeights, mode == Mode.TRAINING,
        mode == Mode.TRAINING && isTraining(), "MultiHeadAttention.forwardWithWeights");
  }

  private static void requireMode(Mode mode) {
    if (mode == null) {
      throw new NullPointerException("mode");
    }
  }

  /**
   * The forward behind every entry: {@code keepContext} saves what a backward needs (and records
   * when gradients are recorded), {@code dropoutOn} applies this layer's dropout.
   */
  Result forward(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, boolean needWeights, boolean averageWeights,
      boolean keepContext, boolean dropoutOn, String call) {
    guard.enter();
    try {
      // List.of refuses nulls: an absent tensor is checked, and named, by the forward below
      List<Tensor> inputs = new ArrayList<>(java.util.Arrays.asList(query, key, value));
      inputs.addAll(parameterData());
      Result result;
      try (var off = Autograd.noGrad()) {
        result = forwardUnguarded(arena, query, key, value, options, needWeights,
            averageWeights, keepContext, dropoutOn);
      }
      List<Tensor> outputs = java.util.Arrays.asList(result.output(), result.weights());
      if (result.context() == null) {
        Autograd.recordUnsupported(call + " in Mode.INFERENCE", "run it in Mode.TRAINING to"
            + " compute gradients, or under Autograd.noGrad() when none are wanted", inputs,
            outputs);
      } else {
        List<Tensor> saved = new ArrayList<>(inputs);
        Context context = result.context();
        context.recording = Autograd.recordConsumable(call, inputs, outputs, saved,
            (scratch, g) -> {
              // query, key and value one tensor: its gradient once, the sum of the three
              Gradients grads = context.packed ? backwardSummed(scratch, context, g[0], g[1])
                  : backwardInternal(scratch, context, g[0], g[1]);
              Tensor[] out = new Tensor[inputs.size()];
              out[0] = grads.query();
              out[1] = grads.key();
              out[2] = grads.value();
              return out;
            });
      }
      return result;
    } finally {
      guard.exit();
    }
  }

  private Result forwardUnguarded(Arena arena, Tensor query, Tensor key, Tensor value,
      ScaledDotProductAttention.Options options, boolean needWeights, boolean averageWeights,
      boolean keepContext, boolean dropoutOn) {
    if (options == null) {
      throw new NullPointerException("options");
    }
    long[] sizes = check(query, key, value);
    long l = sizes[0];
    long s = sizes[1];
    long n = sizes[2];
    long d = embedDim / heads;
    // (L, N, E) rows -> projections -> (N, H, L, d)
    boolean packed = isSelfAttention(query, key, value);
    Tensor q;
    Tensor k;
    Tensor v;
    if (packed) {
      Tensor qkv = packedHeads(arena, query, l, n, d);
      q = part(qkv, 0);
      k = part(qkv, 1);
      v = part(qkv, 2);
    } else {
      q = toHeads(arena, project(arena, query, qWeight, biasPart(false, 0), l, n), l, n, d);
      k = toHeads(arena, project(arena, key, kWeight, biasPart(false, 1), s, n), s, n, d);
      v = toHeads(arena, project(arena, value, vWeight, biasPart(false, 2), s, n), s, n, d);
    }
    float p = dropoutOn ? dropout : 0f;
    ScaledDotProductAttention.Options attentionOptions = options.dropout(p, dropoutSeeds.next());
    // the kernel drops out only in its training mode (which also keeps the log-sum-exp)
    ScaledDotProductAttention.Result attended = ScaledDotProductAttention.forward(arena, q, k, v,
        attentionOptions, keepContext || p > 0 ? Mode.TRAINING : Mode.INFERENCE);
    Tensor merged = fromHeads(arena, attended.output(), l, n, d); // rows, the layer's order
    Tensor outRows = Tensor.uninitialized(arena, l * n, embedDim);
    linear(merged, outWeight.data(), outBias == null ? null : outBias.data(), outRows);
    Tensor output = layout(outRows, l, n, embedDim);
    Tensor weights = null;
    Tensor probabilities = null;
    if (needWeights) {
      probabilities = ScaledDotProductAttention.weights(arena, q, k, attentionOptions);
      // the kernel's dropout mask is that of seq4j_dropout over the (N, H, L, S) index, so the
      // weights returned are exactly those the output was computed with (as PyTorch's)
      Tensor used = probabilities;
      if (p > 0) {
        used = Tensor.uninitialized(arena, probabilities.shape().dims());
        NativeBindings.dropout(used.segment(), probabilities.segment(), used.size(), p,
            attentionOptions.seed());
      }
      if (averageWeights) {
        weights = Tensor.zeros(arena, n, l, s);
        for (long b = 0; b < n; b++) {
          Tensor batch = used.slice(b, b + 1).reshape(heads, l * s);
          Tensor into = weights.slice(b, b + 1).reshape(1, l * s);
          for (int h = 0; h < heads; h++) {
            TensorOps.axpy(1f / heads, batch.slice(h, h + 1), into);
          }
        }
      } else {
        weights = used == probabilities ? probabilities.copy(arena) : used;
      }
    }
    Context context = keepContext ? new Context(this, query, key, value, q, k, v, merged,
        attended.context(), attentionOptions, probabilities, averageWeights, packed) : null;
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
      if (step == null) {
        throw new NullPointerException("step");
      }
      List<Tensor> inputs = new ArrayList<>(List.of(step));
      inputs.addAll(parameterData());
      Tensor out;
      try (var off = Autograd.noGrad()) {
        out = forwardStepUnguarded(arena, step, cache);
      }
      Autograd.recordUnsupported("MultiHeadAttention.forwardStep", "incremental decoding is"
          + " for inference: run it under Autograd.noGrad(), or train with forward in"
          + " Mode.TRAINING", inputs, List.of(out));
      return out;
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
    return layout(outRows, t, n, embedDim);
  }

  /**
   * Gradients of the inputs for the gradient of the output; adds into every parameter's gradient
   * (except frozen ones).
   *
   * @throws IllegalStateException if the graph's backward already ran through this forward
   */
  public Gradients backward(Arena arena, Context context, Tensor gradOutput) {
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    return backward(arena, context, gradOutput, null);
  }

  /**
   * Gradients of the inputs for the gradients of the output and of the attention weights that
   * {@link #forwardWithWeights} returned (either may be null, not both); adds into every
   * parameter's gradient (except frozen ones).
   *
   * @throws IllegalStateException if the graph's backward already ran through this forward
   */
  public Gradients backward(Arena arena, Context context, Tensor gradOutput, Tensor gradWeights) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (gradOutput == null && gradWeights == null) {
      throw new NullPointerException("gradOutput, gradWeights: expected at least one gradient");
    }
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another MultiHeadAttention;"
          + " pass the context of this layer's forward");
    }
    if (context.recording != null) {
      context.recording.consumeExplicitly("MultiHeadAttention.backward");
    }
    return backwardInternal(arena, context, gradOutput, gradWeights);
  }

  /** The backward without claiming the forward's recording (the graph's backward calls this). */
  Gradients backwardInternal(Arena arena, Context context, Tensor gradOutput, Tensor gradWeights) {
    guard.enter();
    try (var off = Autograd.noGrad()) {
      return backwardUnguarded(arena, context, gradOutput, gradWeights, false);
    } finally {
      guard.exit();
    }
  }

  /**
   * The gradient of a self-attention's one input (query, key and value the same tensor): the sum
   * of the three gradients, for the encoder and decoder layers.
   */
  Tensor backwardSelf(Arena arena, Context context, Tensor gradOutput) {
    Gradients g = backwardSummed(arena, context, gradOutput, null);
    return g.key() == null ? g.query()
        : ResidualOps.add(arena, ResidualOps.add(arena, g.query(), g.key()), g.value());
  }

  /**
   * After a packed forward, the summed input gradient as query's (key's and value's null), by
   * one product against the packed projection; otherwise the three gradients.
   */
  private Gradients backwardSummed(Arena arena, Context context, Tensor gradOutput,
      Tensor gradWeights) {
    guard.enter();
    try (var off = Autograd.noGrad()) {
      return backwardUnguarded(arena, context, gradOutput, gradWeights, true);
    } finally {
      guard.exit();
    }
  }

  private Gradients backwardUnguarded(Arena arena, Context context, Tensor gradOutput,
      Tensor gradWeights, boolean summed) {
    if (context.owner != this) {
      throw new IllegalArgumentException("context: it was made by another MultiHeadAttention;"
          + " pass the context of this layer's forward");
    }
    if (!context.merged.isUsable()) {
      throw new IllegalStateException("context: the arena of its forward pass is closed (or owned"
          + " by another thread)");
    }
    long[] sizes = check(context.query, context.key, context.value);
    long l = sizes[0];
    long s = sizes[1];
    long n = sizes[2];
    long d = embedDim / heads;
    Tensor gradQueryHeads;
    Tensor gradKeyHeads;
    Tensor gradValueHeads;
    // after a packed forward the three head gradients are the parts of one tensor
    Tensor packedGradient = null;
    if (context.packed) {
      packedGradient = gradOutput != null ? Tensor.uninitialized(arena, 3, n, heads, l, d)
          : Tensor.zeros(arena, 3, n, heads, l, d);
    }
    if (gradOutput != null) {
      Shape expected = batchFirst ? Shape.of(n, l, embedDim) : Shape.of(l, n, embedDim);
      if (!gradOutput.shape().equals(expected)) {
        throw new IllegalArgumentException("gradOutput: expected shape " + expected
            + " (the output's), got " + gradOutput.shape());
      }
      Checks.usable(gradOutput.segment(), "gradOutput");
      Tensor gradRows = rows(gradOutput, l, n, embedDim); // (L·N or N·L, E)
      // out-projection: y = m Wᵀ + b
      if (outWeight.requiresGrad()) {
        TensorOps.matmul(gradRows, context.merged, outWeight.grad(),
            MatmulOptions.DEFAULT.transposeA(true).accumulate());
      }
      if (outBias != null && outBias.requiresGrad()) {
        addColumnSums(gradRows, outBias.grad());
      }
      Tensor gradMerged = Tensor.uninitialized(arena, l * n, embedDim);
      TensorOps.matmul(gradRows, outWeight.data(), gradMerged);
      Tensor gradAttended = toHeads(arena, gradMerged, l, n, d);
      ScaledDotProductAttention.Gradients g = packedGradient != null
          ? ScaledDotProductAttention.backwardInto(context.attention, gradAttended,
              part(packedGradient, 0), part(packedGradient, 1), part(packedGradient, 2))
          : ScaledDotProductAttention.backward(arena, context.attention, gradAttended);
      gradQueryHeads = g.query();
      gradKeyHeads = g.key();
      gradValueHeads = g.value();
    } else if (packedGradient != null) {
      gradQueryHeads = part(packedGradient, 0);
      gradKeyHeads = part(packedGradient, 1);
      gradValueHeads = part(packedGradient, 2);
    } else {
      gradQueryHeads = Tensor.zeros(arena, n, heads, l, d);
      gradKeyHeads = Tensor.zeros(arena, n, heads, s, d);
      gradValueHeads = Tensor.zeros(arena, n, heads, s, d);
    }
    if (gradWeights != null) {
      weightsBackward(arena, context, gradWeights, gradQueryHeads, gradKeyHeads, l, s, n, d);
    }
    if (summed && packedGradient != null) {
      return new Gradients(packedInputGradient(arena, context, packedGradient, l, n, d), null,
          null);
    }
    Tensor gradQuery = projectBackward(arena, context.query,
        fromHeads(arena, gradQueryHeads, l, n, d), qWeight, 0, l, n, embedDim);
    Tensor gradKey = projectBackward(arena, context.key, fromHeads(arena, gradKeyHeads, s, n, d),
        kWeight, 1, s, n, keyDim);
    Tensor gradValue = projectBackward(arena, context.value,
        fromHeads(arena, gradValueHeads, s, n, d), vWeight, 2, s, n, valueDim);
    return new Gradients(gradQuery, gradKey, gradValue);
  }

  /**
   * Adds the gradient that flows from the returned weights into the per-head queries and keys:
   * with P = softmax(S), S = scale · q kᵀ + mask per head, and the weights W = dropout(P) (averaged
   * over heads or not), dP = dropout(dW) (the forward's mask), dS = P ⊙ (dP − rowsum(dP ⊙ P)),
   * then dq += scale · dS k and dk += scale · dSᵀ q. Masked scores have P = 0, so they get none.
   */
  private void weightsBackward(Arena arena, Context context, Tensor gradWeights,
      Tensor gradQueryHeads, Tensor gradKeyHeads, long l, long s, long n, long d) {
    if (context.probabilities == null) {
      throw new IllegalArgumentException("gradWeights: the forward returned no weights (use"
          + " forwardWithWeights)");
    }
    Shape expected = context.averaged ? Shape.of(n, l, s) : Shape.of(n, heads, l, s);
    if (!gradWeights.shape().equals(expected)) {
      throw new IllegalArgumentException("gradWeights: expected shape " + expected
          + " (the weights'), got " + gradWeights.shape());
    }
    Checks.usable(gradWeights.segment(), "gradWeights");
    Tensor gradUsed = Tensor.zeros(arena, n, heads, l, s); // the gradient of dropout(P)
    for (long b = 0; b < n; b++) {
      Tensor into = gradUsed.slice(b, b + 1).reshape(heads, l * s);
      if (context.averaged) {
        Tensor row = gradWeights.slice(b, b + 1).reshape(1, l * s);
        for (int h = 0; h < heads; h++) {
          TensorOps.axpy(1f / heads, row, into.slice(h, h + 1));
        }
      } else {
        into.copyFrom(gradWeights.slice(b, b + 1).reshape(heads, l * s));
      }
    }
    float p = context.options.dropout();
    Tensor gradProbabilities = gradUsed;
    if (p > 0) {
      gradProbabilities = Tensor.uninitialized(arena, gradUsed.shape().dims());
      NativeBindings.dropout(gradProbabilities.segment(), gradUsed.segment(), gradUsed.size(), p,
          context.options.seed());
    }
    float scale = Float.isNaN(context.options.scale()) ? (float) (1 / Math.sqrt(d))
        : context.options.scale();
    java.lang.foreign.MemorySegment probability = context.probabilities.segment();
    java.lang.foreign.MemorySegment grad = gradProbabilities.segment();
    Tensor gradScores = Tensor.uninitialized(arena, n, heads, l, s);
    java.lang.foreign.MemorySegment out = gradScores.segment();
    var f = java.lang.foreign.ValueLayout.JAVA_FLOAT;
    for (long row = 0; row < n * heads * l; row++) {
      long base = row * s;
      double dot = 0;
      for (long j = 0; j < s; j++) {
        dot += (double) grad.getAtIndex(f, base + j) * probability.getAtIndex(f, base + j);
      }
      for (long j = 0; j < s; j++) {
        float pj = probability.getAtIndex(f, base + j);
        out.setAtIndex(f, base + j, (float) (scale * pj * (grad.getAtIndex(f, base + j) - dot)));
      }
    }
    gradScores.markChanged();
    for (long bh = 0; bh < n * heads; bh++) {
      Tensor ds = gradScores.reshape(n * heads, l * s).slice(bh, bh + 1).reshape(l, s);
      Tensor qh = context.q.reshape(n * heads, l * d).slice(bh, bh + 1).reshape(l, d);
      Tensor kh = context.k.reshape(n * heads, s * d).slice(bh, bh + 1).reshape(s, d);
      TensorOps.matmul(ds, kh, gradQueryHeads.reshape(n * heads, l * d).slice(bh, bh + 1)
          .reshape(l, d), MatmulOptions.DEFAULT.accumulate());
      TensorOps.matmul(ds, qh, gradKeyHeads.reshape(n * heads, s * d).slice(bh, bh + 1)
          .reshape(s, d), MatmulOptions.DEFAULT.transposeA(true).accumulate());
    }
  }

  /** Whether a forward's inputs are one tensor that the packed in_proj_weight projects. */
  private boolean isSelfAttention(Tensor query, Tensor key, Tensor value) {
    return inProjWeight != null && query == key && key == value;
  }

  /**
   * Self-attention's three projections as one product against the packed {@code in_proj_weight
   * (3E, E)} (and {@code in_proj_bias}), split into heads by one permute: {@code (3, N, H, T, d)},
   * the queries', keys' and values' heads one after the other.
   */
  private Tensor packedHeads(Arena arena, Tensor input, long t, long n, long d) {
    Tensor projected = Tensor.uninitialized(arena, t * n, 3 * embedDim);
    linear(rows(input, t, n, embedDim), inProjWeight.data(),
        inProjBias == null ? null : inProjBias.data(), projected);
    Tensor out = Tensor.uninitialized(arena, 3, n, heads, t, d);
    if (batchFirst) { // (N, T, 3, H, d) -> (3, N, H, T, d)
      NativeBindings.permute(out.segment(), projected.segment(), new long[] {n, t, 3, heads, d},
          new int[] {2, 0, 3, 1, 4});
    } else { // (T, N, 3, H, d) -> (3, N, H, T, d)
      NativeBindings.permute(out.segment(), projected.segment(), new long[] {t, n, 3, heads, d},
          new int[] {2, 1, 3, 0, 4});
    }
    return out;
  }

  /**
   * The input gradient of a packed self-attention from its packed head gradients {@code (3, N,
   * H, T, d)}: merged into rows {@code (T·N, 3E)} by one permute, then one product against
   * {@code in_proj_weight} (the sum of the three inputs' gradients), one for its gradient and one
   * column sum for {@code in_proj_bias}'s.
   */
  private Tensor packedInputGradient(Arena arena, Context context, Tensor packedGradient, long t,
      long n, long d) {
    Tensor gradRows = Tensor.uninitialized(arena, t * n, 3 * embedDim);
    // (3, N, H, T, d) -> (N, T, 3, H, d) batch-first, or -> (T, N, 3, H, d) time-major
    NativeBindings.permute(gradRows.segment(), packedGradient.segment(),
        new long[] {3, n, heads, t, d}, batchFirst ? new int[] {1, 3, 0, 2, 4}
            : new int[] {3, 1, 0, 2, 4});
    Tensor inputRows = rows(context.query, t, n, embedDim);
    if (inProjWeight.requiresGrad()) {
      TensorOps.matmul(gradRows, inputRows, inProjWeight.grad(),
          MatmulOptions.DEFAULT.transposeA(true).accumulate());
    }
    if (inProjBias != null && inProjBias.requiresGrad()) {
      addColumnSums(gradRows, inProjBias.grad());
    }
    Tensor gradInputRows = Tensor.uninitialized(arena, t * n, embedDim);
    TensorOps.matmul(gradRows, inProjWeight.data(), gradInputRows);
    return layout(gradInputRows, t, n, embedDim);
  }

  /** Part {@code index} (0 queries, 1 keys, 2 values) of a packed {@code (3, N, H, T, d)}. */
  private static Tensor part(Tensor packed, int index) {
    long[] dims = packed.shape().dims();
    return packed.slice(index, index + 1).reshape(dims[1], dims[2], dims[3], dims[4]);
  }

  /** x (T·N rows, time-major) · Wᵀ + b for an input in the layer's layout. */
  private Tensor project(Arena arena, Tensor input, Parameter weight, Tensor bias, long t,
      long n) {
    Tensor inputRows = rows(input, t, n, input.dim(-1));
    Tensor out = Tensor.uninitialized(arena, t * n, embedDim);
    linear(inputRows, weight.data(), bias, out);
    return out;
  }

  private Tensor projectBackward(Arena arena, Tensor input, Tensor gradRows, Parameter weight,
      int part, long t, long n, long inputSize) {
    Tensor inputRows = rows(input, t, n, inputSize);
    if (accumulates(part)) {
      TensorOps.matmul(gradRows, inputRows, weight.grad(),
          MatmulOptions.DEFAULT.transposeA(true).accumulate());
    }
    Tensor biasGrad = biasPart(true, part);
    if (biasGrad != null) {
      addColumnSums(gradRows, biasGrad);
    }
    Tensor gradInputRows = Tensor.uninitialized(arena, t * n, inputSize);
    TensorOps.matmul(gradRows, weight.data(), gradInputRows);
    return layout(gradInputRows, t, n, inputSize);
  }

  /** out = rows · weightᵀ + bias, the bias added in the product's epilogue (seq4j_linear). */
  private static void linear(Tensor rows, Tensor weight, Tensor bias, Tensor out) {
    NativeBindings.linear(out.segment(), rows.segment(), weight.segment(),
        bias == null ? java.lang.foreign.MemorySegment.NULL : bias.segment(), rows.dim(0),
        rows.dim(1), weight.dim(0), org.seq4j.internal.AbiConstants.BACKEND_AUTO);
    out.markChanged();
  }

  private static void addColumnSums(Tensor rows, Tensor into) {
    NativeBindings.addColumnSums(into.segment(), rows.segment(), rows.dim(0), rows.dim(1));
    into.markChanged();
  }

  /*
   * Rows are kept in the layer's own order, (N·T, C) batch-first or (T·N, C) time-major: a
   * projection does not care which, so inputs and outputs need no transposition, and the heads
   * are split from and merged into rows by one permutation each.
   */

  /** The input as rows (T·N or N·T, C) in the layer's order: a view. */
  private static Tensor rows(Tensor input, long t, long n, long c) {
    return input.reshape(t * n, c);
  }

  /** Rows in the layer's order as a tensor of the layer's layout: a view. */
  private Tensor layout(Tensor rows, long t, long n, long c) {
    return batchFirst ? rows.reshape(n, t, c) : rows.reshape(t, n, c);
  }

  /** Rows (T·N or N·T, H·d) in the layer's order -> (N, H, T, d). */
  private Tensor toHeads(Arena arena, Tensor rows, long t, long n, long d) {
    Tensor out = Tensor.uninitialized(arena, n, heads, t, d);
    if (batchFirst) { // (N, T, H, d) -> (N, H, T, d)
      NativeBindings.permute(out.segment(), rows.segment(), new long[] {n, t, heads, d},
          new int[] {0, 2, 1, 3});
    } else { // (T, N, H, d) -> (N, H, T, d)
      NativeBindings.permute(out.segment(), rows.segment(), new long[] {t, n, heads, d},
          new int[] {1, 2, 0, 3});
    }
    return out;
  }

  /** (N, H, T, d) -> rows (T·N or N·T, H·d) in the layer's order. */
  private Tensor fromHeads(Arena arena, Tensor headsTensor, long t, long n, long d) {
    Tensor out = Tensor.uninitialized(arena, t * n, heads * d);
    // (N, H, T, d) -> (N, T, H, d) batch-first, or -> (T, N, H, d) time-major
    NativeBindings.permute(out.segment(), headsTensor.segment(), new long[] {n, heads, t, d},
        batchFirst ? new int[] {0, 2, 1, 3} : new int[] {2, 0, 1, 3});
    return out;
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
   * start later throw {@link IllegalStateException}. Called once by {@link #close()}.
   */
  @Override
  protected void closeResources() {
    guard.close(arena::close);
  }

  @Override
  public String toString() {
    return "MultiHeadAttention(embedDim=" + embedDim + ", heads=" + heads
        + (keyDim != embedDim ? ", kdim=" + keyDim : "")
        + (valueDim != embedDim ? ", vdim=" + valueDim : "") + ")";
  }
}
