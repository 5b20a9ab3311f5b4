package org.seq4j.internal;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Properties;

/**
 * Finds and loads libseq4j and its dependencies. Lookup order:
 *
 * <ol>
 *   <li>the folder named by the system property {@value #LIBRARY_PATH_PROPERTY}, holding ready
 *       libraries under the names of the manifest (when the property is set, nothing else is
 *       tried: a misconfigured folder must not be hidden by a fallback);
 *   <li>extraction from the class path: {@code libseq4j.so} from the seq4j JAR, oneDNN, OpenMP,
 *       OpenBLAS and the Fortran runtime from the {@code org.bytedeco} JARs, into a cache folder
 *       named by seq4j version, platform and manifest hash, under {@value #CACHE_DIR_PROPERTY} or
 *       {@code $XDG_CACHE_HOME/seq4j} or {@code ~/.cache/seq4j}.
 * </ol>
 *
 * <p>Each file is written to a temporary file in the cache folder, its SHA-256 checked against the
 * manifest built with the library, then atomically renamed into place; a file that exists under its
 * final name is therefore complete, and JVMs that start together never see half a file. Libraries
 * load in manifest order: OpenMP, oneDNN, the Fortran runtime, OpenBLAS, then seq4j.
 */
public final class NativeLoader {
  /** System property: a folder of ready native libraries to load instead of extracting. */
  public static final String LIBRARY_PATH_PROPERTY = "seq4j.library.path";

  /** System property: the folder under which extracted libraries are cached. */
  public static final String CACHE_DIR_PROPERTY = "seq4j.cache.dir";

  private static final String ARTIFACTS =
      "org.seq4j:seq4j, org.bytedeco:dnnl:3.13-1.5.14:%1$s and"
          + " org.bytedeco:openblas:0.3.31-1.5.13:%1$s";

  /** What was loaded: the folder, the files in load order, and the lookup of libseq4j. */
  public record Loaded(Path folder, List<Path> libraries, SymbolLookup lookup) {}

  /** One line of natives.list. */
  record Entry(String fileName, String sha256, String resource) {}

  private NativeLoader() {}

  /** The platform folder name, such as {@code linux-x86_64}. */
  public static String platform() {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    String osName =
        os.startsWith("linux") ? "linux"
            : os.startsWith("mac") || os.startsWith("darwin") ? "macosx"
            : os.startsWith("windows") ? "windows" : os.replace(' ', '_');
    String archName =
        switch (arch) {
          case "amd64", "x86_64" -> "x86_64";
          case "aarch64", "arm64" -> "arm64";
          default -> arch;
        };
    return osName + "-" + archName;
  }

