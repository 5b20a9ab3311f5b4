package org.seq4j.consumer;

import java.io.InputStream;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.seq4j.RuntimeInfo;
import org.seq4j.Seq4j;
import org.seq4j.Tensor;
import org.seq4j.TensorOps;
import org.seq4j.nn.Lstm;

/**
 * What a user's application does: loads seq4j, prints runtimeInfo, runs a matrix product and an
 * LSTM forward. Arguments are expectations of the integration test; any miss exits with 1.
 *
 * <ul>
 *   <li>{@code folder-under=<path>}: the natives were loaded from a folder below this one;
 *   <li>{@code source-contains=<text>}: runtimeInfo's librarySource contains the text;
 *   <li>{@code resource=<name>}: the class path holds this resource (e.g. another bytedeco JAR);
 *   <li>{@code openblas-version=<v>}: the OpenBLAS that seq4j's calls reach is version v;
 *   <li>{@code native-access}: native access is enabled for seq4j (no warning was printed);
 *   <li>{@code module=<name>}: seq4j runs in the named module (module path), or "unnamed";
 *   <li>{@code javacpp-openblas-first}: before seq4j, JavaCPP loads its own OpenBLAS (another
 *       version, from org.bytedeco:openblas on the class path) into this process;
 *   <li>{@code system-load-first=<jar>}: before seq4j, the libraries of a bytedeco JAR (another
 *       OpenBLAS or oneDNN version, under the original sonames libopenblas.so.0, libdnnl.so.3,
 *       ...) are extracted to a temp folder and loaded with {@code System.load};
 *   <li>{@code onednn-version=<v>}: the oneDNN that seq4j's calls reach is version v;
 *   <li>{@code source-lacks=<text>}: runtimeInfo's librarySource does not contain the text;
 *   <li>{@code own-mapped=<name>}: this process maps seq4j's renamed copy of the library first
 *       named name (lib&lt;name&gt;-seq4j-&lt;hash&gt;.so.N for libname.so.N) from seq4j's folder;
 *   <li>{@code foreign-mapped=<name>}: this process maps a file of exactly that name from
 *       another folder (the other copy, loaded first).
 * </ul>
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (List.of(args).contains("javacpp-openblas-first")) {
      // Reflection: the consumer does not compile against JavaCPP.
      Class<?> openblas = Class.forName("org.bytedeco.openblas.global.openblas");
      Class.forName("org.bytedeco.javacpp.Loader").getMethod("load", Class.class)
          .invoke(null, openblas);
      System.out.println("JavaCPP loaded its OpenBLAS first");
    }
    for (String arg : args) {
      if (arg.startsWith("system-load-first=")) {
        systemLoad(Path.of(arg.substring("system-load-first=".length())));
      }
    }
    RuntimeInfo info = Seq4j.runtimeInfo();
    System.out.println(info);
    try (Arena arena = Arena.ofConfined()) {
      Tensor a = Tensor.fromArray(arena, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
      Tensor b = Tensor.fromArray(arena, new float[] {7, 8, 9, 10, 11, 12}, 3, 2);
      Tensor c = TensorOps.matmul(arena, a, b);
      check(c.get(0, 0) == 58f && c.get(1, 1) == 154f, "matmul gave " + c);
      try (Lstm lstm = Lstm.builder(8, 16).build()) {
        Tensor x = Tensor.randomNormal(arena, 3, 5, 2, 8); // (T=5, N=2, I=8)
        Lstm.Result result = lstm.forward(arena, x);
        float[] out = result.output().toArray();
        check(out.length == 5 * 2 * 16, "LSTM output of " + out.length + " values");
        for (float v : out) {
          check(Float.isFinite(v) && Math.abs(v) < 1, "LSTM output " + v);
        }
        System.out.println("matmul and LSTM forward ok: c[1][1] = " + c.get(1, 1)
            + ", h[4][1][15] = " + out[out.length - 1]);
      }
    }
    for (String arg : args) {
      int equals = arg.indexOf('=');
      String key = equals < 0 ? arg : arg.substring(0, equals);
      String value = equals < 0 ? "" : arg.substring(equals + 1);
      switch (key) {
        case "folder-under" -> check(
            info.libraryFolder().startsWith(Path.of(value).toAbsolutePath()),
            "natives loaded from " + info.libraryFolder() + ", expected below " + value);
        case "source-contains" -> check(info.librarySource().contains(value),
            "librarySource '" + info.librarySource() + "' lacks '" + value + "'");
        case "resource" -> check(ClassLoader.getSystemResource(value) != null,
            "the class path lacks " + value);
        case "native-access" -> check(Seq4j.class.getModule().isNativeAccessEnabled(),
            "native access is not enabled for " + Seq4j.class.getModule());
        case "module" -> check(value.equals(Seq4j.class.getModule().isNamed()
                ? Seq4j.class.getModule().getName() : "unnamed"),
            "seq4j runs in " + Seq4j.class.getModule() + ", expected " + value);
        case "javacpp-openblas-first", "system-load-first" -> { }
        case "onednn-version" -> check(
            info.onednnVersion().startsWith(value.split("-")[0] + "."),
            "seq4j calls oneDNN '" + info.onednnVersion() + "', expected " + value);
        case "source-lacks" -> check(!info.librarySource().contains(value),
            "librarySource '" + info.librarySource() + "' contains '" + value + "'");
        case "own-mapped" -> {
          Matcher parts = Pattern.compile("(lib[^.]+)(\\..+)").matcher(value);
          check(parts.matches(), "own-mapped=" + value + " is not lib<name>.so.<n>");
          String renamed = Pattern.quote(parts.group(1) + "-seq4j-") + "[0-9a-f]{8}"
              + Pattern.quote(parts.group(2));
          List<Path> own = mapped().stream()
              .filter(p -> p.getFileName().toString().matches(renamed)
                  && p.getParent().equals(realPath(info.libraryFolder())))
              .toList();
          check(!own.isEmpty(), "no " + renamed + " of " + info.libraryFolder() + " is mapped");
          System.out.println("mapped, seq4j's own: " + own);
        }
        case "foreign-mapped" -> {
          List<Path> foreign = mapped().stream()
              .filter(p -> p.getFileName().toString().equals(value)
                  && !p.getParent().equals(realPath(info.libraryFolder())))
              .toList();
          check(!foreign.isEmpty(), "no other " + value + " is mapped");
          System.out.println("mapped, loaded first: " + foreign);
        }
        // a bytedeco version such as 0.3.31-1.5.13: OpenBLAS 0.3.31
        case "openblas-version" -> check(
            info.openblasConfig().contains("OpenBLAS " + value.split("-")[0] + " "),
            "seq4j calls OpenBLAS '" + info.openblasConfig() + "', expected " + value);
        default -> check(false, "unknown argument " + arg);
      }
    }
    System.out.println("CONSUMER OK " + String.join(" ", args));
  }

  /**
   * Extracts the shared libraries of a bytedeco JAR (not its JNI library) into a temp folder and
   * loads them with System.load, dependencies first, as another native library would.
   */
  private static void systemLoad(Path jar) throws Exception {
    Path folder = Files.createTempDirectory("foreign-natives");
    List<String> order = List.of("libgomp", "libquadmath", "libgfortran", "libopenblas", "libdnnl");
    List<Path> files = new ArrayList<>();
    try (ZipFile zip = new ZipFile(jar.toFile())) {
      for (ZipEntry entry : zip.stream().toList()) {
        String name = entry.getName().substring(entry.getName().lastIndexOf('/') + 1);
        String stem = name.replaceFirst("\\.so.*$", "");
        if (!entry.isDirectory() && name.contains(".so") && order.contains(stem)) {
          try (InputStream in = zip.getInputStream(entry)) {
            Files.copy(in, folder.resolve(name));
          }
          files.add(folder.resolve(name));
        }
      }
    }
    files.sort(Comparator.comparingInt(
        f -> order.indexOf(f.getFileName().toString().replaceFirst("\\.so.*$", ""))));
    check(!files.isEmpty(), jar + " holds none of " + order);
    for (Path file : files) {
      System.load(file.toString());
    }
    System.out.println("System.load before seq4j: " + files);
  }

  /** The files this process maps, from /proc/self/maps. */
  private static List<Path> mapped() throws Exception {
    Set<Path> files = new LinkedHashSet<>();
    for (String line : Files.readAllLines(Path.of("/proc/self/maps"))) {
      int slash = line.indexOf('/');
      if (slash >= 0) {
        files.add(Path.of(line.substring(slash).trim()));
      }
    }
    return new ArrayList<>(files);
  }

  private static Path realPath(Path path) {
    try {
      return path.toRealPath();
    } catch (Exception e) {
      return path;
    }
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      System.out.println("CONSUMER FAILED: " + what);
      System.exit(1);
    }
  }
}
