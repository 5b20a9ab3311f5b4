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
    CharLanguageModel.Result result = CharLanguageModel.run(12, folder);
    String sampled = result.sampled();
    assertEquals(200, sampled.length());
    assertTrue(Files.size(folder.resolve("char-lm.safetensors")) > 0);
    assertTrue(sampled.chars().allMatch(c -> c == '\n' || c == '-' || c == ' ' || c == '\''
        || (c >= 'a' && c <= 'z')), "only characters of the names: " + sampled);
    // an untrained model scores about ln(vocabulary) = ln(30) = 3.4 per character
    double validation = result.history().validationLoss().get(0);
    assertTrue(validation < 3.2, "the validation loss should fall below 3.2: " + validation);
  }
}
