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

  /**
   * The forked JVM. "small": a 16-float tensor and a native fill of 17 floats into it. "cached": a
   * 4 MiB block released into NativeMemory's cache and handed out again for 3 MiB, and a fill one
   * float past those 3 MiB (inside the block's capacity: only the poisoning catches it).
   */
  public static final class PlantedOverflow {
    public static void main(String[] args) {
      if (args[0].equals("cached")) {
        try (Arena arena = Arena.ofConfined()) {
          Tensor.uninitialized(arena, 1 << 20).fill(0f);
        }
        try (Arena arena = Arena.ofConfined()) {
          Tensor tensor = Tensor.uninitialized(arena, 3 << 18);
          NativeBindings.fill(tensor.segment(), 1f, (3 << 18) + 1);
        }
      } else {
        try (Arena arena = Arena.ofConfined()) {
          Tensor tensor = Tensor.uninitialized(arena, 16);
          // the public API checks sizes; the binding does not: 17 floats into a 64-byte block
          NativeBindings.fill(tensor.segment(), 1f, 17);
        }
      }
      System.out.println("planted overflow: not detected");
      System.exit(0);
    }
  }

  @Test
  void aPlantedOverflowOfABlockReusedFromTheCacheIsReported() throws Exception {
    String report = runPlanted("cached");
    assertTrue(report.contains("ERROR: AddressSanitizer: use-after-poison"),
        "no ASan report:\n" + report);
    assertTrue(report.contains("seq4j_fill"), "the report does not name seq4j_fill:\n" + report);
  }

  @Test
  void aPlantedHeapOverflowInASeq4jTensorIsReported() throws Exception {
    String report = runPlanted("small");
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

  /** Runs PlantedOverflow in a forked JVM; returns its output after checking that it died. */
  private static String runPlanted(String which) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("--enable-native-access=ALL-UNNAMED");
    for (String property : new String[] {"seq4j.cache.dir"}) {
      String value = System.getProperty(property);
      if (value != null) {
        command.add("-D" + property + "=" + value);
      }
    }
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(PlantedOverflow.class.getName());
    command.add(which);
    Path log = Files.createTempFile("seq4j-planted-overflow", ".log");
    try {
      Process process = new ProcessBuilder(command).redirectErrorStream(true)
          .redirectOutput(log.toFile()).start();
      if (!process.waitFor(180, TimeUnit.SECONDS)) {
        process.destroyForcibly();
        throw new AssertionError("the forked JVM did not end within 180 s");
      }
      String report = Files.readString(log, StandardCharsets.UTF_8);
      assertNotEquals(0, process.exitValue(), "the forked JVM survived the overflow:\n" + report);
      return report;
    } finally {
      Files.deleteIfExists(log);
    }
  }
}
