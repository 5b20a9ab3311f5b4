package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The one-to-many demo, shortened: its loss falls below a uniform guess and it writes names. */
class NameGeneratorTest {
  @Test
  void learnsAndWritesNames() throws Exception {
    List<String> names = NameGenerator.load();
    assertEquals(4951, names.size());
    try (NameGenerator.Model model = new NameGenerator.Model()) {
      double[] losses = NameGenerator.train(model, names.subList(500, 1500),
          names.subList(0, 200), 3, true);
      assertTrue(losses[2] < losses[0], "training loss falls: " + java.util.Arrays.toString(losses));
      assertTrue(losses[3] < 0.8 * Math.log(NameGenerator.VOCABULARY),
          "held-out loss beats a uniform guess: " + losses[3]);
      Random random = new Random(1);
      for (int i = 0; i < 5; i++) {
        String name = NameGenerator.sample(model, random, 0.8);
        assertTrue(name.chars().allMatch(c -> NameGenerator.ALPHABET.indexOf(c) > 0), name);
        assertTrue(name.length() < 2 * NameGenerator.MAX_STEPS, name);
      }
    }
  }
}
