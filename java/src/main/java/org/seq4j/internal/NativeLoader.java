package org.seq4j.internal;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.net.URI;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.zip.ZipFile;

/**
 * Finds and loads libseq4j and its dependencies (oneDNN, OpenMP, OpenBLAS, the Fortran runtime).
 *
 * <p>The native files of a platform come from the JAR {@code org.seq4j:seq4j-native:<version>:
 * <platform>}, under {@code org/seq4j/native/<platform>/}: a manifest {@code natives.list} ({@code
 * <file name> <sha256>} per line, in load order) and the files it names, beside it. Lookup order:
 *
 * <ol>
 *   <li>the folder named by the system property {@value #LIBRARY_PATH_PROPERTY}, holding ready
 *       libraries under the names of the manifest (when the property is set, nothing else is
 *       tried: a misconfigured folder must not be hidden by a fallback);
 *   <li>extraction of the JAR's files into a cache folder named by seq4j version, platform and
 *       manifest hash ({@code <root>/<version>-<platform>-<hash>/}), then loading them from there.
 *       The root is {@value #CACHE_DIR_PROPERTY} when set (nothing else is tried then); otherwise
 *       the per-user cache ({@code $XDG_CACHE_HOME/seq4j} or {@code ~/.cache/seq4j} on Linux,
 *       {@code ~/Library/Caches/seq4j} on macOS, {@code %LOCALAPPDATA%\seq4j\cache} on Windows),
 *       and when that cannot be written or loaded from (read-only or {@code noexec} home), the
 *       per-user folder {@code <java.io.tmpdir>/seq4j-<user>}: one per user and version, reused by
 *       every JVM, never a fresh folder per process. {@link org.seq4j.Seq4j#runtimeInfo()} says
 *       which folder was used and why.
 * </ol>
 *
 * <p>Each file is written to a temporary file in the cache folder, its SHA-256 checked against the
 * manifest built with the library, then atomically renamed into place; a file that exists under its
 * final name is therefore complete, and JVMs that start together never see half a file.
 *
 * <p>Old versions stay in the cache root beside the current one; nothing deletes them. Each is one
 * folder {@code <version>-<platform>-<hash>} (about 156 MB on linux-x86_64) and may be removed
 * whenever no JVM of that version runs.
 */
public final class NativeLoader {
  /** System property: a folder of ready native libraries to load instead of extracting. */
  public static final String LIBRARY_PATH_PROPERTY = "seq4j.library.path";

  /** System property: the folder under which extracted libraries are cached. */
  public static final String CACHE_DIR_PROPERTY = "seq4j.cache.dir";

  /** The platform classifiers seq4j-native is built for. */
  public static final List<String> SUPPORTED_PLATFORMS =
      List.of("linux-x86_64", "linux-aarch64", "macosx-arm64", "windows-x86_64");

  /** The prefix of the automatic module names of the native JARs ({@code native} is a keyword). */
  static final String NATIVE_MODULE_PREFIX = "org.seq4j.natives.";

  /**
   * What was loaded: the folder, the files in load order, the lookup of libseq4j, and in words
   * where the files came from and why this folder was used.
   */
  public record Loaded(Path folder, List<Path> libraries, SymbolLookup lookup, String source) {}

  /** One line of natives.list. */
  record Entry(String fileName, String sha256) {}

  /** The platform's folder of natives inside a JAR or directory: the manifest and its files. */
  record Resources(String base, String location) {
    InputStream open(String fileName) throws IOException {
      return URI.create(base + fileName).toURL().openStream();
    }

    String describe(String fileName) {
      return base + fileName;
    }
  }

  /** A cache root to try, why it is the one, and whether other users share its parent. */
  record CacheRoot(Path root, String why, boolean sharedParent) {}

  private NativeLoader() {}

  /** The platform classifier of this JVM, such as {@code linux-x86_64}. */
  public static String platform() {
    return platform(System.getProperty("os.name", ""), System.getProperty("os.arch", ""));
  }

