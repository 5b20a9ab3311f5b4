package org.seq4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.seq4j.Shape;
import org.seq4j.Tensor;

/** Padding, lengths and masks, element by element; seeded mini-batches. */
class SequencesTest {
  static final float[][] A = {{1, 2}, {3, 4}, {5, 6}};
  static final float[][] B = {{7, 8}};
  static final float[][] C = {{9, 10}, {11, 12}};

  @Test
  void timeMajorPaddingLengthsAndMask() {
    try (Arena arena = Arena.ofConfined()) {
      Sequences.Padded p = Sequences.pad(arena, List.of(A, B, C), false, -1f);
      assertEquals(Shape.of(3, 3, 2), p.values().shape());
      assertArrayEquals(new float[] {
          1, 2, 7, 8, 9, 10, // t = 0: samples 0, 1, 2
          3, 4, -1, -1, 11, 12, // t = 1
          5, 6, -1, -1, -1, -1}, p.values().toArray()); // t = 2
      assertArrayEquals(new long[] {3, 1, 2}, p.lengths());
      assertEquals(Shape.of(3, 3), p.keyPaddingMask().shape());
      assertArrayEquals(new float[] {0, 0, 0, 0, 1, 1, 0, 0, 1}, p.keyPaddingMask().toArray());
      assertEquals(3, p.maxLength());
    }
  }

  /** The lengths feed an LSTM: a padded sample's states stop at its length, as if unpadded. */
  @Test
  void lengthsMakePaddingInvisibleToARecurrentLayer() {
    // on each backend (AUTO may choose differently for the two calls, whose bits then differ)
    for (org.seq4j.Backend backend : List.of(org.seq4j.Backend.BLAS, org.seq4j.Backend.ONEDNN)) {
      paddingIsInvisible(backend);
    }
  }

  private static void paddingIsInvisible(org.seq4j.Backend backend) {
    try (Arena arena = Arena.ofConfined(); var off = org.seq4j.Autograd.noGrad();
        org.seq4j.nn.Lstm lstm = org.seq4j.nn.Lstm.builder(2, 3).backend(backend).seed(4)
            .build()) {
      Sequences.Padded p = Sequences.pad(arena, List.of(A, B), false, 100f);
      var padded = lstm.forward(arena, p.values(), null, p.lengths(),
          org.seq4j.nn.Mode.INFERENCE);
      var alone = lstm.forward(arena, Sequences.pad(arena, List.<float[][]>of(B), false, 0f)
          .values(), null, null, org.seq4j.nn.Mode.INFERENCE);
      // sample 1's final states (layers 1, N 2, H 3) are its one real step's, not the padding's
      float[] h = padded.finalState().hidden().toArray();
      float[] c = padded.finalState().cell().toArray();
      assertArrayEquals(alone.finalState().hidden().toArray(), Arrays.copyOfRange(h, 3, 6), 0f,
          backend.toString());
      assertArrayEquals(alone.finalState().cell().toArray(), Arrays.copyOfRange(c, 3, 6), 0f,
          backend.toString());
      assertNotEquals(h[0], alone.finalState().hidden().toArray()[0]);
    }
  }

