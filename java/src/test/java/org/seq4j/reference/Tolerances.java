package org.seq4j.reference;

/**
 * Every error budget of the test suite, in one place, with its reason. Tests name these constants;
 * no test writes a tolerance of its own.
 *
 * <p>A float32 kernel is compared with a float64 reference. Summing k products in float32 has a
 * worst-case relative error of about k·ε (ε = 2^-24 ≈ 6e-8) of the sum of magnitudes; blocked and
 * pairwise summation, as GEMM kernels do, keep it near log2(k)·ε. As in oneDNN's benchdnn, the
 * budget grows with log2 of the accumulation length, with a safety factor for the FMA/non-FMA
 * difference and the split of k into blocks.
 *
 * <p>Unless a constant says otherwise it is used with {@link Arrays64#assertClose}: every
 * |expected − actual| ≤ budget · max(1, |expected|), so it is absolute for values below 1 and
 * relative above. The inputs of these tests are of order 1 (standard normal), so the budgets below
 * are stated for that scale; a test with larger values says so.
 *
 * <p>A backward pass is checked against central finite differences of the float64 reference
 * ({@link FiniteDifferences}, step {@link FiniteDifferences#DEFAULT_STEP}), whose own error is
 * about 1e-10 relative: the budget is the float32 kernel's, and it is about ten times the forward's
 * because each gradient is a sum over every position the parameter touched (T·N terms for a weight)
 * and passes through two or three products more than the forward.
 *
 * <p>Two float32 computations of the same sums (two backends, two routes through one backend) are
 * each within the reference budget of float64, so they agree within twice that.
 */
public final class Tolerances {
  /** Unit roundoff of float32. */
  public static final double FLOAT_EPSILON = Math.ulp(1.0f) / 2;

  private Tolerances() {}

  // ---------------------------------------------------------------- tensor ops

  /**
   * The allowed |result − reference| of one output of a matrix product, relative to {@code Σ
   * |a||b|} over its k terms (plus the previous output's rounding when accumulating).
   */
  public static double matmulRelative(int k) {
    return 8 * FLOAT_EPSILON * (Math.log(Math.max(k, 1)) / Math.log(2) + 2);
  }

  /** Elementwise ops round once per operation: 2 ulps. */
  public static final double ELEMENTWISE_RELATIVE = 2 * 2 * FLOAT_EPSILON;

  /**
   * Two float32 products of the same 64×64 matrices (oneDNN and OpenBLAS, several threads),
   * relative to {@code 1 + |value|}: each output sums 64 products of standard normals, so it is
   * within {@link #matmulRelative matmulRelative(64)} · Σ|a||b| ≈ 3.8e-6 · 41 ≈ 1.6e-4 of the exact
   * value at the worst case and typically within a tenth of that; the outputs are of order 8.
   */
  public static final double MATMUL_AGREEMENT = 1e-4;

  /**
   * The same 300×300 product with one thread and with the default count, absolute: the split of k
   * = 300 into blocks changes with the thread count; 2 · matmulRelative(300) · Σ|a||b| ≈ 2 · 4.9e-6
   * · 190 ≈ 9e-4.
   */
  public static final double MATMUL_THREAD_COUNT_AGREEMENT = 1e-3;

  // ---------------------------------------------------------------- layers: forward

  /**
   * {@code Linear}: each output sums at most 17 products and a bias, k·ε·Σ|x||w| ≈ 17 · 6e-8 · 5 ≈
   * 5e-6 at the worst.
   */
  public static final double LINEAR_FORWARD = 1e-5;

  /**
   * {@code LayerNorm} on rows of mean 100 and deviation 2 (the test's choice, so that a one-pass
   * variance would fail): x − mean loses log2(100 / 2) ≈ 6 bits of the float32 inputs, so each
   * output carries about 64 · ε ≈ 4e-6 relative error before the scale and shift. A one-pass
   * variance, E[x²] − mean² with x² ≈ 1e4 against a variance of 4, would lose 11 bits more.
   */
  public static final double LAYER_NORM_FORWARD = 1e-4;

