package org.seq4j.fuzz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.constraints.LongRange;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.lifecycle.AfterContainer;
import org.seq4j.Tensor;
import org.seq4j.io.SafeTensors;

/**
 * In-process jqwik properties for the pure-Java paths (no native call, so nothing here can kill
 * the JVM): tensor factories and views against an oracle computed from the arguments, every case
 * generator of {@link FuzzCases} that stays in Java, and {@link SafeTensors} on hostile files
 * (mutated valid files and generated headers). Tries: {@code jqwik.tries.default} in
 * {@code junit-platform.properties}, raised by {@code -Pfuzz-long}.
 */
class FuzzPropertiesTest {
  private static final Path FOLDER = Path.of("target", "fuzz", "safetensors");

  @Property
  void tensorFactoriesAcceptExactlyTheValidShapes(
      @ForAll @Size(max = 4) List<@LongRange(min = -2, max = 5) Long> sizes,
      @ForAll @IntRange(min = 0, max = 3) int factory) {
    long[] dims = sizes.stream().mapToLong(Long::longValue).toArray();
    boolean valid = sizes.stream().allMatch(s -> s >= 0);
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = switch (factory) {
        case 0 -> Tensor.zeros(arena, dims);
        case 1 -> Tensor.full(arena, 2.5f, dims);
        case 2 -> Tensor.randomNormal(arena, 1, dims);
        default -> Tensor.uninitialized(arena, dims);
      };
      assertTrue(valid, "accepted " + sizes);
      assertEquals(sizes, java.util.Arrays.stream(t.shape().dims()).boxed().toList());
      if (factory == 1) {
        for (float v : t.toArray()) {
          assertEquals(2.5f, v);
        }
      }
    } catch (IllegalArgumentException e) {
      assertTrue(!valid, "rejected valid " + sizes + ": " + e.getMessage());
      assertTrue(Fuzz.namesAny(e.getMessage(), java.util.Set.of("dims", "shape")),
          e.getMessage());
    }
  }

  @Property
  void reshapeFollowsPyTorchsRule(
      @ForAll @Size(min = 1, max = 3) List<@LongRange(min = 0, max = 4) Long> sizes,
      @ForAll @Size(max = 4) List<@LongRange(min = -3, max = 8) Long> target) {
    long[] dims = sizes.stream().mapToLong(Long::longValue).toArray();
    long[] to = target.stream().mapToLong(Long::longValue).toArray();
    long size = 1;
    for (long d : dims) {
      size *= d;
    }
    // the oracle: at most one -1, no other negative; a -1 needs a known product that divides
    long inferred = target.stream().filter(s -> s == -1).count();
    boolean negative = target.stream().anyMatch(s -> s < -1);
    long known = target.stream().filter(s -> s != -1).reduce(1L, (a, b) -> a * b);
    boolean valid = !negative && inferred <= 1
        && (inferred == 0 ? known == size : known != 0 && size % known == 0);
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.randomNormal(arena, 3, dims);
      Tensor view = t.reshape(to);
      assertTrue(valid, "accepted " + target + " for " + sizes);
      assertEquals(size, view.size());
      assertTrue(java.util.Arrays.equals(t.toArray(), view.toArray()));
    } catch (IllegalArgumentException e) {
      assertTrue(!valid, "rejected valid " + target + " for " + sizes + ": " + e.getMessage());
      assertTrue(e.getMessage().startsWith("dims: "), e.getMessage());
    }
  }

  /** The generators of FuzzCases that make no native call, judged as in the forked JVMs. */
  @Property
  void pureJavaCasesPassTheJudge(@ForAll long seed, @ForAll @IntRange(min = 0, max = 2) int which) {
    String kind = List.of("Tensor.create", "Tensor.view", "Tensor.copy").get(which);
    FuzzCases.Generator g = FuzzCases.ALL.stream().filter(x -> x.kind().equals(kind)).findFirst()
        .orElseThrow();
    Fuzz f = new Fuzz(kind, seed);
    Throwable thrown = null;
    try {
      g.body().accept(f);
    } catch (Throwable t) {
      thrown = t;
    } finally {
      f.close();
    }
    Fuzz.Outcome outcome = f.judge(thrown);
    assertTrue(outcome.passed(), outcome.toString());
  }

  // ------------------------------------------------------------------ safetensors

  private static final Map<String, byte[]> VALID = new java.util.concurrent.ConcurrentHashMap<>();

  /** A valid file of a few small tensors and metadata (written once per arguments). */
  private static byte[] validFile(int tensors, long seed) throws IOException {
    String key = tensors + "-" + seed;
    byte[] cached = VALID.get(key);
    if (cached == null) {
      cached = writeValidFile(tensors, seed);
      VALID.put(key, cached);
    }
    return cached.clone();
  }

  private static byte[] writeValidFile(int tensors, long seed) throws IOException {
    Files.createDirectories(FOLDER);
    Path path = FOLDER.resolve("valid-" + tensors + "-" + seed + ".safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Map<String, Tensor> map = new LinkedHashMap<>();
      for (int i = 0; i < tensors; i++) {
        map.put("t" + i, Tensor.randomNormal(arena, seed + i, 1 + i % 3, 2));
      }
      SafeTensors.write(path, map, Map.of("step", String.valueOf(seed)));
    }
    byte[] bytes = Files.readAllBytes(path);
    Files.delete(path);
    return bytes;
  }

  @Provide
  Arbitrary<byte[]> mutatedFiles() {
    Arbitrary<Integer> tensors = Arbitraries.integers().between(0, 4);
    Arbitrary<Long> seeds = Arbitraries.longs().between(0, 9);
    Arbitrary<Integer> kinds = Arbitraries.integers().between(0, 5);
    Arbitrary<Integer> positions = Arbitraries.integers().between(0, 10_000);
    Arbitrary<Byte> values = Arbitraries.bytes();
    Arbitrary<String> fragments = Arbitraries.of("{", "}", "[", "]", ",", ":", "\"", "\\",
        "\"dtype\"", "\"F32\"", "\"F16\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"",
        "-1", "0", "18446744073709551615", "9223372036854775807", "1e3", "01", "null", "true",
        "\"t0\"", "\u0000", "\uD800", " ", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    Arbitrary<String> headers = fragments.list().ofMaxSize(40).map(l -> String.join("", l));
    return Combinators.combine(tensors, seeds, kinds, positions, values, headers)
        .as((n, seed, kind, position, value, header) -> {
          byte[] file;
          try {
            file = validFile(n, seed);
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
          long headerLength = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN)
              .getLong();
          switch (kind) {
            case 0 -> file[position % file.length] = value; // one byte anywhere
            case 1 -> file[8 + position % (int) headerLength] = value; // one byte of the header
            case 2 -> file = java.util.Arrays.copyOf(file, position % file.length); // truncated
            case 3 -> ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(0, headerLength + value); // a wrong header length
            case 4 -> { // a header of generated JSON fragments, the data kept
              byte[] json = header.getBytes(StandardCharsets.UTF_8);
              byte[] data = java.util.Arrays.copyOfRange(file, 8 + (int) headerLength,
                  file.length);
              ByteBuffer b = ByteBuffer.allocate(8 + json.length + data.length)
                  .order(ByteOrder.LITTLE_ENDIAN);
              b.putLong(json.length).put(json).put(data);
              file = b.array();
            }
            default -> { // a valid header with one offset or shape replaced by a fragment
              String text = new String(file, 8, (int) headerLength, StandardCharsets.UTF_8);
              String replaced = text.replaceFirst(position % 2 == 0 ? "\\[[0-9]+,[0-9]+\\]"
                  : "\"shape\":\\[[0-9,]*\\]", position % 2 == 0 ? "[" + header + "]"
                  : "\"shape\":[" + header + "]");
              byte[] json = replaced.getBytes(StandardCharsets.UTF_8);
              byte[] data = java.util.Arrays.copyOfRange(file, 8 + (int) headerLength,
                  file.length);
              ByteBuffer b = ByteBuffer.allocate(8 + json.length + data.length)
                  .order(ByteOrder.LITTLE_ENDIAN);
              b.putLong(json.length).put(json).put(data);
              file = b.array();
            }
          }
          return file;
        });
  }

  @Property
  void aHostileFileLoadsConsistentlyOrIsAnIOExceptionNamingTheFile(
      @ForAll("mutatedFiles") byte[] bytes) throws IOException {
    Files.createDirectories(FOLDER);
    Path path = Files.createTempFile(FOLDER, "hostile", ".safetensors");
    try {
      Files.write(path, bytes);
      try (Arena arena = Arena.ofConfined()) {
        SafeTensors.File file = SafeTensors.read(path, arena);
        // loaded: every tensor holds exactly what its entry declares, within the file
        long total = 0;
        for (Tensor t : file.tensors().values()) {
          total += t.size() * 4;
        }
        long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN)
            .getLong();
        assertEquals(bytes.length - 8 - headerLength, total, "data bytes of the tensors");
        try (SafeTensors.Reader reader = SafeTensors.open(path)) {
          assertEquals(file.tensors().keySet(), reader.entries().keySet());
          for (var e : reader.entries().entrySet()) {
            assertEquals(e.getValue().shape(), file.tensors().get(e.getKey()).shape());
          }
        }
      } catch (IOException e) {
        String message = String.valueOf(e.getMessage());
        assertTrue(message.contains(path.getFileName().toString()),
            "the message does not name the file: " + message);
      } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
        throw new AssertionError("not an IOException: " + e, e);
      }
    } finally {
      Files.deleteIfExists(path);
    }
  }

  @AfterContainer
  static void cleanUp() throws IOException {
    if (Files.isDirectory(FOLDER)) {
      try (var files = Files.list(FOLDER)) {
        for (Path p : files.toList()) {
          Files.deleteIfExists(p);
        }
      }
    }
  }
}
