package org.seq4j.reference;

/**
 * Float64 reference of scaled dot-product attention, the whole score matrix at once, from the
 * definition: out = dropout(softmax(scale · q kᵀ + mask)) v, with the masked keys removed from the
 * softmax and a fully masked row giving zeros.
 */
public final class AttentionReference {
  private AttentionReference() {}

  /** Sizes and masking; the mask is given as a function of (n, h, i, j). */
  public record Problem(int batch, int heads, int kvHeads, int tq, int tk, int d, int dv,
      double scale, boolean causal, MaskFunction additive, MaskFunction attend,
      double[] keyPadding, double dropout, long seed) {}

  /** A mask value for (n, h, i, j). */
  @FunctionalInterface
  public interface MaskFunction {
    /** The mask at (n, h, i, j). */
    double at(int n, int h, int i, int j);
  }

  /** The keep decision of dropout: the same counter-based generator as the kernels' definition. */
  public static boolean keep(long seed, long index, double p) {
    long key = mix(seed + 0x9E3779B97F4A7C15L);
    long z = (key ^ index) + 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    z ^= z >>> 31;
    return (z >>> 40) >= (long) (p * 16777216.0);
  }

  private static long mix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /** The attention weights (N, H, Tq, Tk) before dropout. */
  public static double[] weights(Problem p, double[] q, double[] k) {
    double[] w = new double[p.batch() * p.heads() * p.tq() * p.tk()];
    int group = p.heads() / p.kvHeads();
    for (int n = 0; n < p.batch(); n++) {
      for (int h = 0; h < p.heads(); h++) {
        int g = h / group;
        for (int i = 0; i < p.tq(); i++) {
          double[] s = new double[p.tk()];
          boolean[] visible = new boolean[p.tk()];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j < p.tk(); j++) {
            visible[j] = !(p.causal() && j > i)
                && (p.keyPadding() == null || p.keyPadding()[n * p.tk() + j] == 0)
                && (p.attend() == null || p.attend().at(n, h, i, j) != 0);
            if (!visible[j]) {
              continue;
            }
            double dot = 0;
            for (int e = 0; e < p.d(); e++) {
              dot += q[((n * p.heads() + h) * p.tq() + i) * p.d() + e]
                  * k[((n * p.kvHeads() + g) * p.tk() + j) * p.d() + e];
            }
            s[j] = p.scale() * dot + (p.additive() == null ? 0 : p.additive().at(n, h, i, j));
            max = Math.max(max, s[j]);
          }
          double sum = 0;
          for (int j = 0; j < p.tk(); j++) {
            if (visible[j]) {
              sum += Math.exp(s[j] - max);
            }
          }
          for (int j = 0; j < p.tk(); j++) {
            w[((n * p.heads() + h) * p.tq() + i) * p.tk() + j] =
                visible[j] ? Math.exp(s[j] - max) / sum : 0;
          }
        }
      }
    }
    return w;
  }

  /** The output (N, H, Tq, dv). */
  public static double[] forward(Problem p, double[] q, double[] k, double[] v) {
    double[] w = weights(p, q, k);
    double[] out = new double[p.batch() * p.heads() * p.tq() * p.dv()];
    int group = p.heads() / p.kvHeads();
    for (int n = 0; n < p.batch(); n++) {
      for (int h = 0; h < p.heads(); h++) {
        for (int i = 0; i < p.tq(); i++) {
          for (int j = 0; j < p.tk(); j++) {
            long index = ((long) (n * p.heads() + h) * p.tq() + i) * p.tk() + j;
            double weight = w[(int) index];
            if (p.dropout() > 0) {
              weight = keep(p.seed(), index, p.dropout()) ? weight / (1 - p.dropout()) : 0;
            }
            for (int e = 0; e < p.dv(); e++) {
              out[((n * p.heads() + h) * p.tq() + i) * p.dv() + e] +=
                  weight * v[((n * p.kvHeads() + h / group) * p.tk() + j) * p.dv() + e];
            }
          }
        }
      }
    }
    return out;
  }
}