  /**
   * The activations (ReLU, GELU, GELU-tanh): the kernels evaluate each in double (the C library's
   * erf and tanh) and round the result to float32 once, so half an ulp; the budget is {@link
   * #ELEMENTWISE_RELATIVE}'s 2 ulps.
   */
  public static final double ACTIVATION_FORWARD = ELEMENTWISE_RELATIVE;

  /**
   * Scaled dot-product attention: scores sum d ≤ 80 products, the softmax normalises over up to
   * 261 keys with Cephes' expf polynomial (about 1 ulp), and the output sums up to 261
   * weighted values: three accumulations of log2 growth, about 3 · 16 · ε ≈ 3e-6 typical.
   */
  public static final double ATTENTION_FORWARD = 2e-5;

  /**
   * Attention on scores of magnitude up to 125 ({@code AttentionTest.extremeScoresMatchTheReference}),
   * forward and gradients: each score sums 64 products of magnitude up to 12.5 (800 in all) with
   * a float32 error of up to log2(64) · ε · 800 / 8 ≈ 4e-5 after the scale, and every weight
   * exp(s − max) carries that error relatively; the gradients multiply it by keys of norm 50.
   */
  public static final double ATTENTION_EXTREME_SCORES = 3e-4;

  /**
   * {@code MultiHeadAttention}: the attention above between two projections of 6 inputs each,
   * which add little.
   */
  public static final double MULTI_HEAD_ATTENTION_FORWARD = 2e-5;

  /**
   * The encoder and decoder layers: up to two attentions, two feed-forward products and three
   * layer norms chained; each norm divides the absolute error of its input by the row's deviation,
   * so the errors of the parts add and grow: 2.5× attention's budget.
   */
  public static final double TRANSFORMER_LAYER_FORWARD = 5e-5;

  /**
   * The recurrent layers (both backends): each step's gates sum I + H ≤ 34 products, and the state
   * carries the rounding of every earlier step (damped by the gates' derivatives below 1) through
   * T ≤ 6 steps and up to two layers, bidirectional.
   */
  public static final double RECURRENT_FORWARD = 2e-5;

  // ---------------------------------------------------------------- layers: backward

  /**
   * {@code Linear}'s gradients: the weight gradient sums 63 rows, the input gradient 17 outputs.
   */
  public static final double LINEAR_BACKWARD = 1e-4;

  /**
   * {@code LayerNorm}'s input gradient on rows of mean 100 (see {@link #LAYER_NORM_FORWARD}):
   * dx = (g·w − mean(g·w) − x̂ · mean(g·w·x̂)) / σ subtracts two row means from terms of order 1
   * after x̂ has lost 6 bits, and the finite differences step {@link #LAYER_NORM_INPUT_STEP} ·
   * 100 on inputs of 100.
   */
  public static final double LAYER_NORM_BACKWARD_INPUT = 2e-3;

  /**
   * The step of {@code LayerNorm}'s input finite differences: inputs are of order 100 and the step
   * is relative to max(1, |x|), so 1e-7 moves them by 1e-5, where the default would move them by
   * 1e-4 and its truncation error (ε² |L'''| with L''' ∝ 1/σ³) would show.
   */
  public static final double LAYER_NORM_INPUT_STEP = 1e-7;

  /** {@code LayerNorm}'s weight and bias gradients: sums over 5 rows of g · x̂ and g. */
  public static final double LAYER_NORM_BACKWARD_PARAMETERS = 2e-4;

  /**
   * {@code LayerNorm}'s gradients at size (200 × 515) by directional derivatives, relative to
   * |derivative| + 1: the dot product of a float32 gradient with a direction sums up to 10⁵ terms
   * whose float32 errors (about 1e-7 each, of either sign) add like a random walk; the central
   * difference of the float64 loss with step 1e-4 errs by about 1e-8 times its third derivative.
   */
  public static final double LAYER_NORM_DIRECTIONAL = 1e-4;

