package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.seq4j.Autograd;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.AbiLayouts;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;

/**
 * Scaled dot-product attention, "Attention Is All You Need" (Vaswani et al.), forward and
 * backward, memory-efficient: {@code out = dropout(softmax(scale · q kᵀ + mask)) v} computed tile
 * by tile with an online softmax, so no {@code Tq × Tk} matrix is held and memory grows linearly
 * in the sequence length; the backward recomputes the tiles from each row's saved log-sum-exp.
 *
 * <p>Shapes: {@code q (N, Hq, Tq, d)}, {@code k (N, Hkv, Tk, d)}, {@code v (N, Hkv, Tk, dv)},
 * output {@code (N, Hq, Tq, dv)}. {@code Hq} must be a multiple of {@code Hkv}: with fewer
 * key/value heads (grouped-query attention) query head {@code h} reads key/value head {@code h /
 * (Hq / Hkv)}. Masks ({@link Options}): causal; a boolean (1 = attend, 0 = masked) or additive
 * float mask broadcastable to {@code (N, Hq, Tq, Tk)}; a key padding mask {@code (N, Tk)} (1 =
 * ignore that key, as PyTorch's {@code key_padding_mask}). A query whose keys are all masked gets
 * a zero output and zero gradients (PyTorch's math attention since 2.5), not NaN.
 *
 * <p>Non-finite values propagate as in PyTorch's math {@code scaled_dot_product_attention}, the
 * same on every kernel copy ({@link org.seq4j.Seq4j#selectKernels}): masks are added as
 * {@code -inf}, so a NaN score stays NaN where masked too.
 *
 * <table class="striped">
 * <caption>Non-finite inputs and what they give</caption>
 * <tr><th scope="col">input</th><th scope="col">output</th></tr>
 * <tr><td>every key of query i masked (scores all {@code -inf}, none NaN)</td>
 *     <td>row i zero, zero gradients</td></tr>
 * <tr><td>NaN in {@code q[i]}, or a NaN additive mask value in row i</td>
 *     <td>row i all NaN</td></tr>
 * <tr><td>NaN in {@code k[j]}</td><td>every row of that head NaN (also where key j is masked,
 *     NaN + -inf = NaN)</td></tr>
 * <tr><td>a {@code +inf} score (±inf in q or k, a +inf additive mask)</td>
 *     <td>that row all NaN ({@code exp(inf - inf)})</td></tr>
 * <tr><td>{@code -inf} scores</td><td>as masked keys</td></tr>
 * <tr><td>NaN in {@code v[j][e]}</td><td>column e of every row of the head NaN ({@code 0 · NaN},
 *     also for masked or dropped weights)</td></tr>
 * <tr><td>±inf in {@code v[j][e]}</td><td>±inf in column e where the weights are positive, NaN
 *     where a weight is zero</td></tr>
 * </table>
 *
 * <p>The backward gives NaN gradients wherever the forward's row was NaN, and {@link #weights}
 * NaN rows where the forward's are NaN. Causal attention skips the tiles above the diagonal only
 * while a head's q, k and v (and an additive mask) are finite, so the table holds there too.
 */
public final class ScaledDotProductAttention {
  private ScaledDotProductAttention() {}

