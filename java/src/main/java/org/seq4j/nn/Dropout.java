package org.seq4j.nn;

import org.seq4j.Tensor;

/**
 * Inverted dropout as a module, PyTorch's {@code nn.Dropout(p)}: in training mode each element is
 * zeroed with probability {@code p} and the rest scaled by {@code 1/(1-p)}; in inference mode
 * ({@link Module#eval()}) it is the identity. Each call draws a fresh mask from the module's seed
 * and a call counter, so runs repeat and calls (also concurrent ones) never share a mask.
 */
public final class Dropout extends Module implements Layer {
  private final float probability;
  private final Seeds.DropoutSeeds seeds;

  /** Dropout with probability {@code p} in {@code [0, 1)}, seeded from the next default seed. */
  public Dropout(float p) {
    this(p, Seeds.nextDefaultSeed());
  }

  /** Dropout with probability {@code p} in {@code [0, 1)}, its masks drawn from {@code seed}. */
  public Dropout(float p, long seed) {
    if (!(p >= 0 && p < 1)) {
      throw new IllegalArgumentException("p: expected 0 <= p < 1, got " + p);
    }
    this.probability = p;
    this.seeds = new Seeds.DropoutSeeds(seed);
  }

  /** The probability of zeroing an element. */
  public float probability() {
    return probability;
  }

  /** The input with dropout applied in training mode, else the input itself. */
  @Override
  public Tensor forward(Tensor input) {
    if (input == null) {
      throw new NullPointerException("input");
    }
    if (!isTraining() || probability == 0f) {
      return input;
    }
    return input.dropout(probability, true, seeds.next());
  }

  @Override
  public String toString() {
    return "Dropout(p=" + probability + ")";
  }
}
