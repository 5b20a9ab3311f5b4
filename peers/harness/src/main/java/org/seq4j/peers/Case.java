package org.seq4j.peers;

import java.util.List;
import java.util.Locale;

/**
 * One unit of work that every peer runs the same way: its id (what the table shows), the sizes
 * and the floating-point operations of one call, counted with DESIGN.md's formulas (the same
 * ones {@code bench/} uses), so GFLOP/s are comparable across peers.
 *
 * @param id the name in the table, e.g. {@code lstm-M fwd+bwd}
 * @param kind what is run: {@code lstm}, {@code lstm-bi2}, {@code lstm-peephole}, {@code gru},
 *     {@code stream-lstm}, {@code stream-gru}, {@code stream-lstm-bf16}, {@code attention},
 *     {@code encoder}, {@code gemm}
 * @param training whether the call is a training forward and the backward (input and parameter
 *     gradients), or an inference forward
 * @param t steps (sequence length), or the GEMM side for {@code gemm}
 * @param n batch
 * @param i input size (model width for {@code encoder})
 * @param h hidden size (head size for {@code attention}, heads for {@code encoder})
 * @param causal attention only: whether queries see only earlier keys
 * @param flops floating-point operations of one call
 */
public record Case(String id, String kind, boolean training, long t, long n, long i, long h,
    boolean causal, double flops) {

  /** Attention heads of DESIGN.md's attention shapes, each of {@link #ATTENTION_HEAD} values. */
  public static final long ATTENTION_HEADS = 8;
  /** Head size of the attention shapes. */
  public static final long ATTENTION_HEAD = 64;
  /** Feed-forward width of the encoder layer. */
  public static final long ENCODER_FF = 2048;

  /** The GEMM peak's case: square products of side 2048, {@code 2n³}. */
  public static Case gemm(long side) {
    return new Case("gemm n=" + side, "gemm", false, side, side, side, side, false,
        2.0 * side * side * side);
  }

  /** Recurrent flops of one forward: {@code 2·T·N·G·H·(I + H)} per layer and direction. */
  static double recurrent(long t, long n, long i, long h, int gates) {
    return 2.0 * t * n * gates * h * (double) (i + h);
  }

  private static Case recurrentCase(String name, String kind, boolean training, long t, long n,
      long i, long h, double forwardFlops) {
    // Backward: gradients of the data and of the weights, twice the forward's GEMMs.
    return new Case(name + (training ? " fwd+bwd" : " fwd"), kind, training, t, n, i, h, false,
        training ? 3 * forwardFlops : forwardFlops);
  }

  /**
   * Attention flops: {@code 4·N·heads·T²·d} forward (the two products), halved when causal; the
   * backward recomputes the scores and does four products, 2.5 times the forward's.
   */
  static Case attention(long t, long n, boolean causal, boolean training) {
    double forward = 4.0 * n * ATTENTION_HEADS * t * (double) t * ATTENTION_HEAD
        * (causal ? 0.5 : 1);
    String id = String.format(Locale.ROOT, "attention T=%d N=%d%s %s", t, n,
        causal ? " causal" : "", training ? "fwd+bwd" : "fwd");
    return new Case(id, "attention", training, t, n, ATTENTION_HEADS, ATTENTION_HEAD, causal,
        training ? 3.5 * forward : forward);
  }

  /**
   * The encoder layer (d = 512, 8 heads, ff = 2048, T = 128, N = 32): projections {@code
   * 2·T·N·(4·d² + 2·d·ff)} plus attention {@code 4·N·T²·d}; the backward twice the projections and
   * 2.5 times the attention.
   */
  static Case encoder(boolean training) {
    long t = 128;
    long n = 32;
    long d = 512;
    double projections = 2.0 * t * n * (4.0 * d * d + 2.0 * d * ENCODER_FF);
    double attention = 4.0 * n * (double) t * t * d;
    return new Case("encoder d=512 T=128 N=32 " + (training ? "fwd+bwd" : "fwd"), "encoder",
        training, t, n, d, 8, false,
        training ? 3 * projections + 3.5 * attention : projections + attention);
  }

  /** DESIGN.md's suite, in the table's order, then the GEMM peak's products. */
  public static List<Case> all() {
    List<Case> cases = new java.util.ArrayList<>();
    long[][] lstm = {{35, 20, 200, 200}, {50, 64, 512, 512}, {100, 64, 1024, 1024}};
    String[] sizes = {"S", "M", "L"};
    for (int s = 0; s < 3; s++) {
      long[] z = lstm[s];
      for (boolean training : new boolean[] {false, true}) {
        cases.add(recurrentCase("lstm-" + sizes[s], "lstm", training, z[0], z[1], z[2], z[3],
            recurrent(z[0], z[1], z[2], z[3], 4)));
      }
    }
    // Two layers, both directions, M: the second layer reads both directions' outputs (2H).
    double bi2 = 2 * recurrent(50, 64, 512, 512, 4) + 2 * recurrent(50, 64, 1024, 512, 4);
    for (boolean training : new boolean[] {false, true}) {
      cases.add(recurrentCase("lstm-M bidirectional 2 layers", "lstm-bi2", training, 50, 64, 512,
          512, bi2));
    }
    for (boolean training : new boolean[] {false, true}) {
      cases.add(recurrentCase("lstm-M peephole", "lstm-peephole", training, 50, 64, 512, 512,
          recurrent(50, 64, 512, 512, 4)));
    }
    for (boolean training : new boolean[] {false, true}) {
      cases.add(recurrentCase("gru-M", "gru", training, 50, 64, 512, 512,
          recurrent(50, 64, 512, 512, 3)));
    }
    cases.add(new Case("stream lstm N=1 H=256 step", "stream-lstm", false, 1, 1, 256, 256, false,
        recurrent(1, 1, 256, 256, 4)));
    cases.add(new Case("stream gru N=1 H=256 step", "stream-gru", false, 1, 1, 256, 256, false,
        recurrent(1, 1, 256, 256, 3)));
    // seq4j's opt-in bfloat16 step weights (float32 state and sums): the peers have no such mode
    cases.add(new Case("stream lstm N=1 H=256 step, bf16 weights", "stream-lstm-bf16", false, 1,
        1, 256, 256, false, recurrent(1, 1, 256, 256, 4)));
    for (long[] tn : new long[][] {{512, 8}, {4096, 1}}) {
      for (boolean causal : new boolean[] {false, true}) {
        for (boolean training : new boolean[] {false, true}) {
          cases.add(attention(tn[0], tn[1], causal, training));
        }
      }
    }
    cases.add(encoder(false));
    cases.add(encoder(true));
    cases.add(gemm(2048));
    return cases;
  }

  /** The case of an id, or {@code null}. */
  public static Case byId(String id) {
    return all().stream().filter(c -> c.id().equals(id)).findFirst().orElse(null);
  }
}