  /**
   * Options of attention. Start from {@link #DEFAULT}.
   *
   * @param causal whether key j is hidden from query i when j > i (PyTorch's {@code is_causal})
   * @param scale the factor of the scores, or NaN for {@code 1/√d}
   * @param mask a mask broadcastable to {@code (N, Hq, Tq, Tk)}, or null
   * @param booleanMask whether {@code mask} holds 1 (attend) / 0 (masked) rather than additive
   *     values
   * @param keyPaddingMask {@code (N, Tk)} with 1 for keys to ignore, or null
   * @param dropout probability of dropping an attention weight in training
   * @param seed the seed of dropout
   */
  public record Options(boolean causal, float scale, Tensor mask, boolean booleanMask,
      Tensor keyPaddingMask, float dropout, long seed) {
    /** No mask, default scale, no dropout. */
    public static final Options DEFAULT = new Options(false, Float.NaN, null, false, null, 0f, 0);

    /** Checks dropout and scale. */
    public Options {
      if (!(dropout >= 0f && dropout < 1f)) {
        throw new IllegalArgumentException("dropout: expected 0 <= p < 1, got " + dropout);
      }
      if (Float.isInfinite(scale)) {
        throw new IllegalArgumentException("scale: expected a finite value or NaN, got " + scale);
      }
    }

    /** These options with causal masking on or off. */
    public Options causal(boolean on) {
      return new Options(on, scale, mask, booleanMask, keyPaddingMask, dropout, seed);
    }

    /** These options with another scale. */
    public Options scale(float factor) {
      return new Options(causal, factor, mask, booleanMask, keyPaddingMask, dropout, seed);
    }

    /** These options with an additive float mask. */
    public Options additiveMask(Tensor additive) {
      return new Options(causal, scale, additive, false, keyPaddingMask, dropout, seed);
    }

    /** These options with a boolean mask: 1 where a query may attend, 0 where not. */
    public Options booleanMask(Tensor attend) {
      return new Options(causal, scale, attend, true, keyPaddingMask, dropout, seed);
    }

    /** These options with a key padding mask {@code (N, Tk)}: 1 for keys to ignore. */
    public Options keyPaddingMask(Tensor ignore) {
      return new Options(causal, scale, mask, booleanMask, ignore, dropout, seed);
    }

    /** These options with dropout on the attention weights in training. */
    public Options dropout(float probability, long dropoutSeed) {
      return new Options(causal, scale, mask, booleanMask, keyPaddingMask, probability,
          dropoutSeed);
    }
  }

  /** The output and, after a training forward, what the backward needs. */
  public record Result(Tensor output, Context context) {}

  /** Gradients of the query, key and value. */
  public record Gradients(Tensor query, Tensor key, Tensor value) {}

  /** What a training forward saved: its inputs, output and per-row log-sum-exp. */
  public static final class Context {
    private final Tensor q;
    private final Tensor k;
    private final Tensor v;
    private final Tensor out;
    private final Tensor lse;
    private final Options options;
    private Autograd.Recording recording;

    private Context(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, Options options) {
      this.q = q;
      this.k = k;
      this.v = v;
      this.out = out;
      this.lse = lse;
      this.options = options;
    }
  }

  /**
   * The attention of {@code q} over {@code k} and {@code v}; in {@link Mode#TRAINING} the result
   * carries a context for {@link #backward} and dropout applies.
   */
  public static Result forward(Arena arena, Tensor q, Tensor k, Tensor v, Options options,
      Mode mode) {
    if (v == null) { // checkShapes takes null for weights(), which reads no v
      throw new NullPointerException("v");
    }
    long[] sizes = checkShapes(q, k, v, options);
    boolean training = mode == Mode.TRAINING;
    Tensor out = Tensor.uninitialized(arena, sizes[0], sizes[1], sizes[3], sizes[6]);
    Tensor lse = training ? Tensor.uninitialized(arena, sizes[0], sizes[1], sizes[3]) : null;
    try (Arena call = Arena.ofConfined()) {
      MemorySegment desc = describe(call, sizes, options, training);
      NativeBindings.attentionForward(out.segment(), lse == null ? MemorySegment.NULL
          : lse.segment(), q.segment(), k.segment(), v.segment(), maskSegment(options),
          paddingSegment(options), desc);
    }
    Context context = training ? new Context(q, k, v, out, lse, options) : null;
    List<Tensor> inputs = List.of(q, k, v); // masks are constants, as PyTorch's boolean ones
    if (context == null) {
      Autograd.recordUnsupported("ScaledDotProductAttention.forward in Mode.INFERENCE",
          "run it in Mode.TRAINING to compute gradients, or under Autograd.noGrad() when none"
              + " are wanted", inputs, List.of(out));
    } else {
      context.recording = Autograd.recordConsumable("ScaledDotProductAttention.forward", inputs,
          List.of(out), List.of(q, k, v), (scratch, g) -> {
            Gradients grads = backwardUnclaimed(scratch, context, g[0]);
            return new Tensor[] {grads.query(), grads.key(), grads.value()};
          });
    }
    return new Result(out, context);
  }

