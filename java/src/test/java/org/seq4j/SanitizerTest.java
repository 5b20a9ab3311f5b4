package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.seq4j.internal.NativeBindings;

/**
 * The sanitize profile catches what it is for ({@code mvn -Psanitize verify}, README,
 * "Sanitizers"): a native write one float past the end of a seq4j tensor kills a forked JVM with
 * AddressSanitizer's heap-buffer-overflow report, naming the seq4j function. This works only
 * because tensors come from {@code seq4j_alloc}, i.e. from the allocator libseq4j links (ASan's
 * there), with their exact size. Runs only under the profile, which sets {@code seq4j.sanitized}
 * and the environment (LD_PRELOAD, ASAN_OPTIONS) that the forked JVM inherits.
 */
@EnabledIfSystemProperty(named = "seq4j.sanitized", matches = "true")
class SanitizerTest {

  /** The forked JVM: a 16-float tensor, and a native fill of 17 floats into it. */
  public static final class PlantedOverflow {
    public static void main(String[] args) {
      try (Arena arena = Arena.ofConfined()) {
        Tensor tensor = Tensor.uninitialized(arena, 16);
        // the public API checks sizes; the binding does not: 17 floats into a 64-byte block
        NativeBindings.fill(tensor.segment(), 1f, 17);
        System.out.println("planted overflow: not detected");
      }
      System.exit(0);
    }
  }

  @Test
  void aPlantedHeapOverflowInASeq4jTensorIsReported() throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("--enable-native-access=ALL-UNNAMED");
    for (String property : new String[] {"seq4j.cache.dir", "seq4j.memory.cache"}) {
      String value = System.getProperty(property);
      if (value != null) {
        command.add("-D" + property + "=" + value);
      }
    }
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(PlantedOverflow.class.getName());
    Path log = Files.createTempFile("seq4j-planted-overflow", ".log");
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(log.toFile()).start();
      if (!process.waitFor(180, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new AssertionError("the forked JVM did not end within 180 s");
      }
      check(process.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(log);
    }
  }

  private static void check(int exitValue, String report) {
    assertNotEquals(0, exitValue, "the forked JVM survived the overflow:\n" + report);
    assertTrue(report.contains("ERROR: AddressSanitizer: heap-buffer-overflow"),
        "no ASan report:\n" + report);
    assertTrue(report.contains("WRITE of size"), "not reported as a write:\n" + report);
    assertTrue(report.contains("seq4j_fill"), "the report does not name seq4j_fill:\n" + report);
    assertTrue(report.contains("64-byte region"),
        "the block's exact size (64 bytes) is not in the report:\n" + report);
    assertTrue(report.contains("seq4j_alloc"),
        "the block was not allocated by seq4j_alloc:\n" + report);
    System.out.println("planted overflow, the forked JVM's report:\n" + report);
  }
}
