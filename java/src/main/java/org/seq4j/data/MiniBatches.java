package org.seq4j.data;

import java.util.Arrays;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * Mini-batches over a dataset of {@code size} samples, as PyTorch's {@code DataLoader(shuffle=
 * True)}: each iteration is an epoch that visits every sample once in a seeded random order (a new
 * order each epoch, the same orders on every run with the same seed), cut into batches of {@code
 * batchSize} sample indices that {@code make} turns into the user's batch objects. Making each
 * batch in its own arena, closed by the batch's {@code close()}, lets a {@link
 * org.seq4j.train.Trainer} free every step's memory:
 *
 * <pre>{@code
 * record Batch(Arena arena, Tensor x, Tensor y) implements AutoCloseable {
 *   public void close() { arena.close(); }
 * }
 * MiniBatches<Batch> batches = MiniBatches.shuffled(inputs.length, 32, 7, indices -> {
 *   Arena arena = Arena.ofConfined();
 *   return new Batch(arena, stack(arena, inputs, indices), stack(arena, targets, indices));
 * });
 * }</pre>
 *
 * @param <B> the batch type
 */
public final class MiniBatches<B> implements Iterable<B> {
  private final int size;
  private final int batchSize;
  private final long seed;
  private final boolean shuffle;
  private final boolean dropLast;
  private final Function<int[], B> make;
  private int nextEpoch;

  private MiniBatches(int size, int batchSize, long seed, boolean shuffle, boolean dropLast,
      Function<int[], B> make) {
    if (size < 1) {
      throw new IllegalArgumentException("size: expected >= 1, got " + size);
    }
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize: expected >= 1, got " + batchSize);
    }
    if (dropLast && batchSize > size) {
      throw new IllegalArgumentException("batchSize: expected <= size (" + size + ") when the"
          + " last partial batch is dropped, got " + batchSize);
    }
    this.size = size;
    this.batchSize = batchSize;
    this.seed = seed;
    this.shuffle = shuffle;
    this.dropLast = dropLast;
    this.make = Objects.requireNonNull(make, "make");
  }

  /** Batches in a new seeded random order each epoch; the last batch may be smaller. */
  public static <B> MiniBatches<B> shuffled(int size, int batchSize, long seed,
      Function<int[], B> make) {
    return new MiniBatches<>(size, batchSize, seed, true, false, make);
  }

  /** Batches in sample order (for validation); the last batch may be smaller. */
  public static <B> MiniBatches<B> inOrder(int size, int batchSize, Function<int[], B> make) {
    return new MiniBatches<>(size, batchSize, 0, false, false, make);
  }

  /** These batches without the last one when it would be smaller than {@code batchSize}. */
  public MiniBatches<B> dropLast() {
    return new MiniBatches<>(size, batchSize, seed, shuffle, true, make);
  }

  /** How many batches an epoch has. */
  public int batchCount() {
    return dropLast ? size / batchSize : (size + batchSize - 1) / batchSize;
  }

  /**
   * The sample order of epoch {@code epoch} (from 0), whatever was iterated before: a
   * Fisher–Yates shuffle seeded by the seed and the epoch.
   */
  public int[] order(int epoch) {
    int[] order = new int[size];
    for (int i = 0; i < size; i++) {
      order[i] = i;
    }
    if (shuffle) {
      SplittableRandom random = new SplittableRandom(seed ^ (0x9E3779B97F4A7C15L * (epoch + 1L)));
      for (int i = size - 1; i > 0; i--) {
        int j = random.nextInt(i + 1);
        int swap = order[i];
        order[i] = order[j];
        order[j] = swap;
      }
    }
    return order;
  }

  /** The batches of epoch {@code epoch}, made lazily as the iterator advances. */
  public Iterator<B> iterator(int epoch) {
    int[] order = order(epoch);
    int count = batchCount();
    return new Iterator<>() {
      private int next;

      @Override
      public boolean hasNext() {
        return next < count;
      }

      @Override
      public B next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        int start = next++ * batchSize;
        return make.apply(Arrays.copyOfRange(order, start, Math.min(size, start + batchSize)));
      }
    };
  }

  /** The batches of the next epoch: the first call gives epoch 0, the next epoch 1, and so on. */
  @Override
  public Iterator<B> iterator() {
    return iterator(nextEpoch++);
  }
}
