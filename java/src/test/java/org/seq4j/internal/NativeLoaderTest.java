package org.seq4j.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.seq4j.Seq4j;

class NativeLoaderTest {

  @TempDir Path temp;

  record Result(int exitCode, String output) {}

  /** Runs {@link LoaderProbe} in a fresh JVM with the test class path and the given options. */
  static Process startProbe(List<String> jvmOptions) throws IOException {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElseThrow());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(LoaderProbe.class.getName());
    return new ProcessBuilder(command).redirectErrorStream(true).start();
  }

  static Result finish(Process process) throws Exception {
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the probe JVM did not finish");
    return new Result(process.exitValue(), output);
  }

  @Test
  void twoJvmsExtractingIntoAnEmptyCacheAtOnceBothSucceed() throws Exception {
    Path cache = temp.resolve("cache");
    List<String> options = List.of("--enable-native-access=ALL-UNNAMED",
        "-D" + NativeLoader.CACHE_DIR_PROPERTY + "=" + cache);
    Process first = startProbe(options);
    Process second = startProbe(options);
    Result a = finish(first);
    Result b = finish(second);
    assertEquals(0, a.exitCode(), a.output());
    assertEquals(0, b.exitCode(), b.output());
    assertTrue(a.output().contains("OK " + cache), a.output());
    assertNoPartialFiles(cache);
  }

  @Test
  void concurrentExtractionInOneJvmLeavesVerifiedFilesOnly() throws Exception {
    String platform = NativeLoader.platform();
    List<NativeLoader.Entry> manifest = NativeLoader.readManifest(platform);
    Path folder = temp.resolve("threads");
    int threads = 4;
    CyclicBarrier start = new CyclicBarrier(threads);
    List<CompletableFuture<Void>> runs = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      runs.add(CompletableFuture.runAsync(() -> {
        try {
          start.await();
          NativeLoader.extract(folder, manifest);
        } catch (Exception e) {
          throw new RuntimeException(e);
        }
      }));
    }
    for (CompletableFuture<Void> run : runs) {
      run.get(120, TimeUnit.SECONDS);
    }
    for (NativeLoader.Entry entry : manifest) {
      assertTrue(Files.isRegularFile(folder.resolve(entry.fileName())), entry.fileName());
    }
    assertNoPartialFiles(folder);
  }

  @Test
  void aFileWhoseHashDiffersIsRejectedAndNotLeftBehind() throws Exception {
    String platform = NativeLoader.platform();
    NativeLoader.Entry forged = new NativeLoader.Entry("libforged.so", "00".repeat(32),
        NativeLoader.manifestResource(platform));
    Path folder = temp.resolve("forged");
    var e = assertThrows(IllegalStateException.class,
        () -> NativeLoader.extract(folder, List.of(forged)));
    assertTrue(e.getMessage().startsWith("libforged.so: SHA-256 of"), e.getMessage());
    assertTrue(e.getMessage().contains("expected " + "00".repeat(32)), e.getMessage());
    assertFalse(Files.exists(folder.resolve("libforged.so")));
    assertNoPartialFiles(folder);
  }

  @Test
  void aWrongLibraryFolderFailsWithEveryAttemptListed() throws Exception {
    Path empty = Files.createDirectories(temp.resolve("empty"));
    Result result = finish(startProbe(List.of("--enable-native-access=ALL-UNNAMED",
        "-D" + NativeLoader.LIBRARY_PATH_PROPERTY + "=" + empty)));
    assertEquals(3, result.exitCode(), result.output());
    String text = result.output();
    assertTrue(text.contains("java.lang.UnsatisfiedLinkError: seq4j could not load its native"
        + " libraries for platform " + NativeLoader.platform()), text);
    assertTrue(text.contains("1. -Dseq4j.library.path=" + empty + ": IllegalStateException:"
        + " missing " + empty.resolve("libgomp.so.1")), text);
    assertTrue(text.contains("org.bytedeco:dnnl:3.13-1.5.14:" + NativeLoader.platform()), text);
  }

  @Test
  void aReadyLibraryFolderIsLoadedWithoutExtraction() throws Exception {
    Path ready = Seq4j.runtimeInfo().libraryFolder();
    Result result = finish(startProbe(List.of("--enable-native-access=ALL-UNNAMED",
        "-D" + NativeLoader.LIBRARY_PATH_PROPERTY + "=" + ready,
        "-D" + NativeLoader.CACHE_DIR_PROPERTY + "=" + temp.resolve("unused"))));
    assertEquals(0, result.exitCode(), result.output());
    assertTrue(result.output().contains("OK " + ready), result.output());
    assertFalse(Files.exists(temp.resolve("unused")), "nothing was extracted");
  }

  @Test
  void deniedNativeAccessNamesTheFlagToAdd() throws Exception {
    Result result = finish(startProbe(List.of("--illegal-native-access=deny",
        "-D" + NativeLoader.CACHE_DIR_PROPERTY + "=" + temp.resolve("denied"))));
    assertEquals(3, result.exitCode(), result.output());
    assertTrue(result.output().contains("add --enable-native-access=ALL-UNNAMED to the java"
        + " command line"), result.output());
  }

  @Test
  void manifestListsDependenciesBeforeSeq4jInLoadOrder() throws Exception {
    List<String> names = NativeLoader.readManifest(NativeLoader.platform()).stream()
        .map(NativeLoader.Entry::fileName).toList();
    assertEquals(List.of("libgomp.so.1", "libdnnl.so.3", "libquadmath.so.0", "libgfortran.so.5",
        "libopenblas.so.0", "libseq4j.so"), names);
    List<String> loaded = Seq4j.runtimeInfo().libraries().stream()
        .map(path -> path.getFileName().toString()).toList();
    assertEquals(names, loaded);
  }

  private static void assertNoPartialFiles(Path folder) throws IOException {
    if (!Files.exists(folder)) {
      return;
    }
    try (Stream<Path> files = Files.list(folder)) {
      List<Path> partial = files.filter(p -> p.getFileName().toString().endsWith(".part"))
          .toList();
      assertTrue(partial.isEmpty(), "left behind: " + partial);
    }
  }
}
