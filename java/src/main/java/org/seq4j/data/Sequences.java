package org.seq4j.data;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;
import org.seq4j.Tensor;

/**
 * Variable-length sequences into padded batches, as PyTorch's {@code pad_sequence}: the padded
 * values, each sequence's length (for the recurrent layers' {@code lengths} argument, so padding
 * does not feed their states) and a key padding mask for attention ({@code
 * ScaledDotProductAttention.Options.keyPaddingMask}: shape {@code (N, T_max)}, 1 where a step is
 * padding and must be ignored, 0 where it is real).
 *
 * <pre>{@code
 * Sequences.Padded batch = Sequences.pad(arena, List.of(a, b, c), false, 0f); // (T_max, 3, C)
 * lstm.forward(arena, batch.values(), null, batch.lengths(), Mode.TRAINING);
 * }</pre>
 */
public final class Sequences {
  private Sequences() {}

  /**
   * A padded batch of {@code N} sequences of {@code C} channels.
   *
   * @param values {@code (T_max, N, C)}, or {@code (N, T_max, C)} when batch-first
   * @param lengths each sequence's length, in batch order
   * @param keyPaddingMask {@code (N, T_max)}: 1 at padded steps, 0 at real ones
   * @param batchFirst the layout of {@code values}
   */
  public record Padded(Tensor values, long[] lengths, Tensor keyPaddingMask, boolean batchFirst) {
    /** The longest length, {@code T_max}. */
    public long maxLength() {
      return keyPaddingMask.dim(1);
    }
  }

  /**
   * Token sequences padded into one index array for {@code Embedding.forward(arena, indices,
   * shape)}.
   *
   * @param indices row-major, of {@link #shape()}
   * @param shape {@code (T_max, N)}, or {@code (N, T_max)} when batch-first
   * @param lengths each sequence's length, in batch order
   * @param batchFirst the layout
   */
  public record PaddedTokens(long[] indices, long[] shape, long[] lengths, boolean batchFirst) {
    /** The key padding mask {@code (N, T_max)}: 1 at padded steps. */
    public Tensor keyPaddingMask(Arena arena) {
      return Sequences.keyPaddingMask(arena, lengths, batchFirst ? shape[1] : shape[0]);
    }
  }

  /**
   * Pads sequences given as {@code float[T_i][C]} with {@code padValue}.
   *
   * @throws IllegalArgumentException if the list is empty, a sequence is empty, or two steps
   *     have different channel counts
   */
  public static Padded pad(Arena arena, List<float[][]> sequences, boolean batchFirst,
      float padValue) {
    Objects.requireNonNull(arena, "arena");
    requireSome(sequences);
    int n = sequences.size();
    long[] lengths = new long[n];
    int channels = -1;
    for (int i = 0; i < n; i++) {
      float[][] s = Objects.requireNonNull(sequences.get(i), "sequences[" + i + "]");
      if (s.length == 0) {
        throw new IllegalArgumentException("sequences[" + i + "]: expected at least one step");
      }
      for (int t = 0; t < s.length; t++) {
        if (channels < 0) {
          channels = s[t].length;
        }
        if (s[t].length != channels || channels == 0) {
          throw new IllegalArgumentException("sequences[" + i + "][" + t + "]: expected " + channels
              + " channels (as the first step of sequences[0]), got " + s[t].length);
        }
      }
      lengths[i] = s.length;
    }
    int tMax = (int) Arrays.stream(lengths).max().getAsLong();
    float[] data = new float[Math.multiplyExact(Math.multiplyExact(tMax, n), channels)];
    Arrays.fill(data, padValue);
    for (int i = 0; i < n; i++) {
      float[][] s = sequences.get(i);
      for (int t = 0; t < s.length; t++) {
        System.arraycopy(s[t], 0, data, offset(batchFirst, t, i, tMax, n, channels), channels);
      }
    }
    return padded(arena, data, lengths, tMax, n, channels, batchFirst);
  }

  /**
   * Pads sequences given as tensors of shape {@code (T_i, C)} with {@code padValue}; the result
   * is a new tensor in {@code arena} (not recorded: pad the data, not activations).
   */
  public static Padded padTensors(Arena arena, List<Tensor> sequences, boolean batchFirst,
      float padValue) {
    requireSome(sequences);
    List<float[][]> rows = new ArrayList<>();
    for (int i = 0; i < sequences.size(); i++) {
      Tensor s = Objects.requireNonNull(sequences.get(i), "sequences[" + i + "]");
      if (s.shape().rank() != 2) {
        throw new IllegalArgumentException("sequences[" + i + "]: expected shape (T, C), got "
            + s.shape());
      }
      float[] flat = s.toArray();
      int t = (int) s.dim(0);
      int c = (int) s.dim(1);
      float[][] steps = new float[t][c];
      for (int j = 0; j < t; j++) {
        System.arraycopy(flat, j * c, steps[j], 0, c);
      }
      rows.add(steps);
    }
    return pad(arena, rows, batchFirst, padValue);
  }

  /** Pads token sequences with {@code padIndex} (often 0, or the vocabulary's pad token). */
  public static PaddedTokens padTokens(List<long[]> sequences, long padIndex,
      boolean batchFirst) {
    requireSome(sequences);
    int n = sequences.size();
    long[] lengths = new long[n];
    for (int i = 0; i < n; i++) {
      long[] s = Objects.requireNonNull(sequences.get(i), "sequences[" + i + "]");
      if (s.length == 0) {
        throw new IllegalArgumentException("sequences[" + i + "]: expected at least one token");
      }
      lengths[i] = s.length;
    }
    int tMax = (int) Arrays.stream(lengths).max().getAsLong();
    long[] indices = new long[Math.multiplyExact(tMax, n)];
    Arrays.fill(indices, padIndex);
    for (int i = 0; i < n; i++) {
      long[] s = sequences.get(i);
      for (int t = 0; t < s.length; t++) {
        indices[offset(batchFirst, t, i, tMax, n, 1)] = s[t];
      }
    }
    long[] shape = batchFirst ? new long[] {n, tMax} : new long[] {tMax, n};
    return new PaddedTokens(indices, shape, lengths, batchFirst);
  }