  /**
   * The platform classifier for an {@code os.name} and {@code os.arch}: one of {@link
   * #SUPPORTED_PLATFORMS} when seq4j-native is built for it, otherwise a descriptive {@code
   * <os>-<arch>}.
   */
  static String platform(String osName, String osArch) {
    String os = osName.toLowerCase(Locale.ROOT);
    String arch = osArch.toLowerCase(Locale.ROOT);
    String osPart =
        os.startsWith("linux") ? "linux"
            : os.startsWith("mac") || os.startsWith("darwin") ? "macosx"
            : os.startsWith("windows") ? "windows"
            : os.replaceAll("[^a-z0-9]+", "");
    // Names as in the classifiers: x86_64 everywhere; ARM 64-bit is "aarch64" on Linux (as the
    // JDK, GCC and Debian say) and "arm64" on macOS (as Apple says).
    String archPart =
        switch (arch) {
          case "amd64", "x86_64", "x64" -> "x86_64";
          case "aarch64", "arm64" -> osPart.equals("macosx") ? "arm64" : "aarch64";
          default -> arch.replaceAll("[^a-z0-9_]+", "");
        };
    return osPart + "-" + archPart;
  }

  /**
   * The file name of a shared library on a platform: {@code libX.so} on Linux, {@code
   * libX.dylib} on macOS, {@code X.dll} on Windows.
   */
  static String libraryFileName(String platform, String name) {
    if (platform.startsWith("windows-")) {
      return name + ".dll";
    }
    if (platform.startsWith("macosx-")) {
      return "lib" + name + ".dylib";
    }
    return "lib" + name + ".so";
  }