  /**
   * The gradients of q, k and v for the gradient of the output of a training forward (no
   * gradient flows into an additive mask).
   *
   * @throws IllegalStateException if the graph's backward already ran through that forward
   */
  public static Gradients backward(Arena arena, Context context, Tensor gradOutput) {
    if (context == null) {
      throw new NullPointerException("context");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (context.recording != null) {
      context.recording.consumeExplicitly("ScaledDotProductAttention.backward");
    }
    return backwardUnclaimed(arena, context, gradOutput);
  }

  private static Gradients backwardUnclaimed(Arena arena, Context context, Tensor gradOutput) {
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    return backwardInto(context, gradOutput, Tensor.uninitialized(arena, context.q.shape().dims()),
        Tensor.uninitialized(arena, context.k.shape().dims()),
        Tensor.uninitialized(arena, context.v.shape().dims()));
  }

  /**
   * The backward into given gradients of q's, k's and v's shapes (slices of one packed tensor,
   * for a self-attention layer's packed projection), after the checks of {@link #backward}.
   */
  static Gradients backwardInto(Context context, Tensor gradOutput, Tensor dq, Tensor dk,
      Tensor dv) {
    if (!gradOutput.shape().equals(context.out.shape())) {
      throw new IllegalArgumentException("gradOutput: expected shape " + context.out.shape()
          + " (the output's), got " + gradOutput.shape());
    }
    Checks.usable(gradOutput.segment(), "gradOutput");
    Checks.usable(context.out.segment(), "context");
    long[] sizes = checkShapes(context.q, context.k, context.v, context.options);
    try (Arena call = Arena.ofConfined()) {
      MemorySegment desc = describe(call, sizes, context.options, true);
      NativeBindings.attentionBackward(dq.segment(), dk.segment(), dv.segment(),
          gradOutput.segment(), context.q.segment(), context.k.segment(), context.v.segment(),
          context.out.segment(), context.lse.segment(), maskSegment(context.options),
          paddingSegment(context.options), desc);
    }
    return new Gradients(dq, dk, dv);
  }

  /**
   * The attention weights {@code (N, Hq, Tq, Tk)} without dropout: the full matrix, for callers
   * who ask for it (it is what the memory-efficient forward avoids).
   */
  public static Tensor weights(Arena arena, Tensor q, Tensor k, Options options) {
    long[] sizes = checkShapes(q, k, null, options);
    Tensor weights = Tensor.uninitialized(arena, sizes[0], sizes[1], sizes[3], sizes[4]);
    try (Arena call = Arena.ofConfined()) {
      MemorySegment desc = describe(call, sizes, options, false);
      NativeBindings.attentionWeights(weights.segment(), q.segment(), k.segment(),
          maskSegment(options), paddingSegment(options), desc);
    }
    return weights;
  }

  /** {N, Hq, Hkv, Tq, Tk, d, dv}, after checking every shape. */
  private static long[] checkShapes(Tensor q, Tensor k, Tensor v, Options options) {
    requireRank4(q, "q");
    requireRank4(k, "k");
    long n = q.dim(0);
    long heads = q.dim(1);
    long tq = q.dim(2);
    long d = q.dim(3);
    if (k.dim(0) != n || k.dim(3) != d) {
      throw new IllegalArgumentException("k: expected (" + n + ", kv_heads, Tk, " + d
          + ") to match q " + q.shape() + " in batch and head size, got " + k.shape());
    }
    long kvHeads = k.dim(1);
    long tk = k.dim(2);
    if (heads % kvHeads != 0) {
      throw new IllegalArgumentException("k: the query heads (" + heads
          + ") must be a multiple of the key/value heads, got " + kvHeads);
    }
    long dv = d;
    if (v != null) {
      requireRank4(v, "v");
      if (v.dim(0) != n || v.dim(1) != kvHeads || v.dim(2) != tk) {
        throw new IllegalArgumentException("v: expected (" + n + ", " + kvHeads + ", " + tk
            + ", dv) to match k " + k.shape() + ", got " + v.shape());
      }
      dv = v.dim(3);
      Checks.usable(v.segment(), "v");
    }
    Checks.usable(q.segment(), "q");
    Checks.usable(k.segment(), "k");
    long[] full = {n, heads, tq, tk};
    if (options == null) {
      throw new NullPointerException("options");
    }
    if (options.mask() != null) {
      Shape shape = options.mask().shape();
      if (shape.rank() < 2 || shape.rank() > 4) {
        throw new IllegalArgumentException("mask: expected 2 to 4 dimensions broadcastable to "
            + Shape.of(full) + ", got " + shape);
      }
      for (int a = 0; a < shape.rank(); a++) {
        long want = full[4 - shape.rank() + a];
        if (shape.dim(a) != 1 && shape.dim(a) != want) {
          throw new IllegalArgumentException("mask: shape " + shape + " does not broadcast to "
              + Shape.of(full) + " (N, Hq, Tq, Tk)");
        }
      }
      Checks.usable(options.mask().segment(), "mask");
    }
    if (options.keyPaddingMask() != null) {
      if (!options.keyPaddingMask().shape().equals(Shape.of(n, tk))) {
        throw new IllegalArgumentException("keyPaddingMask: expected shape (" + n + ", " + tk
            + ") (N, Tk), got " + options.keyPaddingMask().shape());
      }
      Checks.usable(options.keyPaddingMask().segment(), "keyPaddingMask");
    }
    return new long[] {n, heads, kvHeads, tq, tk, d, dv};
  }

  private static void requireRank4(Tensor t, String name) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (t.shape().rank() != 4 || t.size() == 0) {
      throw new IllegalArgumentException(
          name + ": expected a non-empty (N, heads, T, d) tensor, got shape " + t.shape());
    }
  }

