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
import java.util.Map;
import java.util.Properties;
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
    return startProbe(jvmOptions, Map.of());
  }

  static Process startProbe(List<String> jvmOptions, Map<String, String> environment)
      throws IOException {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElseThrow());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(LoaderProbe.class.getName());
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().putAll(environment);
    return builder.start();
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
    NativeLoader.Resources resources = NativeLoader.findResources(platform);
    List<NativeLoader.Entry> manifest = NativeLoader.readManifest(resources, platform);
    Path folder = temp.resolve("threads");
    int threads = 4;
    CyclicBarrier start = new CyclicBarrier(threads);
    List<CompletableFuture<Void>> runs = new ArrayList<>();
    for (int t = 0; t < threads; t++) {
      runs.add(CompletableFuture.runAsync(() -> {
        try {
          start.await();
          NativeLoader.extract(resources, folder, manifest);
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
    NativeLoader.Resources resources = NativeLoader.findResources(NativeLoader.platform());
    NativeLoader.Entry forged = new NativeLoader.Entry("natives.list", "00".repeat(32));
    Path folder = temp.resolve("forged");
    var e = assertThrows(IllegalStateException.class,
        () -> NativeLoader.extract(resources, folder, List.of(forged)));
    assertTrue(e.getMessage().startsWith("natives.list: SHA-256 of"), e.getMessage());
    assertTrue(e.getMessage().contains("expected " + "00".repeat(32)), e.getMessage());
    assertFalse(Files.exists(folder.resolve("natives.list")));
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
    String first = NativeLoader.readManifest(NativeLoader.findResources(NativeLoader.platform()),
        NativeLoader.platform()).getFirst().fileName();
    assertTrue(text.contains("1. -Dseq4j.library.path=" + empty + ": IllegalStateException:"
        + " missing " + empty.resolve(first)), text);
    assertTrue(text.contains("org.seq4j:seq4j-native:" + NativeLoader.javaVersion() + ":"
        + NativeLoader.platform()), text);
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
    String platform = NativeLoader.platform();
    List<String> names = NativeLoader.readManifest(NativeLoader.findResources(platform), platform)
        .stream().map(NativeLoader.Entry::fileName).toList();
    // Linux: the bundled libraries under names of their own, lib<name>-seq4j-<8 hex>.so.<major>
    // (native/cmake/isolate_sonames.cmake), so that no other copy in the process shares them.
    List<String> expected = List.of("libgomp-seq4j-%s.so.1", "libdnnl-seq4j-%s.so.3",
        "libquadmath-seq4j-%s.so.0", "libgfortran-seq4j-%s.so.5", "libopenblas-seq4j-%s.so.0",
        "libseq4j.so");
    assertEquals(NativeLoader.libraryFileName(platform, "seq4j"), names.getLast());
    List<String> loaded = Seq4j.runtimeInfo().libraries().stream()
        .map(path -> path.getFileName().toString()).toList();
    assertEquals(names, loaded);
    if (!platform.equals("linux-x86_64")) {
      return; // the files of the other platforms: native/cmake/test_platforms.cmake
    }
    assertEquals(expected.size(), names.size(), names.toString());
    for (int i = 0; i < names.size(); i++) {
      String pattern = expected.get(i).replace(".", "\\.").replace("%s", "[0-9a-f]{8}");
      assertTrue(names.get(i).matches(pattern), names.get(i) + " is not " + expected.get(i));
    }
  }

  @Test
  void anUnwritableUserCacheFallsBackToThePerUserTempFolder() throws Exception {
    // Tests run as root, which ignores permission bits: a cache home below a regular file can be
    // created by nobody, which is what a read-only home looks like to the loader.
    Path file = Files.writeString(temp.resolve("a-file"), "not a folder");
    Path tmp = Files.createDirectories(temp.resolve("tmp"));
    Result result = finish(startProbe(List.of("--enable-native-access=ALL-UNNAMED",
        "-Djava.io.tmpdir=" + tmp), Map.of("XDG_CACHE_HOME", file.resolve("cache").toString())));
    assertEquals(0, result.exitCode(), result.output());
    Path expected = tmp.resolve("seq4j-" + System.getProperty("user.name"));
    assertTrue(result.output().contains("OK " + expected.resolve(
        NativeLoader.javaVersion() + "-" + NativeLoader.platform() + "-")), result.output());
    assertTrue(result.output().contains("into the per-user temp folder (java.io.tmpdir), since "
        + file.resolve("cache").resolve("seq4j") + " failed"), result.output());
    // A second JVM reuses the folder: one per user and version, not one per process.
    Result again = finish(startProbe(List.of("--enable-native-access=ALL-UNNAMED",
        "-Djava.io.tmpdir=" + tmp), Map.of("XDG_CACHE_HOME", file.resolve("cache").toString())));
    assertEquals(0, again.exitCode(), again.output());
    try (Stream<Path> folders = Files.list(expected)) {
      assertEquals(1, folders.count());
    }
  }

  @Test
  void anUnusableCacheDirPropertyFailsWithoutFallback() throws Exception {
    Path file = Files.writeString(temp.resolve("a-file"), "not a folder");
    Result result = finish(startProbe(List.of("--enable-native-access=ALL-UNNAMED",
        "-D" + NativeLoader.CACHE_DIR_PROPERTY + "=" + file.resolve("cache"))));
    assertEquals(3, result.exitCode(), result.output());
    assertTrue(result.output().contains("1. extract into " + file.resolve("cache")), result.output());
    assertFalse(result.output().contains("2. "), result.output());
  }

  @Test
  void platformNamesForEverySupportedPlatform() {
    assertEquals("linux-x86_64", NativeLoader.platform("Linux", "amd64"));
    assertEquals("linux-x86_64", NativeLoader.platform("Linux", "x86_64"));
    assertEquals("linux-aarch64", NativeLoader.platform("Linux", "aarch64"));
    assertEquals("macosx-arm64", NativeLoader.platform("Mac OS X", "aarch64"));
    assertEquals("macosx-x86_64", NativeLoader.platform("Mac OS X", "x86_64"));
    assertEquals("windows-x86_64", NativeLoader.platform("Windows 11", "amd64"));
    assertEquals("windows-aarch64", NativeLoader.platform("Windows 11", "aarch64"));
    assertEquals("freebsd-x86_64", NativeLoader.platform("FreeBSD", "amd64"));
    assertEquals("linux-ppc64le", NativeLoader.platform("Linux", "ppc64le"));
    for (String platform : List.of("linux-x86_64", "linux-aarch64", "macosx-arm64",
        "windows-x86_64")) {
      assertTrue(NativeLoader.SUPPORTED_PLATFORMS.contains(platform), platform);
    }
    assertEquals(4, NativeLoader.SUPPORTED_PLATFORMS.size());
  }

  @Test
  void libraryFileNamesPerOperatingSystem() {
    assertEquals("libseq4j.so", NativeLoader.libraryFileName("linux-x86_64", "seq4j"));
    assertEquals("libseq4j.so", NativeLoader.libraryFileName("linux-aarch64", "seq4j"));
    assertEquals("libseq4j.dylib", NativeLoader.libraryFileName("macosx-arm64", "seq4j"));
    assertEquals("seq4j.dll", NativeLoader.libraryFileName("windows-x86_64", "seq4j"));
  }

  @Test
  void aMissingOrUnsupportedPlatformNamesThePlatformAndTheArtifact() {
    String version = NativeLoader.javaVersion();
    String missing = NativeLoader.missingPlatform("linux-aarch64").getMessage();
    assertTrue(missing.contains("platform linux-aarch64"), missing);
    assertTrue(missing.contains("add the dependency org.seq4j:seq4j-native:" + version
        + ":linux-aarch64"), missing);
    String unsupported = NativeLoader.missingPlatform("freebsd-x86_64").getMessage();
    assertTrue(unsupported.contains("no native libraries for platform freebsd-x86_64"), unsupported);
    assertTrue(unsupported.contains("org.seq4j:seq4j-native:" + version + ":<classifier> is built"
        + " for linux-x86_64, linux-aarch64, macosx-arm64, windows-x86_64"), unsupported);
  }

  @Test
  void cacheRootsPerOperatingSystemAndOverride() {
    Properties properties = new Properties();
    properties.setProperty("user.home", "/home/ada");
    properties.setProperty("user.name", "ada");
    properties.setProperty("java.io.tmpdir", "/tmp");
    assertEquals(List.of(Path.of("/home/ada/.cache/seq4j"), Path.of("/tmp/seq4j-ada")),
        roots(NativeLoader.cacheRoots(properties, Map.of(), "linux-aarch64")));
    assertEquals(List.of(Path.of("/xdg/seq4j"), Path.of("/tmp/seq4j-ada")),
        roots(NativeLoader.cacheRoots(properties, Map.of("XDG_CACHE_HOME", "/xdg"),
            "linux-x86_64")));
    assertEquals(List.of(Path.of("/home/ada/Library/Caches/seq4j"), Path.of("/tmp/seq4j-ada")),
        roots(NativeLoader.cacheRoots(properties, Map.of(), "macosx-arm64")));
    assertEquals(Path.of("/local", "seq4j", "cache"),
        roots(NativeLoader.cacheRoots(properties, Map.of("LOCALAPPDATA", "/local"),
            "windows-x86_64")).getFirst());
    properties.setProperty(NativeLoader.CACHE_DIR_PROPERTY, "/opt/cache");
    assertEquals(List.of(Path.of("/opt/cache")),
        roots(NativeLoader.cacheRoots(properties, Map.of("XDG_CACHE_HOME", "/xdg"),
            "linux-x86_64")));
  }

  private static List<Path> roots(List<NativeLoader.CacheRoot> roots) {
    return roots.stream().map(NativeLoader.CacheRoot::root).toList();
  }

  @Test
  void theNativeJarIsFoundOnAModulePathItselfOrInItsFolder() throws Exception {
    String platform = NativeLoader.platform();
    Path jar = null;
    for (String entry : System.getProperty("java.class.path").split(java.io.File.pathSeparator)) {
      if (entry.endsWith(".jar") && Path.of(entry).getFileName().toString()
          .startsWith("seq4j-native")) {
        jar = Path.of(entry);
      }
    }
    if (jar == null) {
      return; // run from an IDE with the native module's folder on the class path
    }
    NativeLoader.Resources byJar = NativeLoader.findOnModulePath(
        temp + java.io.File.pathSeparator + jar, platform);
    assertTrue(byJar != null && byJar.location().contains(jar.toString()), String.valueOf(byJar));
    Path folder = Files.createDirectories(temp.resolve("mods"));
    Files.copy(jar, folder.resolve(jar.getFileName()));
    NativeLoader.Resources inFolder = NativeLoader.findOnModulePath(folder.toString(), platform);
    assertTrue(inFolder != null, "found in a folder of JARs");
    assertEquals(
        NativeLoader.readManifest(NativeLoader.findResources(platform), platform),
        NativeLoader.readManifest(inFolder, platform));
    assertEquals(null, NativeLoader.findOnModulePath(temp.resolve("tmp").toString(), platform));
  }

  @Test
  void onlyDifferingCopiesOfOurDependenciesFromAnotherFolderAreReported() throws Exception {
    if (!Files.isReadable(Path.of("/proc/self/maps"))) {
      return; // Linux only
    }
    String platform = NativeLoader.platform();
    List<NativeLoader.Entry> manifest =
        NativeLoader.readManifest(NativeLoader.findResources(platform), platform);
    Path ours = Seq4j.runtimeInfo().libraryFolder();
    assertEquals(List.of(), NativeLoader.sameNamesAlreadyLoaded(ours, manifest));
    // Seen from another folder, the files this JVM loaded have our names and our contents (as
    // those of another seq4j with the same natives would): nothing to report.
    assertEquals(List.of(), NativeLoader.sameNamesAlreadyLoaded(
        Files.createDirectories(temp.resolve("other")), manifest));
    // A file of one of our names but other contents (in a maps line as the kernel writes it).
    String gomp = manifest.getFirst().fileName();
    Path other = Files.createDirectories(temp.resolve("elsewhere"));
    Path same = Files.copy(ours.resolve(gomp), Files.createDirectories(temp.resolve("same"))
        .resolve(gomp));
    Path different = Files.writeString(other.resolve(gomp), "another build");
    Path unrelated = Files.writeString(other.resolve("libopenblas.so.0"), "JavaCPP's");
    List<String> maps = List.of(
        "7f0000000000-7f0000001000 r--p 00000000 08:01 1234   " + same,
        "7f0000001000-7f0000002000 r-xp 00001000 08:01 1235   " + different,
        "7f0000002000-7f0000003000 r--p 00002000 08:01 1235   " + different,
        "7f0000003000-7f0000004000 r--p 00000000 08:01 1236   " + unrelated,
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0      [stack]");
    assertEquals(List.of(different.toString()),
        NativeLoader.sameNamesAlreadyLoaded(ours, manifest, maps));
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
