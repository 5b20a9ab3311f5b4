package org.seq4j.consumer;

import java.lang.foreign.Arena;
import java.nio.file.Path;
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
 *       version, from org.bytedeco:openblas on the class path) into this process.
 * </ul>
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (java.util.List.of(args).contains("javacpp-openblas-first")) {
      // Reflection: the consumer does not compile against JavaCPP.
      Class<?> openblas = Class.forName("org.bytedeco.openblas.global.openblas");
      Class.forName("org.bytedeco.javacpp.Loader").getMethod("load", Class.class)
          .invoke(null, openblas);
      System.out.println("JavaCPP loaded its OpenBLAS first");
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
        case "javacpp-openblas-first" -> { }
        // a bytedeco version such as 0.3.31-1.5.13: OpenBLAS 0.3.31
        case "openblas-version" -> check(
            info.openblasConfig().contains("OpenBLAS " + value.split("-")[0] + " "),
            "seq4j calls OpenBLAS '" + info.openblasConfig() + "', expected " + value);
        default -> check(false, "unknown argument " + arg);
      }
    }
    System.out.println("CONSUMER OK " + String.join(" ", args));
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      System.out.println("CONSUMER FAILED: " + what);
      System.exit(1);
    }
  }
}