  /** The {@code seq4j_attention_desc} of a call. */
  private static MemorySegment describe(Arena call, long[] s, Options options, boolean training) {
    float scale = Float.isNaN(options.scale()) ? (float) (1 / Math.sqrt(s[5])) : options.scale();
    Tensor mask = options.mask();
    int maskKind = mask == null ? AbiConstants.MASK_NONE
        : options.booleanMask() ? AbiConstants.MASK_BOOLEAN : AbiConstants.MASK_ADDITIVE;
    long[] maskStrides = new long[4];
    if (mask != null) {
      long[] full = {s[0], s[1], s[3], s[4]};
      int rank = mask.shape().rank();
      long stride = 1;
      for (int a = 3; a >= 0; a--) {
        int axis = a - (4 - rank);
        long size = axis >= 0 ? mask.dim(axis) : 1;
        maskStrides[a] = size == 1 || full[a] == 1 ? 0 : stride;
        stride *= size;
      }
    }
    return AbiLayouts.attentionDesc(call, new long[] {s[0], s[1], s[2], s[3], s[4], s[5], s[6]},
        scale, options.causal(), training ? options.dropout() : 0f, options.seed(), maskKind,
        maskStrides);
  }

  private static MemorySegment maskSegment(Options options) {
    return options.mask() == null ? MemorySegment.NULL : options.mask().segment();
  }

  private static MemorySegment paddingSegment(Options options) {
    return options.keyPaddingMask() == null ? MemorySegment.NULL
        : options.keyPaddingMask().segment();
  }
}
