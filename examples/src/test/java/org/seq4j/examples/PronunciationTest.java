package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

/** The many-to-many demo, shortened: its loss falls and greedy decoding yields phones. */
class PronunciationTest {
  @Test
  void learnsAndTranscribes() throws Exception {
    List<Pronunciation.Word> words = Pronunciation.load();
    assertTrue(words.size() > 10_000, "words: " + words.size());
    try (Pronunciation.Model model = new Pronunciation.Model()) {
      double[] result = Pronunciation.train(model, words.subList(100, 2600),
          words.subList(0, 50), 3, true);
      double uniform = Math.log(Pronunciation.PHONES.size());
      assertTrue(result[2] < result[0], "loss falls: " + java.util.Arrays.toString(result));
      assertTrue(result[2] < 0.9 * uniform, "below a uniform guess: " + result[2]);
      List<int[]> transcribed = Pronunciation.transcribe(model, words.subList(0, 3));
      assertEquals(3, transcribed.size());
      for (int[] phones : transcribed) {
        assertTrue(phones.length <= Pronunciation.MAX_PHONES + 1);
        for (int p : phones) {
          assertTrue(p > Pronunciation.EOS && p < Pronunciation.PHONES.size(), "a phone: " + p);
        }
      }
      assertEquals(1, Pronunciation.editDistance(new int[] {3, 4, 5}, new int[] {3, 5}));
    }
  }
}
