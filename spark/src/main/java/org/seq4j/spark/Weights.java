package org.seq4j.spark;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.seq4j.nn.Module;

/**
 * A module's state dict as safetensors bytes (the file {@link Module#save} writes), the form in
 * which weights travel from the driver to the executors and back.
 */
final class Weights {
  private Weights() {}

  /** {@code module}'s state dict as the bytes of a safetensors file. */
  static byte[] of(Module module) {
    try {
      Path file = Files.createTempFile("seq4j-weights-", ".safetensors");
      try {
        module.save(file);
        return Files.readAllBytes(file);
      } finally {
        Files.deleteIfExists(file);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the model's weights to a temporary file", e);
    }
  }

  /**
   * Loads {@code bytes} (from {@link #of}) into {@code module}, strictly, through a temporary
   * file in {@code folder} (an executor's local folder: safetensors are read from files).
   *
   * @throws IllegalArgumentException when the weights do not fit the module's parameters
   */
  static void load(Module module, byte[] bytes, Path folder) {
    try {
      Files.createDirectories(folder);
      Path file = Files.createTempFile(folder, "seq4j-weights-", ".safetensors");
      try {
        Files.write(file, bytes);
        module.load(file, true);
      } finally {
        Files.deleteIfExists(file);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the model's weights through " + folder, e);
    }
  }
}
