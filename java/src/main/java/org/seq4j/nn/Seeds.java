package org.seq4j.nn;

import java.util.concurrent.atomic.AtomicLong;
import java.util.random.RandomGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * The one seeding scheme of the layers. A layer's {@code seed} gives its initial parameters
 * through {@link #generator(long)} (sublayers take {@code seed + k}, so each draws its own
 * stream). Dropout takes a fresh seed per training call from a {@link DropoutSeeds} counter:
 * {@link #mix(long, long)} of the layer's seed and the call's number, a SplitMix64 step, so calls
 * never share a mask; the counter is atomic, so concurrent callers never share one either.
 */
final class Seeds {
  /** The builders' default seed: fixed, so runs repeat. */
  static final long DEFAULT_SEED = 0x5EED;

  private Seeds() {}

  private static final java.util.concurrent.atomic.AtomicLong DEFAULT_SEEDS =
      new java.util.concurrent.atomic.AtomicLong();

  /**
   * The seed of a layer made without one: {@link #mix} of {@link #DEFAULT_SEED} and a process-wide
   * counter, so two such layers differ (as two {@code nn.Linear} in PyTorch do) and a program that
   * makes its layers in the same order gets the same values on every run.
   */
  static long nextDefaultSeed() {
    return mix(DEFAULT_SEED, DEFAULT_SEEDS.getAndIncrement());
  }

  /** The generator of initial values for {@code seed}. */
  static RandomGenerator generator(long seed) {
    return RandomGeneratorFactory.of("L64X128MixRandom").create(seed);
  }

  /** SplitMix64 of {@code seed} advanced {@code counter} times: well spread, distinct per call. */
  static long mix(long seed, long counter) {
    long z = seed + counter * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  /**
   * A layer's dropout seeds: {@link #next()} gives each training call its own base seed; a call
   * that applies several dropouts adds 0, 1, 2, ... to it. Thread-safe.
   */
  static final class DropoutSeeds {
    private final long seed;
    private final AtomicLong calls = new AtomicLong();

    DropoutSeeds(long seed) {
      this.seed = seed;
    }

    long next() {
      return mix(seed, calls.getAndIncrement());
    }
  }
}