  /**
   * The activations' derivatives times the incoming gradient: evaluated in double and rounded once,
   * like the forward; the finite differences add δ |L| / ε ≈ 1e-16 · 30 / 1e-6 ≈ 3e-9 (L sums 257
   * terms), far below.
   */
  public static final double ACTIVATION_BACKWARD = ELEMENTWISE_RELATIVE;

  /**
   * The GELU kernels, forward and backward, relative to each value's own size over [-12, 12]:
   * their erfc is a Chebyshev fit with relative error below 1.2e-7 (Numerical Recipes' erfcc),
   * evaluated in double with an exp of about 2e-16, then rounded to float once (6e-8): 2e-7 at
   * the worst (measured: 1.6e-7 at x = -6.7 for the exact GELU, 6e-8 for the tanh form).
   */
  public static final double GELU_RELATIVE = 2.5e-7;

  /** Attention's dq, dk, dv against finite differences: ten times the forward. */
  public static final double ATTENTION_BACKWARD = 2e-4;

  /**
   * Attention's dq, dk, dv at real head sizes (d up to 80, 261 keys, 101 queries) against the
   * float64 gradient worked out analytically: no finite-difference error, sums of at most 261
   * terms.
   */
  public static final double ATTENTION_BACKWARD_ANALYTIC = 1e-4;

  /** {@code MultiHeadAttention}'s gradients: ten times the forward. */
  public static final double MULTI_HEAD_ATTENTION_BACKWARD = 2e-4;

  /** The encoder and decoder layers' gradients: ten times the forward. */
  public static final double TRANSFORMER_LAYER_BACKWARD = 5e-4;

  /**
   * The recurrent layers' gradients (both backends): backpropagation through time sums T·N terms
   * for each weight and passes through the transposed products of every step.
   */
  public static final double RECURRENT_BACKWARD = 2e-4;

  /**
   * The hidden-state gradient norms of {@code GradientFlow} against finite differences of the
   * reference, absolute: the float32 backward of one 4-unit layer over at most 7 steps, so shorter
   * sums than {@link #RECURRENT_BACKWARD} covers, and a norm of 8 such gradients (batch 2 × 4
   * units) of order 1.
   */
  public static final double GRADIENT_NORMS = 1e-4;

  // ---------------------------------------------------------------- two float32 computations

  /**
   * The oneDNN and BLAS backends on the same recurrent layer, relative to {@code 1 + |value|}: two
   * float32 computations of the same sums, each within {@link #RECURRENT_FORWARD} of float64, at
   * sizes (H up to 40, T = 9, N = 12) where the sums are longer than the reference tests' but the
   * values stay of order 1. Also the streaming step against the full forward.
   */
  public static final double RECURRENT_BACKENDS_FORWARD = 2 * RECURRENT_FORWARD;

  /** The two backends' gradients: both within {@link #RECURRENT_BACKWARD} of float64. */
  public static final double RECURRENT_BACKENDS_BACKWARD = 2 * RECURRENT_BACKWARD;

  /**
   * The same kernels on the same values by another route, absolute, on outputs of order 1: a
   * sequence in chunks with carried state against one call, the inference primitive against the
   * training one, a truncated sequence against the whole. Only the split of a few sums differs: a
   * few ulps (measured: one or two ulps of values below 1).
   */
  public static final double REROUTED = 1e-6;

  /**
   * The same calls on the same values again: none. The tape runs each recorded op's own backward,
   * a stack runs its layers' own forward and backward, and every kernel is deterministic at a given
   * thread count (each parallel task owns its outputs; no atomic accumulation), so the tape against
   * the explicit backward and a stack against its layers chained by hand are bit-identical.
   */
  public static final double REPLAYED = 0;