  @Test
  void batchFirstPaddingOfTensors() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4, 5, 6}, 3, 2);
      Tensor c = Tensor.fromArray(arena, new float[] {9, 10, 11, 12}, 2, 2);
      Sequences.Padded p = Sequences.padTensors(arena, List.of(a, c), true, 0f);
      assertEquals(Shape.of(2, 3, 2), p.values().shape());
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 0, 0},
          p.values().toArray());
      assertArrayEquals(new long[] {3, 2}, p.lengths());
      assertArrayEquals(new float[] {0, 0, 0, 0, 0, 1}, p.keyPaddingMask().toArray());
    }
  }

  @Test
  void tokensPadForEmbedding() {
    Sequences.PaddedTokens t = Sequences.padTokens(List.of(new long[] {5, 6, 7},
        new long[] {8}), 0, false);
    assertArrayEquals(new long[] {3, 2}, t.shape());
    assertArrayEquals(new long[] {5, 8, 6, 0, 7, 0}, t.indices());
    assertArrayEquals(new long[] {3, 1}, t.lengths());
    Sequences.PaddedTokens f = Sequences.padTokens(List.of(new long[] {5, 6, 7},
        new long[] {8}), 99, true);
    assertArrayEquals(new long[] {2, 3}, f.shape());
    assertArrayEquals(new long[] {5, 6, 7, 8, 99, 99}, f.indices());
    try (Arena arena = Arena.ofConfined()) {
      assertArrayEquals(new float[] {0, 0, 0, 0, 1, 1}, f.keyPaddingMask(arena).toArray());
      assertArrayEquals(new float[] {0, 0, 0, 0, 1, 1}, t.keyPaddingMask(arena).toArray());
    }
  }

  @Test
  void badInputsAreNamed() {
    try (Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class,
          () -> Sequences.pad(arena, List.of(A, new float[][] {{1, 2, 3}}), false, 0));
      assertEquals("sequences[1][0]: expected 2 channels (as the first step of sequences[0]),"
          + " got 3", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Sequences.pad(arena, List.of(A, new float[0][]), false, 0));
      assertEquals("sequences[1]: expected at least one step", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Sequences.padTokens(List.of(), 0, false));
      assertEquals("sequences: expected at least one sequence", e.getMessage());
    }
  }

  @Test
  void sortingAndBucketing() {
    long[] lengths = {3, 1, 4, 1, 5, 2};
    assertArrayEquals(new int[] {4, 2, 0, 5, 1, 3}, Sequences.sortedByLength(lengths));
    List<int[]> buckets = Sequences.bucketByLength(lengths, 2, 7);
    assertEquals(3, buckets.size());
    List<String> got = new ArrayList<>();
    for (int[] b : buckets) {
      got.add(Arrays.toString(b));
    }
    got.sort(null);
    assertEquals(List.of("[0, 5]", "[1, 3]", "[4, 2]"), got);
    List<String> again = new ArrayList<>();
    for (int[] b : Sequences.bucketByLength(lengths, 2, 7)) {
      again.add(Arrays.toString(b));
    }
    List<String> unsorted = new ArrayList<>();
    for (int[] b : buckets) {
      unsorted.add(Arrays.toString(b));
    }
    assertEquals(unsorted, again, "the same seed, the same order");
  }

  @Test
  void miniBatchesVisitEverySampleOncePerEpochInASeededOrder() {
    MiniBatches<int[]> batches = MiniBatches.shuffled(10, 4, 42, i -> i);
    assertEquals(3, batches.batchCount());
    List<int[]> epoch0 = new ArrayList<>();
    batches.forEach(epoch0::add);
    List<int[]> epoch1 = new ArrayList<>();
    batches.forEach(epoch1::add);
    assertEquals(List.of(4, 4, 2), epoch0.stream().map(b -> b.length).toList());
    int[] all = epoch0.stream().flatMapToInt(Arrays::stream).sorted().toArray();
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, all);
    assertArrayEquals(batches.order(0), epoch0.stream().flatMapToInt(Arrays::stream).toArray());
    assertArrayEquals(batches.order(1), epoch1.stream().flatMapToInt(Arrays::stream).toArray());
    assertNotEquals(Arrays.toString(batches.order(0)), Arrays.toString(batches.order(1)));
    assertArrayEquals(MiniBatches.shuffled(10, 4, 42, i -> i).order(1), batches.order(1));
    assertEquals(2, batches.dropLast().batchCount());
    assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
        MiniBatches.inOrder(10, 3, i -> i).order(5));
  }

  /** Windows and their one-step-shifted targets, element by element, in both layouts. */
  @Test
  void randomWindowsAreShiftedByOneTokenInBothLayouts() {
    long[] stream = new long[50];
    for (int i = 0; i < stream.length; i++) {
      stream[i] = 100 + i;
    }
    for (boolean batchFirst : new boolean[] {true, false}) {
      var w = Sequences.randomWindows(stream, 7, 5, batchFirst, new java.util.Random(3));
      assertArrayEquals(batchFirst ? new long[] {5, 7} : new long[] {7, 5}, w.shape());
      for (int n = 0; n < 5; n++) {
        long start = w.starts()[n];
        assertEquals(true, start >= 0 && start + 7 < stream.length, "start " + start);
        for (int t = 0; t < 7; t++) {
          int at = batchFirst ? n * 7 + t : t * 5 + n;
          assertEquals(100 + start + t, w.inputs()[at]);
          assertEquals(100 + start + t + 1, w.targets()[at]);
        }
      }
      var again = Sequences.randomWindows(stream, 7, 5, batchFirst, new java.util.Random(3));
      assertArrayEquals(w.starts(), again.starts(), "the same seed, the same windows");
    }
    // the only window of a stream of length + 1 tokens
    var only = Sequences.randomWindows(new long[] {1, 2, 3}, 2, 4, true, new java.util.Random(1));
    assertArrayEquals(new long[] {1, 2, 1, 2, 1, 2, 1, 2}, only.inputs());
    assertArrayEquals(new long[] {2, 3, 2, 3, 2, 3, 2, 3}, only.targets());
    var e = assertThrows(IllegalArgumentException.class,
        () -> Sequences.randomWindows(new long[] {1, 2}, 2, 1, true, new java.util.Random(1)));
    assertEquals("stream: expected at least length + 1 = 3 tokens, got 2", e.getMessage());
    var length = assertThrows(IllegalArgumentException.class,
        () -> Sequences.randomWindows(stream, 0, 1, true, new java.util.Random(1)));
    assertEquals("length: expected >= 1, got 0", length.getMessage());
    var count = assertThrows(IllegalArgumentException.class,
        () -> Sequences.randomWindows(stream, 3, -2, true, new java.util.Random(1)));
    assertEquals("count: expected >= 1, got -2", count.getMessage());
    var random = assertThrows(NullPointerException.class,
        () -> Sequences.randomWindows(stream, 3, 2, true, null));
    assertEquals("random", random.getMessage());
  }

  @Test
  void aCharacterVocabularyIsSortedAndRoundTrips() {
    String text = "banana\nbandana ä€";
    Vocabulary v = Vocabulary.ofCharacters(text);
    assertEquals(List.of("\n", " ", "a", "b", "d", "n", "ä", "€"), v.tokens());
    assertEquals(8, v.size());
    assertEquals(2, v.index('a'));
    assertEquals("€", v.token(7));
    long[] codes = v.encodeCharacters(text);
    assertArrayEquals(new long[] {3, 2, 5, 2, 5, 2, 0}, Arrays.copyOf(codes, 7));
    assertEquals(text, v.decodeCharacters(codes));
    var missing = assertThrows(IllegalArgumentException.class, () -> v.index('z'));
    assertEquals("token: expected one of the 8 tokens of the vocabulary, got 'z'",
        missing.getMessage());
    var outside = assertThrows(IndexOutOfBoundsException.class, () -> v.token(8));
    assertEquals("index: expected a value in [0, 8), got 8", outside.getMessage());
    // a code point outside the BMP is one token, not two surrogates
    Vocabulary emoji = Vocabulary.ofCharacters("a\uD83D\uDE00a");
    assertEquals(2, emoji.size());
    assertEquals("a\uD83D\uDE00a", emoji.decodeCharacters(emoji.encodeCharacters("a\uD83D\uDE00a")));
    assertThrows(IllegalArgumentException.class, () -> Vocabulary.ofCharacters(""));
  }

  @Test
  void aTokenVocabularyEncodesAndDecodesWords() {
    Vocabulary v = Vocabulary.of(List.of("the", "cat", "sat", "on", "the", "mat"));
    assertEquals(List.of("cat", "mat", "on", "sat", "the"), v.tokens());
    assertArrayEquals(new long[] {4, 0, 3}, v.encode(List.of("the", "cat", "sat")));
    assertEquals(List.of("the", "cat", "sat"), v.decode(4, 0, 3));
    assertEquals(true, v.contains("mat"));
    assertEquals(false, v.contains("dog"));
    var none = assertThrows(IllegalArgumentException.class, () -> Vocabulary.of(List.of()));
    assertEquals("tokens: expected at least one token, got none", none.getMessage());
    var nullToken = assertThrows(NullPointerException.class,
        () -> Vocabulary.of(java.util.Arrays.asList("a", null)));
    assertEquals("tokens[1]", nullToken.getMessage());
    var unknown = assertThrows(IllegalArgumentException.class, () -> v.encode(List.of("dog")));
    assertEquals("token: expected one of the 5 tokens of the vocabulary, got 'dog'",
        unknown.getMessage());
  }
}