  /** The Maven coordinates of the native JAR of a platform. */
  static String artifact(String platform) {
    return "org.seq4j:seq4j-native:" + javaVersion() + ":" + platform;
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
   * Loads everything or throws one {@link UnsatisfiedLinkError}: for a platform without natives
   * it names the platform and the artifact to add; otherwise it lists every attempt.
   */
  public static Loaded load() {
    String platform = platform();
    Resources resources = findResources(platform);
    if (resources == null) {
      throw missingPlatform(platform);
    }
    List<String> attempts = new ArrayList<>();
    List<Entry> manifest;
    try {
      manifest = readManifest(resources, platform);
    } catch (RuntimeException | IOException e) {
      attempts.add("read " + resources.describe("natives.list") + ": " + describe(e));
      throw failure(platform, attempts, e);
    }
    String readyFolder = System.getProperty(LIBRARY_PATH_PROPERTY);
    if (readyFolder != null && !readyFolder.isBlank()) {
      Path folder = Path.of(readyFolder).toAbsolutePath();
      try {
        return loadFrom(folder, manifest, "ready libraries from -D" + LIBRARY_PATH_PROPERTY);
      } catch (RuntimeException | LinkageError e) {
        attempts.add("-D" + LIBRARY_PATH_PROPERTY + "=" + folder + ": " + describe(e));
        throw failure(platform, attempts, e);
      }
    }
    Throwable last = null;
    List<String> refused = new ArrayList<>();
    for (CacheRoot root : cacheRoots()) {
      Path folder = root.root().resolve(cacheFolderName(platform, manifest));
      try {
        prepareRoot(root);
        extract(resources, folder, manifest);
        String why = refused.isEmpty() ? root.why() : root.why() + ", since " + String.join(
            "; and ", refused);
        return loadFrom(folder, manifest,
            "extracted from " + resources.location() + " into the " + why);
      } catch (RuntimeException | IOException | LinkageError e) {
        attempts.add("extract into " + folder + " (" + root.why() + "): " + describe(e));
        refused.add(root.root() + " failed (" + describe(e) + ")");
        last = e;
      }
    }
    throw failure(platform, attempts, last);
  }

  // ---------------------------------------------------------------------------------------------
  // Where the natives are.
  //
  // The native JAR holds resources only, in org/seq4j/native/<platform>/, which is not a package
  // ("native" is a keyword, "-" is not allowed), so on the module path its automatic module
  // (Automatic-Module-Name org.seq4j.natives.<platform with _>) has no packages and its resources
  // are not encapsulated. But a module is only in the graph when something requires it or
  // --add-modules names it, and org.seq4j cannot require a per-platform module. So:
  //   1. the class loader of seq4j: the class path, a fat JAR, and every resolved module of the
  //      boot layer (including a native module added with --add-modules);
  //   2. the modules named org.seq4j.natives.* of seq4j's own layer and of the boot layer (a
  //      module layer of an application server or plugin system, whose loader is not ours);
  //   3. the entries of the module path (jdk.module.path) themselves: JAR files and directories
  //      of JARs or exploded modules, opened as files. This is the common case of a modular
  //      application, which requires org.seq4j and simply puts the native JAR beside it; it
  //      needs no --add-modules and costs one look into each module-path JAR, once, at load.
  // ---------------------------------------------------------------------------------------------

  static String folderResource(String platform) {
    return "org/seq4j/native/" + platform + "/";
  }

  static String manifestResource(String platform) {
    return folderResource(platform) + "natives.list";
  }

  static Resources findResources(String platform) {
    String manifest = manifestResource(platform);
    ClassLoader loader = NativeLoader.class.getClassLoader();
    URL url = loader != null ? loader.getResource(manifest) : ClassLoader.getSystemResource(manifest);
    if (url != null) {
      String text = url.toString();
      return new Resources(text.substring(0, text.length() - "natives.list".length()),
          "the class path (" + jarOf(text) + ")");
    }
    Set<ModuleLayer> layers = new LinkedHashSet<>();
    if (NativeLoader.class.getModule().getLayer() != null) {
      layers.add(NativeLoader.class.getModule().getLayer());
    }
    layers.add(ModuleLayer.boot());
    for (ModuleLayer layer : layers) {
      for (Module module : layer.modules()) {
        if (!module.getName().startsWith(NATIVE_MODULE_PREFIX)) {
          continue;
        }
        Resources found = fromModule(module, platform);
        if (found != null) {
          return found;
        }
      }
    }
    return findOnModulePath(System.getProperty("jdk.module.path"), platform);
  }

  private static Resources fromModule(Module module, String platform) {
    var location = module.getLayer() == null ? null
        : module.getLayer().configuration().findModule(module.getName())
            .flatMap(resolved -> resolved.reference().location());
    if (location == null || location.isEmpty()) {
      return null;
    }
    Path path;
    try {
      path = Path.of(location.get());
    } catch (RuntimeException notAFile) {
      return null;
    }
    return fromPath(path, platform, "module " + module.getName());
  }

  /** Looks into each entry of a module path (a JAR, an exploded module, or a folder of them). */
  static Resources findOnModulePath(String modulePath, String platform) {
    if (modulePath == null || modulePath.isBlank()) {
      return null;
    }
    for (String element : modulePath.split(File.pathSeparator)) {
      if (element.isBlank()) {
        continue;
      }
      Path entry = Path.of(element);
      Resources found = fromPath(entry, platform, "the module path");
      if (found != null) {
        return found;
      }
      if (Files.isDirectory(entry) && !Files.exists(entry.resolve("module-info.class"))) {
        try (DirectoryStream<Path> children = Files.newDirectoryStream(entry)) {
          for (Path child : children) {
            found = fromPath(child, platform, "the module path");
            if (found != null) {
              return found;
            }
          }
        } catch (IOException unreadable) {
          // the JVM itself would have refused an unreadable module path entry
        }
      }
    }
    return null;
  }

  private static Resources fromPath(Path path, String platform, String where) {
    String manifest = manifestResource(platform);
    if (Files.isDirectory(path)) {
      Path folder = path.resolve(folderResource(platform));
      if (Files.isRegularFile(folder.resolve("natives.list"))) {
        return new Resources(folder.toUri().toString(), where + " (" + path + ")");
      }
      return null;
    }
    if (!Files.isRegularFile(path) || !path.getFileName().toString().endsWith(".jar")) {
      return null;
    }
    try (ZipFile zip = new ZipFile(path.toFile())) {
      if (zip.getEntry(manifest) == null) {
        return null;
      }
    } catch (IOException notAZip) {
      return null;
    }
    return new Resources("jar:" + path.toAbsolutePath().toUri() + "!/" + folderResource(platform),
        where + " (" + path.toAbsolutePath() + ")");
  }

  private static String jarOf(String url) {
    int bang = url.lastIndexOf("!/");
    String text = bang >= 0 ? url.substring(0, bang) : url;
    return text.startsWith("jar:") ? text.substring(4) : text;
  }

  // ---------------------------------------------------------------------------------------------
  // The manifest.
  // ---------------------------------------------------------------------------------------------

  /**
   * Reads natives.list: {@code <file name> <sha256>} per line, in load order; a third column (the
   * older format's resource name) is ignored. The last entry must be libseq4j of the platform.
   */
  static List<Entry> readManifest(Resources resources, String platform) throws IOException {
    List<Entry> entries = new ArrayList<>();
    try (BufferedReader reader = new BufferedReader(
        new InputStreamReader(resources.open("natives.list"), StandardCharsets.UTF_8))) {
      for (String line = reader.readLine(); line != null; line = reader.readLine()) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] fields = line.trim().split("\\s+");
        if (fields.length < 2 || fields.length > 3 || fields[0].contains("/")
            || fields[0].contains("\\") || fields[0].startsWith(".")) {
          throw new IllegalStateException("malformed manifest line: " + line);
        }
        entries.add(new Entry(fields[0], fields[1]));
      }
    }
    String library = libraryFileName(platform, "seq4j");
    if (entries.isEmpty() || !entries.getLast().fileName().equals(library)) {
      throw new IllegalStateException("the manifest does not end with " + library + ": " + entries);
    }
    return entries;
  }

  // ---------------------------------------------------------------------------------------------
  // The cache.
  // ---------------------------------------------------------------------------------------------

  /** The roots to try, in order. */
  static List<CacheRoot> cacheRoots() {
    return cacheRoots(System.getProperties(), System.getenv(), platform());
  }

  static List<CacheRoot> cacheRoots(Properties properties, Map<String, String> env,
      String platform) {
    String configured = properties.getProperty(CACHE_DIR_PROPERTY);
    if (configured != null && !configured.isBlank()) {
      return List.of(new CacheRoot(Path.of(configured).toAbsolutePath(),
          "folder set by -D" + CACHE_DIR_PROPERTY, false));
    }
    List<CacheRoot> roots = new ArrayList<>();
    String home = properties.getProperty("user.home", "");
    if (platform.startsWith("windows-")) {
      String local = env.get("LOCALAPPDATA");
      if (local != null && !local.isBlank()) {
        roots.add(new CacheRoot(Path.of(local, "seq4j", "cache"), "user cache %LOCALAPPDATA%", false));
      }
    } else if (platform.startsWith("macosx-")) {
      roots.add(new CacheRoot(Path.of(home, "Library", "Caches", "seq4j"),
          "user cache ~/Library/Caches", false));
    } else {
      String xdg = env.get("XDG_CACHE_HOME");
      if (xdg != null && !xdg.isBlank()) {
        roots.add(new CacheRoot(Path.of(xdg, "seq4j"), "user cache $XDG_CACHE_HOME", false));
      } else if (!home.isBlank()) {
        roots.add(new CacheRoot(Path.of(home, ".cache", "seq4j"), "user cache ~/.cache", false));
      }
    }
    String user = properties.getProperty("user.name", "user").replaceAll("[^A-Za-z0-9._-]", "_");
    roots.add(new CacheRoot(
        Path.of(properties.getProperty("java.io.tmpdir", "/tmp"), "seq4j-" + user),
        "per-user temp folder (java.io.tmpdir)", true));
    List<CacheRoot> absolute = new ArrayList<>();
    for (CacheRoot root : roots) {
      absolute.add(new CacheRoot(root.root().toAbsolutePath(), root.why(), root.sharedParent()));
    }
    return absolute;
  }

  /**
   * Creates a root. The temp folder is shared by all users, so there the folder must be a real
   * directory (not a link) owned by this user, created private to it.
   */
  private static void prepareRoot(CacheRoot root) throws IOException {
    Path path = root.root();
    if (!root.sharedParent()) {
      Files.createDirectories(path);
      return;
    }
    if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
      Files.createDirectories(path.getParent());
      try {
        Files.createDirectory(path);
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rwx------"));
      } catch (FileAlreadyExistsException anotherJvmWasFaster) {
        // checked below like any existing folder
      } catch (UnsupportedOperationException notPosix) {
        // Windows: %TEMP% is per-user already
      }
    }
    if (!Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(path + " exists and is not a directory");
    }
    String owner = Files.getOwner(path, LinkOption.NOFOLLOW_LINKS).getName();
    String user = System.getProperty("user.name", "");
    if (!owner.equals(user) && !owner.endsWith("\\" + user)) {
      throw new IOException(path + " belongs to " + owner + ", not to " + user);
    }
  }

  /** Keyed by version, platform and a hash of the manifest, so rebuilt snapshots never mix. */
  static String cacheFolderName(String platform, List<Entry> manifest) {
    MessageDigest digest = sha256();
    for (Entry entry : manifest) {
      digest.update((entry.fileName() + " " + entry.sha256() + "\n").getBytes(StandardCharsets.UTF_8));
    }
    String key = HexFormat.of().formatHex(digest.digest()).substring(0, 12);
    return javaVersion() + "-" + platform + "-" + key;
  }

  static void extract(Resources resources, Path folder, List<Entry> manifest) throws IOException {
    Files.createDirectories(folder);
    for (Entry entry : manifest) {
      Path target = folder.resolve(entry.fileName());
      if (Files.isRegularFile(target)) {
        continue; // only ever created by an atomic rename of a verified file
      }
      Path temporary = Files.createTempFile(folder, "." + entry.fileName() + ".", ".part");
      try {
        MessageDigest digest = sha256();
        try (InputStream in = new DigestInputStream(open(resources, entry), digest)) {
          Files.copy(in, temporary, StandardCopyOption.REPLACE_EXISTING);
        }
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equalsIgnoreCase(entry.sha256())) {
          throw new IllegalStateException(
              entry.fileName() + ": SHA-256 of " + resources.describe(entry.fileName()) + " is "
                  + actual + ", expected " + entry.sha256() + " (a damaged or mixed-up JAR?)");
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

  private static InputStream open(Resources resources, Entry entry) throws IOException {
    try {
      return resources.open(entry.fileName());
    } catch (IOException e) {
      throw new IOException(entry.fileName() + ": " + resources.describe(entry.fileName())
          + " cannot be read (" + e + ")", e);
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

  private static Loaded loadFrom(Path folder, List<Entry> manifest, String source) {
    List<String> clashes = sameNamesAlreadyLoaded(folder, manifest);
    if (!clashes.isEmpty()) {
      Set<String> names = new LinkedHashSet<>();
      for (String clash : clashes) {
        names.add(Path.of(clash).getFileName().toString());
      }
      source += "; WARNING: other files named " + String.join(", ", names) + " were already"
          + " loaded in this process (" + String.join(", ", clashes) + ") and differ from"
          + " seq4j's; libseq4j binds to those, since the dynamic linker matches dependencies by"
          + " soname";
      System.getLogger("org.seq4j").log(System.Logger.Level.WARNING, source);
    }
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
    return new Loaded(folder, List.copyOf(loaded), lookup, source);
  }

  /**
   * Linux: the files of other folders, already mapped into this process, that have the name of
   * one of our dependencies and other contents. glibc resolves libseq4j's DT_NEEDED entries by
   * soname against every object already loaded, so such a file is the one libseq4j would use.
   *
   * <p>The Linux natives ship under sonames of their own ({@code lib<name>-seq4j-<hash>.so.<n>},
   * the hash that of the original file), so another library's {@code libopenblas.so.0} or {@code
   * libdnnl.so.3} (JavaCPP, DL4J, PyTorch for Java) never matches. A file of the same name can
   * only come from another seq4j in the same process (another version in another class loader,
   * or a {@code -Dseq4j.library.path} folder); with the same name it holds the same library and
   * is harmless, so it is only reported when its SHA-256 differs from the manifest's (a modified
   * or hand-made copy). Said in runtimeInfo and logged; not an error.
   */
  static List<String> sameNamesAlreadyLoaded(Path folder, List<Entry> manifest) {
    Path maps = Path.of("/proc/self/maps");
    if (!Files.isReadable(maps)) {
      return List.of();
    }
    try {
      return sameNamesAlreadyLoaded(folder, manifest, Files.readAllLines(maps));
    } catch (IOException | RuntimeException unreadable) {
      return List.of();
    }
  }

  /** The same, for the lines of a {@code /proc/<pid>/maps}. */
  static List<String> sameNamesAlreadyLoaded(Path folder, List<Entry> manifest,
      List<String> mapsLines) {
    Map<String, Entry> dependencies = new HashMap<>();
    for (int i = 0; i < manifest.size() - 1; i++) {
      dependencies.put(manifest.get(i).fileName(), manifest.get(i));
    }
    Set<String> clashes = new LinkedHashSet<>();
    Set<String> seen = new HashSet<>();
    try {
      Path ours = folder.toRealPath();
      for (String line : mapsLines) {
        int slash = line.indexOf('/');
        if (slash < 0) {
          continue;
        }
        String mapped = line.substring(slash).trim();
        if (!seen.add(mapped)) {
          continue; // one file has several mappings
        }
        Path file = Path.of(mapped.endsWith(" (deleted)")
            ? mapped.substring(0, mapped.length() - " (deleted)".length()) : mapped);
        Entry entry = file.getFileName() == null ? null
            : dependencies.get(file.getFileName().toString());
        if (entry != null && !ours.equals(file.getParent()) && !sameContents(file, entry)) {
          clashes.add(mapped);
        }
      }
    } catch (IOException | RuntimeException unreadable) {
      return List.of();
    }
    return List.copyOf(clashes);
  }

  /** Whether a file holds the bytes the manifest names (false when it cannot be read). */
  private static boolean sameContents(Path file, Entry entry) {
    MessageDigest digest = sha256();
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), digest)) {
      in.transferTo(OutputStream.nullOutputStream());
    } catch (IOException | RuntimeException unreadable) {
      return false;
    }
    return HexFormat.of().formatHex(digest.digest()).equalsIgnoreCase(entry.sha256());
  }

  // ---------------------------------------------------------------------------------------------
  // Errors.
  // ---------------------------------------------------------------------------------------------

  /** The one error of a platform whose natives are not there (or not built at all). */
  static UnsatisfiedLinkError missingPlatform(String platform) {
    String text;
    if (SUPPORTED_PLATFORMS.contains(platform)) {
      text = "seq4j found no native libraries for platform " + platform
          + " on the class path or the module path: add the dependency " + artifact(platform)
          + " (or org.seq4j:seq4j-platform, which holds every platform)";
    } else {
      text = "seq4j has no native libraries for platform " + platform + " (os.name "
          + System.getProperty("os.name") + ", os.arch " + System.getProperty("os.arch")
          + "): org.seq4j:seq4j-native:" + javaVersion() + ":<classifier> is built for "
          + String.join(", ", SUPPORTED_PLATFORMS) + ". A libseq4j built from source for this"
          + " platform can be loaded with -D" + LIBRARY_PATH_PROPERTY + "=<folder>";
    }
    return new UnsatisfiedLinkError(text);
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
    text.append("\nThe natives come from ").append(artifact(platform));
    text.append("; or set -D")
        .append(LIBRARY_PATH_PROPERTY)
        .append(" to a folder of ready libraries. To move the cache (e.g. off a noexec"
            + " folder) set -D")
        .append(CACHE_DIR_PROPERTY)
        .append('.');
    UnsatisfiedLinkError error = new UnsatisfiedLinkError(text.toString());
    if (cause != null) {
      error.initCause(cause);
    }
    return error;
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("this JVM lacks SHA-256", e);
    }
  }
}