  /**
   * A second backward of one context adds the same gradients again, relative to {@code 1 +
   * |once|}: none. The second backward recomputes bit-identical gradients (oneDNN's consumed
   * workspace is recomputed from the same inputs), and g + g = 2g exactly in binary floating point.
   */
  public static final double GRADIENT_ACCUMULATED_TWICE = 0;

  /**
   * Cached incremental decoding against the full causal forward of one {@code MultiHeadAttention},
   * absolute: the cached step's products have other shapes (one query, a growing key set), so the
   * GEMMs block their sums differently.
   */
  public static final double CACHED_ATTENTION_STEP = 1e-5;

  /**
   * Cached incremental decoding of a decoder layer or stack against the full forward, absolute:
   * {@link #CACHED_ATTENTION_STEP} for each of its attentions, through the layer norms.
   */
  public static final double CACHED_DECODER_STEP = 2e-5;

  // ---------------------------------------------------------------- training

  /**
   * The losses' values (MSE, cross-entropy, BCE with logits): a float32 mean over at most 4000
   * terms, relative to max(1, loss).
   */
  public static final double LOSS_FORWARD = 1e-5;

  /**
   * The losses' gradients against finite differences (MSE, cross-entropy): one elementwise
   * expression each, (p − t) · 2 / n or (softmax − target) / rows, divided by n; a few ulps of
   * values below 1.
   */
  public static final double LOSS_BACKWARD = 1e-6;

  /**
   * BCE with logits' gradient (σ(x) − t) / 6 against the float64 formula, absolute: one sigmoid and
   * a subtraction in float32 on values below 1/6.
   */
  public static final double BINARY_CROSS_ENTROPY_GRADIENT = 1e-7;

  /**
   * SGD and Adam after 5 or 6 steps against the float64 rule: every step rounds the parameter to
   * float32, and Adam's √v + eps and bias corrections add a few roundings each.
   */
  public static final double OPTIMIZER_STEPS = 1e-5;

  /**
   * A global gradient norm of gradients (3, 0) and (4): none, since 9 + 16 = 25 and √25 = 5 are
   * exact in floating point (the square root is correctly rounded).
   */
  public static final double GLOBAL_NORM_EXACT = 0;

  /** Gradients after clipping, absolute: one float32 scale of values below 1, and their norm. */
  public static final double CLIPPED_GRADIENT = 1e-6;

  /**
   * The learning-rate schedules, and a learning rate restored from a checkpoint: a handful of
   * double operations (a cosine, products, a decimal round trip) on values of order 1, about five
   * ulps at 1.
   */
  public static final double DOUBLE_FEW_OPERATIONS = 1e-15;

  /**
   * The Gram matrix of an orthogonal initialisation: Q comes from a double Gram-Schmidt
   * (orthonormal to about 1e-15) rounded to float32, so each entry carries half an ulp and a dot
   * product of two columns is off by at most 2ε · gain² · Σ|q_a||q_b| ≤ 2ε · 4 ≈ 5e-7.
   */
  public static final double ORTHOGONAL_GRAM = 1e-5;

  // ---------------------------------------------------------------- other

  /**
   * The averaged attention weights of a query sum to 1, absolute: each row of the softmax sums to 1
   * within its rounding, over 4 keys and 2 heads.
   */
  public static final double PROBABILITY_SUM = 1e-5;

  /**
   * Sinusoidal positions against the formula, absolute: a float32 sin or cos of an argument below
   * 50.
   */
  public static final double POSITIONAL_ENCODING = 1e-6;

  /**
   * The mean and variance of 100 000 seeded standard normals: their standard errors are 0.0032 and
   * 0.0045, so 0.02 is more than four standard errors of either.
   */
  public static final double NORMAL_SAMPLE_MOMENTS = 0.02;