  /** The seq4j version of the Java side, from the JAR's {@code seq4j.properties}. */
  public static String javaVersion() {
    try (InputStream in = NativeLoader.class.getResourceAsStream("/org/seq4j/seq4j.properties")) {
      if (in == null) {
        return "unknown";
      }
      Properties properties = new Properties();
      properties.load(in);
      return properties.getProperty("version", "unknown");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Loads everything or throws one {@link UnsatisfiedLinkError} that lists every attempt, the
   * platform, and the artifacts to add.
   */
  public static Loaded load() {
    String platform = platform();
    List<String> attempts = new ArrayList<>();
    String readyFolder = System.getProperty(LIBRARY_PATH_PROPERTY);
    List<Entry> manifest;
    try {
      manifest = readManifest(platform);
    } catch (RuntimeException | IOException e) {
      attempts.add("read the manifest " + manifestResource(platform) + ": " + e.getMessage());
      throw failure(platform, attempts, e);
    }
    if (readyFolder != null && !readyFolder.isBlank()) {
      Path folder = Path.of(readyFolder).toAbsolutePath();
      try {
        return loadFrom(folder, manifest);
      } catch (RuntimeException | LinkageError e) {
        attempts.add("-D" + LIBRARY_PATH_PROPERTY + "=" + folder + ": " + describe(e));
        throw failure(platform, attempts, e);
      }
    }
    attempts.add("-D" + LIBRARY_PATH_PROPERTY + ": not set");
    Path folder = null;
    try {
      folder = cacheFolder(platform, manifest);
      extract(folder, manifest);
      return loadFrom(folder, manifest);
    } catch (RuntimeException | IOException | LinkageError e) {
      attempts.add(
          "extract from the class path into " + (folder == null ? cacheRoot() : folder) + ": "
              + describe(e));
      throw failure(platform, attempts, e);
    }
  }

  private static String describe(Throwable e) {
    if (e instanceof IllegalCallerException) {
      return "native access is not enabled for " + moduleName() + ": add "
          + NativeAccess.flag() + " to the java command line (or 'Enable-Native-Access:"
          + " ALL-UNNAMED' to the manifest of an executable JAR) [" + e.getMessage() + "]";
    }
    return e.getClass().getSimpleName() + ": " + e.getMessage();
  }

  private static String moduleName() {
    Module module = NativeLoader.class.getModule();
    return module.isNamed() ? "module " + module.getName() : "the class path (unnamed module)";
  }

  private static UnsatisfiedLinkError failure(
      String platform, List<String> attempts, Throwable cause) {
    StringBuilder text =
        new StringBuilder("seq4j could not load its native libraries for platform ")
            .append(platform)
            .append(" (java.version ")
            .append(System.getProperty("java.version"))
            .append("). Attempts, in order:");
    for (int i = 0; i < attempts.size(); i++) {
      text.append("\n  ").append(i + 1).append(". ").append(attempts.get(i));
    }
    text.append("\nThe class path must hold ").append(String.format(ARTIFACTS, platform));
    text.append("; or set -D")
        .append(LIBRARY_PATH_PROPERTY)
        .append(" to a folder of ready libraries. To move the cache (e.g. off a noexec"
            + " folder) set -D")
        .append(CACHE_DIR_PROPERTY)
        .append('.');
    UnsatisfiedLinkError error = new UnsatisfiedLinkError(text.toString());
    error.initCause(cause);
    return error;
  }

  static String manifestResource(String platform) {
    return "org/seq4j/native/" + platform + "/natives.list";
  }

  static List<Entry> readManifest(String platform) throws IOException {
    URL url = resource(manifestResource(platform));
    if (url == null) {
      throw new IllegalStateException(
          "not on the class path: this seq4j JAR has no natives for " + platform);
    }
    List<Entry> entries = new ArrayList<>();
    try (BufferedReader reader =
        new BufferedReader(new InputStreamReader(url.openStream(), StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] fields = line.trim().split("\\s+");
        if (fields.length != 3) {
          throw new IllegalStateException("malformed manifest line: " + line);
        }
        entries.add(new Entry(fields[0], fields[1], fields[2]));
      }
    }
    return entries;
  }

  static Path cacheRoot() {
    String configured = System.getProperty(CACHE_DIR_PROPERTY);
    if (configured != null && !configured.isBlank()) {
      return Path.of(configured).toAbsolutePath();
    }
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base =
        xdg != null && !xdg.isBlank()
            ? Path.of(xdg)
            : Path.of(System.getProperty("user.home"), ".cache");
    return base.resolve("seq4j").toAbsolutePath();
  }

  /** Keyed by version, platform and a hash of the manifest, so rebuilt snapshots never mix. */
  static Path cacheFolder(String platform, List<Entry> manifest) {
    MessageDigest digest = sha256();
    for (Entry entry : manifest) {
      digest.update((entry.fileName() + " " + entry.sha256() + "\n").getBytes(StandardCharsets.UTF_8));
    }
    String key = HexFormat.of().formatHex(digest.digest()).substring(0, 12);
    return cacheRoot().resolve(javaVersion() + "-" + platform + "-" + key);
  }

  static void extract(Path folder, List<Entry> manifest) throws IOException {
    Files.createDirectories(folder);
    for (Entry entry : manifest) {
      Path target = folder.resolve(entry.fileName());
      if (Files.isRegularFile(target)) {
        continue; // only ever created by an atomic rename of a verified file
      }
      URL url = resource(entry.resource());
      if (url == null) {
        throw new IllegalStateException(
            entry.fileName() + ": resource " + entry.resource() + " is not on the class path");
      }
      Path temporary = Files.createTempFile(folder, "." + entry.fileName() + ".", ".part");
      try {
        MessageDigest digest = sha256();
        try (InputStream in = new DigestInputStream(url.openStream(), digest)) {
          Files.copy(in, temporary, StandardCopyOption.REPLACE_EXISTING);
        }
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equalsIgnoreCase(entry.sha256())) {
          throw new IllegalStateException(
              entry.fileName() + ": SHA-256 of " + url + " is " + actual + ", expected "
                  + entry.sha256() + " (a different version of its JAR is on the class path?)");
        }
        try {
          Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString("rwxr-xr-x"));
        } catch (UnsupportedOperationException notPosix) {
          // Windows: permissions do not gate loading
        }
        moveIntoPlace(temporary, target);
      } finally {
        Files.deleteIfExists(temporary);
      }
    }
  }

  private static void moveIntoPlace(Path temporary, Path target) throws IOException {
    try {
      Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (FileAlreadyExistsException anotherJvmWasFaster) {
      // the other JVM's file is verified and identical
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("the cache folder " + target.getParent()
          + " does not support atomic renames; set -D" + CACHE_DIR_PROPERTY
          + " to a local folder", e);
    }
  }

  private static Loaded loadFrom(Path folder, List<Entry> manifest) {
    List<Path> loaded = new ArrayList<>();
    SymbolLookup lookup = null;
    for (Entry entry : manifest) {
      Path file = folder.resolve(entry.fileName());
      if (!Files.isRegularFile(file)) {
        throw new IllegalStateException("missing " + file);
      }
      try {
        lookup = SymbolLookup.libraryLookup(file, Arena.global());
      } catch (IllegalArgumentException e) {
        throw new IllegalStateException(
            "cannot load " + file + " (" + e.getMessage() + "; is the folder mounted noexec?"
                + " then set -D" + CACHE_DIR_PROPERTY + ")", e);
      }
      loaded.add(file);
    }
    if (lookup == null) {
      throw new IllegalStateException("the manifest lists no libraries");
    }
    return new Loaded(folder, List.copyOf(loaded), lookup);
  }

  private static URL resource(String name) {
    ClassLoader loader = NativeLoader.class.getClassLoader();
    return loader != null ? loader.getResource(name) : ClassLoader.getSystemResource(name);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM lacks SHA-256", e);
    }
  }
}
