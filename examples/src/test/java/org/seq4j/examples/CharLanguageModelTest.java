package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The character-level language model trains, saves, reloads and samples the names' alphabet. */
class CharLanguageModelTest {
  @Test
  void trainsSavesReloadsAndSamples(@TempDir Path folder) throws Exception {
    String sampled = CharLanguageModel.run(12, folder);
    assertEquals(200, sampled.length());
    assertTrue(Files.size(folder.resolve("char-lm.safetensors")) > 0);
    assertTrue(sampled.chars().allMatch(c -> c == '\n' || c == '-' || c == ' ' || c == '\''
        || (c >= 'a' && c <= 'z')), "only characters of the names: " + sampled);
  }
}