  /**
   * The mean of 100 000 seeded uniforms on [−2, 3): the standard error is 5 / √12 / √100 000 ≈
   * 0.0046, so 0.03 is six and a half of them.
   */
  public static final double UNIFORM_SAMPLE_MEAN = 0.03;

  // ---------------------------------------------------------------- the references themselves

  /**
   * The float64 reference against hand arithmetic and its own identities: a handful of double
   * operations on values of order 1.
   */
  public static final double REFERENCE_BY_HAND = 1e-15;

  /**
   * Central finite differences against an analytic gradient of a smooth float64 function:
   * truncation ε² |L'''| / 6 plus rounding δ |L| / ε, about 1e-9 at ε = 1e-6 · 7.25 and |L| ≈ 40.
   */
  public static final double FINITE_DIFFERENCES_ANALYTIC = 1e-8;

  /**
   * Central finite differences through the recurrent reference at values of order 0.3, against a
   * gate value worked out by hand: about 1e-10 of each error.
   */
  public static final double FINITE_DIFFERENCES_THROUGH_REFERENCE = 1e-9;

  // ---------------------------------------------------------------- functional ops (ops-a)

  /**
   * One float32 elementwise operation (or a transcendental evaluated in double and rounded)
   * against float64 on the same float inputs: half an ulp, 6e-8 relative; 4e-7 leaves room for
   * sums of a few such roundings (a broadcast sum accumulated in double, a softmax's exp/Σ).
   */
  public static final double ELEMENTWISE_FORWARD = 4e-7;

  /**
   * An elementwise backward in float32 (two or three rounded products, such as g·a/b², or the
   * float32 output an exp or tanh derivative reads) against finite differences of the float64
   * reference, whose own error is about 1e-9 at the tests' scale (values of order 1, weights of
   * order 1, sums of at most 60 terms): 1e-5 is about 20 of the float32 roundings that enter.
   */
  public static final double ELEMENTWISE_BACKWARD = 1e-5;

  /**
   * A loss (mean over at most 24 rows or elements, accumulated in double, of a log-sum-exp in
   * double) against float64: the result's one float rounding plus the inputs' exact float values,
   * 1e-6 with room; its backward as {@link #ELEMENTWISE_BACKWARD}.
   */
  public static final double AUTOGRAD_LOSS_FORWARD = 1e-6;

  // ---------------------------------------------------------------- ops-b: matmul, shape, index,
  // sampling ops under autograd (MatmulOpsTest, ShapeOpsTest, IndexOpsTest, SamplingOpsTest)

  /**
   * Batched matmul forward against float64, relative: inner sizes up to 17 of values in [-1, 1),
   * each product and sum rounded to float32 (ε = 6e-8), so about k · ε · Σ|a||b| ≤ 17 · 6e-8 · 17
   * ≈ 2e-5 at worst; 1e-4 leaves room for the backend's blocking order.
   */
  public static final double MATMUL_OPS_FORWARD = 1e-4;

  /**
   * Matmul gradients against finite differences of the float64 reference: the same float32 GEMM
   * rounding, summed over up to 12 broadcast batch matrices (k grows to 12 · 5), plus the 1e-9
   * of the finite differences; 1e-4 relative.
   */
  public static final double MATMUL_OPS_BACKWARD = 1e-4;

  /**
   * Copying ops (concat, stack, split, permute, gather, index-select) move float values
   * unchanged; their gradients are sums of a few float weights (repeated indices accumulate in
   * float32, a few ulps) against finite differences of a linear function (about 1e-10): 1e-6.
   */
  public static final double COPY_OPS = 1e-6;

  /**
   * The mean of inverted dropout over 200 000 ones at p = 0.3: each element is 0 or 1/0.7, a
   * standard deviation of √(0.3/0.7) ≈ 0.65 per element and 0.0015 for the mean, so 0.01 is more
   * than six standard errors (the seed is fixed, so the test is deterministic either way).
   */
  public static final double DROPOUT_MEAN = 0.01;
}