  /**
   * Language-model windows cut from one token stream: each input is {@code length} consecutive
   * tokens and its target the same window shifted one token on, for next-token prediction.
   *
   * @param inputs row-major, of {@link #shape()}
   * @param targets the next token of each input position, in the same layout
   * @param shape {@code (N, length)} when batch-first, {@code (length, N)} otherwise
   * @param starts where each window begins in the stream, in batch order
   */
  public record TokenWindows(long[] inputs, long[] targets, long[] shape, long[] starts) {}

  /**
   * {@code count} windows of {@code length} tokens at uniformly random starts in {@code stream}
   * (PyTorch users write it as {@code torch.randint} and {@code torch.stack} of slices).
   *
   * @throws IllegalArgumentException if the stream has fewer than {@code length + 1} tokens
   */
  public static TokenWindows randomWindows(long[] stream, int length, int count,
      boolean batchFirst, RandomGenerator random) {
    Objects.requireNonNull(stream, "stream");
    Objects.requireNonNull(random, "random");
    if (length < 1) {
      throw new IllegalArgumentException("length: expected >= 1, got " + length);
    }
    if (count < 1) {
      throw new IllegalArgumentException("count: expected >= 1, got " + count);
    }
    if (stream.length < (long) length + 1) {
      throw new IllegalArgumentException("stream: expected at least length + 1 = " + (length + 1L)
          + " tokens, got " + stream.length);
    }
    long[] starts = new long[count];
    for (int n = 0; n < count; n++) {
      starts[n] = random.nextInt(stream.length - length);
    }
    int size = Math.multiplyExact(length, count);
    long[] inputs = new long[size];
    long[] targets = new long[size];
    for (int n = 0; n < count; n++) {
      for (int t = 0; t < length; t++) {
        int at = offset(batchFirst, t, n, length, count, 1);
        inputs[at] = stream[(int) starts[n] + t];
        targets[at] = stream[(int) starts[n] + t + 1];
      }
    }
    long[] shape = batchFirst ? new long[] {count, length} : new long[] {length, count};
    return new TokenWindows(inputs, targets, shape, starts);
  }

  /**
   * The key padding mask {@code (N, maxLength)} of sequences of these lengths: element {@code
   * [i, t]} is 1 when {@code t >= lengths[i]} (padding, to ignore) and 0 otherwise.
   */
  public static Tensor keyPaddingMask(Arena arena, long[] lengths, long maxLength) {
    Objects.requireNonNull(arena, "arena");
    Objects.requireNonNull(lengths, "lengths");
    int n = lengths.length;
    float[] mask = new float[Math.multiplyExact(n, Math.toIntExact(maxLength))];
    for (int i = 0; i < n; i++) {
      if (lengths[i] < 0 || lengths[i] > maxLength) {
        throw new IllegalArgumentException("lengths[" + i + "]: expected 0 <= length <= "
            + maxLength + ", got " + lengths[i]);
      }
      for (long t = lengths[i]; t < maxLength; t++) {
        mask[(int) (i * maxLength + t)] = 1f;
      }
    }
    return Tensor.fromArray(arena, mask, n, maxLength);
  }

  /**
   * The indices of the samples sorted by decreasing length (stable: ties keep their order), as
   * packed sequences want them.
   */
  public static int[] sortedByLength(long[] lengths) {
    Objects.requireNonNull(lengths, "lengths");
    Integer[] order = new Integer[lengths.length];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    Arrays.sort(order, Comparator.comparingLong((Integer i) -> lengths[i]).reversed());
    return Arrays.stream(order).mapToInt(Integer::intValue).toArray();
  }

  /**
   * Buckets by length: the samples sorted by length are cut into batches of {@code batchSize}
   * (the last may be smaller) whose order is shuffled with {@code seed}, so each batch pads
   * little and the batch order still varies.
   */
  public static List<int[]> bucketByLength(long[] lengths, int batchSize, long seed) {
    if (batchSize < 1) {
      throw new IllegalArgumentException("batchSize: expected >= 1, got " + batchSize);
    }
    int[] order = sortedByLength(lengths);
    List<int[]> batches = new ArrayList<>();
    for (int start = 0; start < order.length; start += batchSize) {
      batches.add(Arrays.copyOfRange(order, start, Math.min(order.length, start + batchSize)));
    }
    SplittableRandom random = new SplittableRandom(seed);
    for (int i = batches.size() - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int[] swap = batches.get(i);
      batches.set(i, batches.get(j));
      batches.set(j, swap);
    }
    return batches;
  }

  private static int offset(boolean batchFirst, int t, int i, int tMax, int n, int channels) {
    return (batchFirst ? i * tMax + t : t * n + i) * channels;
  }

  private static Padded padded(Arena arena, float[] data, long[] lengths, int tMax, int n,
      int channels, boolean batchFirst) {
    Tensor values = batchFirst ? Tensor.fromArray(arena, data, n, tMax, channels)
        : Tensor.fromArray(arena, data, tMax, n, channels);
    return new Padded(values, lengths, keyPaddingMask(arena, lengths, tMax), batchFirst);
  }

  private static void requireSome(List<?> sequences) {
    Objects.requireNonNull(sequences, "sequences");
    if (sequences.isEmpty()) {
      throw new IllegalArgumentException("sequences: expected at least one sequence");
    }
  }
}
