import java.io.IOException;
import java.io.InputStream;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Checks that the artifacts of a build are what Maven Central would receive, in the layout of
 * 'mvn install'. Run by it/pom.xml after invoker:install as
 * {@code java LayoutCheck.java <private repo> <project root> <version> <host platform> <cross skipped>}.
 *
 * <ul>
 *   <li>installed (the private repository): seq4j-parent, seq4j-bom (POMs); seq4j (POM, JAR,
 *       sources, javadoc); seq4j-native (POM, the host platform's JAR, sources, javadoc);
 *   <li>packaged (native/target): the native JAR of every platform built here (the host's, and
 *       linux-aarch64 unless the cross build was skipped), and seq4j-platform's POM;
 *   <li>POM metadata Central requires (name, description, url, licence, developers, SCM),
 *       inherited from seq4j-parent or, for the BOM, its own;
 *   <li>seq4j is pure Java: no native files, a module-info for org.seq4j, no org.bytedeco
 *       dependency in its POM;
 *   <li>each native JAR holds only org/seq4j/native/&lt;platform&gt;/ with natives.list, the files
 *       it names (SHA-256 as listed) and LICENSE-*.txt, plus its manifest, whose
 *       Automatic-Module-Name gives a valid module with no packages.
 * </ul>
 *
 * Prints one line per check and exits 1 when any failed.
 */
public final class LayoutCheck {
  private static final List<String> failures = new ArrayList<>();
  private static int passed;

  public static void main(String[] args) throws Exception {
    Path repo = Path.of(args[0]);
    Path root = Path.of(args[1]);
    String version = args[2];
    String host = args[3];
    boolean crossSkipped = Boolean.parseBoolean(args[4]);
    Path group = repo.resolve("org/seq4j");

    Path parentPom = file(group, "seq4j-parent", version, null, "pom");
    Path bomPom = file(group, "seq4j-bom", version, null, "pom");
    Path apiPom = file(group, "seq4j", version, null, "pom");
    Path apiJar = file(group, "seq4j", version, null, "jar");
    file(group, "seq4j", version, "sources", "jar");
    file(group, "seq4j", version, "javadoc", "jar");
    Path nativePom = file(group, "seq4j-native", version, null, "pom");
    Path hostJar = file(group, "seq4j-native", version, host, "jar");
    file(group, "seq4j-native", version, "sources", "jar");
    file(group, "seq4j-native", version, "javadoc", "jar");
    check(Files.isRegularFile(root.resolve("platform/pom.xml")), "seq4j-platform POM exists");

    String parent = read(parentPom);
    for (String element : List.of("<name>", "<description>", "<url>", "<licenses>",
        "<name>Apache-2.0</name>", "<developers>", "<scm>", "<connection>",
        "<developerConnection>", "<id>release</id>", "maven-gpg-plugin")) {
      check(parent.contains(element), "seq4j-parent POM has " + element);
    }
    check(!parent.contains("<os>"), "seq4j-parent POM has no OS-activated profile");
    String bom = read(bomPom);
    for (String element : List.of("<name>", "<description>", "<url>", "<licenses>",
        "<developers>", "<scm>", "<artifactId>seq4j-native</artifactId>",
        "<classifier>linux-x86_64</classifier>", "<classifier>linux-aarch64</classifier>",
        "<classifier>macosx-arm64</classifier>", "<classifier>windows-x86_64</classifier>",
        "<artifactId>seq4j-platform</artifactId>")) {
      check(bom.contains(element), "seq4j-bom POM has " + element);
    }
    check(!bom.contains("<parent>"), "seq4j-bom has no parent (imports only its own versions)");
    String api = read(apiPom);
    check(api.contains("<name>") && api.contains("<description>"), "seq4j POM names itself");
    check(!api.contains("org.bytedeco"), "seq4j POM has no org.bytedeco dependency");
    String nat = read(nativePom);
    check(nat.contains("<name>") && nat.contains("<description>"), "seq4j-native POM names itself");
    check(!nat.contains("<dependencies>"), "seq4j-native POM has no dependencies");
    for (String pom : List.of(read(root.resolve("pom.xml")), read(root.resolve("native/pom.xml")),
        read(root.resolve("java/pom.xml")), read(root.resolve("platform/pom.xml")))) {
      check(!pom.contains("<os>"), "no OS-activated profile in a published POM");
    }

    if (apiJar != null) {
      try (ZipFile zip = new ZipFile(apiJar.toFile())) {
        List<String> natives = zip.stream().map(ZipEntry::getName)
            .filter(n -> n.endsWith(".so") || n.contains(".so.") || n.endsWith(".dll")
                || n.endsWith(".dylib")).toList();
        check(natives.isEmpty(), "seq4j JAR holds no native files " + natives);
        check(zip.getEntry("module-info.class") != null, "seq4j JAR has module-info.class");
      }
      ModuleReference module = ModuleFinder.of(apiJar).findAll().iterator().next();
      check(module.descriptor().name().equals("org.seq4j"), "seq4j JAR is module org.seq4j");
    }

    Set<String> platforms = new LinkedHashSet<>(List.of(host));
    if (!crossSkipped) {
      platforms.add("linux-aarch64");
    }
    if (hostJar != null) {
      nativeJar(hostJar, host);
    }
    for (String platform : platforms) {
      Path packaged = root.resolve("native/target/seq4j-native-" + version + "-" + platform + ".jar");
      check(Files.isRegularFile(packaged), "packaged " + packaged.getFileName());
      if (Files.isRegularFile(packaged) && !platform.equals(host)) {
        nativeJar(packaged, platform);
      }
    }

    System.out.println("layout check: " + passed + " passed, " + failures.size() + " failed");
    if (!failures.isEmpty()) {
      for (String failure : failures) {
        System.out.println("  FAILED: " + failure);
      }
      System.exit(1);
    }
  }

  private static void nativeJar(Path jar, String platform) throws Exception {
    String folder = "org/seq4j/native/" + platform + "/";
    try (JarFile zip = new JarFile(jar.toFile())) {
      ZipEntry list = zip.getEntry(folder + "natives.list");
      check(list != null, jar.getFileName() + " has " + folder + "natives.list");
      if (list == null) {
        return;
      }
      Set<String> expected = new LinkedHashSet<>();
      expected.add(folder + "natives.list");
      long librariesSize = 0;
      String text = new String(zip.getInputStream(list).readAllBytes(), StandardCharsets.UTF_8);
      for (String line : text.split("\n")) {
        if (line.isBlank() || line.startsWith("#")) {
          continue;
        }
        String[] fields = line.trim().split("\\s+");
        check(fields.length == 2, "natives.list line '" + line + "' is <file> <sha256>");
        String name = folder + fields[0];
        expected.add(name);
        ZipEntry entry = zip.getEntry(name);
        check(entry != null, jar.getFileName() + " has " + name);
        if (entry != null) {
          librariesSize += entry.getSize();
          check(sha256(zip.getInputStream(entry)).equalsIgnoreCase(fields[1]),
              name + " has the SHA-256 of natives.list");
        }
      }
      List<String> unexpected = new ArrayList<>();
      int licences = 0;
      for (ZipEntry entry : zip.stream().toList()) {
        String name = entry.getName();
        if (entry.isDirectory() || expected.contains(name) || name.equals("META-INF/MANIFEST.MF")) {
          continue;
        }
        if (name.startsWith(folder + "LICENSE-") && name.endsWith(".txt")) {
          licences++;
          continue;
        }
        unexpected.add(name);
      }
      check(unexpected.isEmpty(), jar.getFileName() + " holds nothing else " + unexpected);
      check(licences >= 4, jar.getFileName() + " has licence files (" + licences + ")");
      Manifest manifest = zip.getManifest();
      String moduleName = manifest.getMainAttributes().getValue("Automatic-Module-Name");
      check(moduleName != null && moduleName.equals(
              "org.seq4j.natives." + platform.replace('-', '_')),
          jar.getFileName() + " Automatic-Module-Name " + moduleName);
      ModuleDescriptor descriptor = ModuleFinder.of(jar).findAll().iterator().next().descriptor();
      check(descriptor.packages().isEmpty(), jar.getFileName() + " module has no packages");
      System.out.printf("  %s: %.1f MB (libraries %.1f MB unpacked), %d entries%n",
          jar.getFileName(), Files.size(jar) / 1e6, librariesSize / 1e6, zip.size());
    }
  }

  private static Path file(Path group, String artifact, String version, String classifier,
      String extension) {
    Path path = group.resolve(artifact).resolve(version).resolve(
        artifact + "-" + version + (classifier == null ? "" : "-" + classifier) + "." + extension);
    boolean exists = Files.isRegularFile(path);
    check(exists, "installed " + path.getFileName());
    return exists ? path : null;
  }

  private static String read(Path path) throws IOException {
    return path == null ? "" : Files.readString(path);
  }

  private static String sha256(InputStream in) throws Exception {
    MessageDigest digest = MessageDigest.getInstance("SHA-256");
    try (in) {
      byte[] buffer = new byte[1 << 16];
      for (int n = in.read(buffer); n > 0; n = in.read(buffer)) {
        digest.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(digest.digest());
  }

  private static void check(boolean ok, String what) {
    if (ok) {
      passed++;
      System.out.println("  ok " + what);
    } else {
      failures.add(what);
    }
  }
}
