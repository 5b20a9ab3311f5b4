package org.seq4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.seq4j.Shape;
import org.seq4j.Tensor;

/**
 * The safetensors reader against hostile files: every malformed file is an {@link IOException}
 * naming the file and, where the fault is in one entry, the tensor; nothing is allocated for a file
 * whose header is invalid.
 *
 * <p>Checked by hand against the Rust reference reader (the Python package {@code safetensors}
 * 0.8.0, {@code safetensors.deserialize}): it rejects every file of the table too, except the
 * duplicate keys (its map keeps the last; the format's README disallows them) and the valid I32
 * file (seq4j converts the floating-point dtypes only). It accepts the edge cases of {@link
 * #validEdgeCasesLoad}, and also an empty shape with a dimension above {@code Long.MAX_VALUE}
 * ({@code [0, 2^64 - 1]}), which seq4j refuses (its shapes are longs). It loads the files seq4j
 * writes.
 */
class SafeTensorsTest {
  @TempDir Path folder;

  /** A file: 8-byte little-endian length, the header's bytes, then {@code data} bytes of data. */
  static byte[] file(byte[] header, int data) {
    ByteBuffer out = ByteBuffer.allocate(8 + header.length + data).order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(header.length).put(header);
    for (int i = 0; i < data; i++) {
      out.put((byte) i);
    }
    return out.array();
  }

  static byte[] file(String header, int data) {
    return file(header.getBytes(StandardCharsets.UTF_8), data);
  }

  static byte[] withLength(long length, byte[] rest) {
    return ByteBuffer.allocate(8 + rest.length).order(ByteOrder.LITTLE_ENDIAN).putLong(length)
        .put(rest).array();
  }

  static String entry(String name, String dtype, String shape, long begin, long end) {
    return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape
        + ",\"data_offsets\":[" + begin + "," + end + "]}";
  }

  static Arguments hostile(String label, byte[] bytes, String tensor, String reason) {
    return Arguments.of(label, bytes, tensor, reason);
  }

  /**
   * The table: label, file bytes, the tensor key the message must name (null where the fault is
   * not in one entry), and a fragment of the reason.
   */
  static Stream<Arguments> hostileFiles() {
    String w4 = entry("w", "F32", "[1]", 0, 4);
    String nested = "[".repeat(100_000) + "]".repeat(100_000);
    return Stream.of(
        hostile("empty file", new byte[0], null, "fewer than the 8"),
        hostile("truncated length", new byte[] {4, 0, 0}, null, "fewer than the 8"),
        hostile("truncated header", withLength(40, "{\"w\":{".getBytes()), null,
            "runs past the end of the file"),
        hostile("header length > file", withLength(1000, new byte[20]), null,
            "runs past the end of the file"),
        hostile("huge header length (u64 max)", withLength(-1, new byte[20]), null,
            "18446744073709551615 is above the limit"),
        hostile("header length above 100 MB", withLength(200_000_000, new byte[20]), null,
            "above the limit of 100000000"),
        hostile("empty header", file("", 0), null, "empty or blank"),
        hostile("blank header", file("        ", 0), null, "empty or blank"),
        hostile("header is an array", file("[]", 0), null, "must be a JSON object"),
        hostile("byte-order mark", file("\uFEFF{}", 0), null, "must be a JSON object"),
        hostile("non-UTF-8 header", file(concat("{\"w".getBytes(), new byte[] {(byte) 0xff},
            "\":{}}".getBytes()), 0), null, "not valid UTF-8 at byte 11"),
        hostile("truncated JSON", file("{\"w\"", 0), "w", "expected ':'"),
        hostile("unterminated string", file("{\"w", 0), null, "unterminated string"),
        hostile("short \\u escape at the end", file("{\"w\\u12", 0), null, "4 hex digits"),
        hostile("bad escape", file("{\"w\\x\":1}", 0), null, "invalid escape"),
        hostile("lone surrogate escape", file("{\"\\ud800\":1}", 0), null, "unpaired surrogate"),
        hostile("control character in a name", file("{\"w\u0001\":1}", 0), null,
            "unescaped control character"),
        hostile("trailing comma", file("{" + w4 + ",}", 4), null, "expected a key string"),
        hostile("trailing characters", file("{" + w4 + "} x", 4), null, "trailing characters"),
        hostile("two objects", file("{}{}", 0), null, "trailing characters"),
        hostile("deep nesting in an entry", file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
            + "\"data_offsets\":[0,4],\"x\":" + nested + "}}", 4), "w", "nesting deeper than 128"),
        hostile("deep nesting of objects", file("{\"w\":" + "{\"a\":".repeat(50_000) + "1"
            + "}".repeat(50_000) + "}", 0), "w", "nesting deeper than 128"),
        hostile("duplicate tensor", file("{" + w4 + "," + w4 + "}", 4), "w", "duplicate tensor"),
        hostile("duplicate tensor, escaped differently", file("{" + w4 + ","
            + entry("\\u0077", "F32", "[1]", 0, 4) + "}", 4), "w", "duplicate tensor"),
        hostile("duplicate field", file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[1],"
            + "\"data_offsets\":[0,4]}}", 4), "w", "duplicate key \"dtype\""),
        hostile("duplicate metadata key", file("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", 0),
            null, "duplicate key \"a\""),
        hostile("overlapping offsets", file("{" + entry("a", "F32", "[2]", 0, 8) + ","
            + entry("b", "F32", "[2]", 4, 12) + "}", 12), "b", "overlap those of tensor \"a\""),
        hostile("aliased offsets", file("{" + entry("a", "F32", "[2]", 0, 8) + ","
            + entry("b", "F32", "[2]", 0, 8) + "}", 8), "b", "overlap"),
        hostile("hole between tensors", file("{" + entry("a", "F32", "[1]", 0, 4) + ","
            + entry("b", "F32", "[1]", 8, 12) + "}", 12), "b", "leave a hole: bytes [4, 8)"),
        hostile("hole at the start", file("{" + entry("a", "F32", "[1]", 4, 8) + "}", 8), "a",
            "leave a hole: bytes [0, 4)"),
        hostile("offsets past the end", file("{" + entry("a", "F32", "[2]", 0, 8) + "}", 4), "a",
            "run past the end of the data section, which holds 4 bytes"),
        hostile("4 GiB declared in a tiny file", file("{" + entry("big", "F32", "[1073741824]", 0,
            4L << 30) + "}", 4), "big", "run past the end"),
        hostile("begin after end", file("{" + entry("a", "F32", "[0]", 8, 4) + "}", 0), "a",
            "end before they begin"),
        hostile("negative shape", file("{" + entry("a", "F32", "[-1]", 0, 4) + "}", 4), "a",
            "shape[0] is \"-1\", not an integer"),
        hostile("negative offset", file("{" + entry("a", "F32", "[1]", -4, 0) + "}", 4), "a",
            "data_offsets[0] is \"-4\""),
        hostile("shape beyond a long", file("{" + entry("a", "F32", "[99999999999999999999]", 0, 4)
            + "}", 4), "a", "shape[0] is \"99999999999999999999\""),
        hostile("overflowing element count", file("{" + entry("a", "F32",
            "[4294967296,4294967296]", 0, 4) + "}", 4), "a", "has more than"),
        hostile("overflowing byte count", file("{" + entry("a", "F32", "[4611686018427387904]", 0,
            4) + "}", 4), "a", "has more than"),
        hostile("zero dimension hides an overflow", file("{" + entry("a", "F32",
            "[0,99999999999999999999]", 0, 0) + "}", 0), "a", "not an integer in"),
        hostile("fractional shape", file("{" + entry("a", "F32", "[1.0]", 0, 4) + "}", 4), "a",
            "shape[0] is \"1.0\""),
        hostile("exponent offset", file("{" + entry("a", "F32", "[1]", 0, 0) .replace("[0,0]",
            "[0,4e0]") + "}", 4), "a", "data_offsets[1] is \"4e0\""),
        hostile("leading zero", file("{" + entry("a", "F32", "[01]", 0, 4) + "}", 4), "a",
            "expected ',' or ']'"),
        hostile("NaN in a shape", file("{" + entry("a", "F32", "[NaN]", 0, 4) + "}", 4), "a",
            "unexpected character 'N'"),
        hostile("string in a shape", file("{" + entry("a", "F32", "[\"1\"]", 0, 4) + "}", 4), "a",
            "shape[0] is a string"),
        hostile("shape not an array", file("{" + entry("a", "F32", "4", 0, 4) + "}", 4), "a",
            "shape is the number"),
        hostile("shape/offset mismatch", file("{" + entry("a", "F32", "[2,3]", 0, 20) + "}", 20),
            "a", "needs 24 bytes, but data_offsets [0, 20] span 20"),
        hostile("three offsets", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
            + "\"data_offsets\":[0,4,8]}}", 4), "a", "data_offsets has 3 entries, not 2"),
        hostile("unknown dtype", file("{" + entry("a", "F33", "[1]", 0, 4) + "}", 4), "a",
            "unknown dtype \"F33\""),
        hostile("dtype not a string", file("{\"a\":{\"dtype\":32,\"shape\":[1],"
            + "\"data_offsets\":[0,4]}}", 4), "a", "dtype is the number"),
        hostile("missing dtype", file("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4), "a",
            "dtype is missing"),
        hostile("missing shape", file("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4),
            "a", "shape is missing"),
        hostile("missing offsets", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4), "a",
            "data_offsets is missing"),
        hostile("entry not an object", file("{\"a\":5}", 0), "a", "not an object"),
        hostile("entry null", file("{\"a\":null}", 0), "a", "not an object"),
        hostile("metadata not an object", file("{\"__metadata__\":[\"a\"]}", 0), null,
            "__metadata__ is an array"),
        hostile("metadata value not a string", file("{\"__metadata__\":{\"epoch\":3}}", 0), null,
            "the value of \"epoch\" is the number"),
        hostile("valid dtype seq4j cannot read", file("{" + entry("h", "I32", "[1]", 0, 4) + "}",
            4), "h", "dtype is I32, which seq4j does not convert to F32"),
        hostile("trailing garbage", file("{" + entry("a", "F32", "[1]", 0, 4) + "}", 9), null,
            "5 trailing bytes: bytes [4, 9)"),
        hostile("data without tensors", file("{}", 3), null, "3 trailing bytes"));
  }

  static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] part : parts) {
      out.writeBytes(part);
    }
    return out.toByteArray();
  }

  /** An arena that fails the test if anything is allocated in it. */
  static final class UntouchableArena implements Arena {
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
      throw new AssertionError("allocated " + byteSize + " bytes for an invalid file");
    }

    @Override
    public MemorySegment.Scope scope() {
      throw new AssertionError("used the arena for an invalid file");
    }

    @Override
    public void close() {}
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileFiles")
  void aHostileFileIsAnIOExceptionNamingTheFileAndTensor(String label, byte[] bytes,
      String tensor, String reason) throws IOException {
    Path path = folder.resolve("hostile.safetensors");
    Files.write(path, bytes);
    IOException e = assertThrows(IOException.class,
        () -> SafeTensors.read(path, new UntouchableArena()), label);
    String message = e.getMessage();
    assertTrue(message.contains(path.toString()), message);
    if (tensor != null) {
      assertTrue(message.contains("tensor \"" + tensor + "\""), message);
    }
    assertTrue(message.contains(reason), message);
  }

  @Test
  void validEdgeCasesLoad() throws IOException {
    Path path = folder.resolve("edge.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      // header order differs from offset order; an empty tensor; a scalar; unknown fields are
      // ignored; escapes; padding; null metadata
      String header = "{\"__metadata__\":null," + entry("b", "F32", "[1]", 4, 8) + ","
          + entry("e\\u0301\\ud83d\\ude00", "F32", "[0,5]", 4, 4) + ","
          + "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":[{\"y\":null},"
          + "true,false,-1.5e-3]}}     ";
      byte[] bytes = file(header, 8);
      ByteBuffer.wrap(bytes, bytes.length - 8, 8).order(ByteOrder.LITTLE_ENDIAN)
          .putFloat(7f).putFloat(-2f);
      Files.write(path, bytes);
      SafeTensors.File read = SafeTensors.read(path, arena);
      assertEquals(List.of("b", "e\u0301\uD83D\uDE00", "s"),
          new ArrayList<>(read.tensors().keySet()));
      assertEquals(7f, read.tensors().get("s").get());
      assertEquals(Shape.of(), read.tensors().get("s").shape());
      assertEquals(Shape.of(0, 5), read.tensors().get("e\u0301\uD83D\uDE00").shape());
      assertArrayEquals(new float[] {-2f}, read.tensors().get("b").toArray());
      assertTrue(read.metadata().isEmpty());

      Files.write(path, file("{}", 0));
      assertTrue(SafeTensors.read(path, arena).tensors().isEmpty());
      // whitespace around the object, and two empty tensors at one offset, as the reference allows
      Files.write(path, file(" \n{" + entry("a", "F32", "[0]", 0, 0) + ","
          + entry("b", "F32", "[2,0]", 0, 0) + "}\t\r\n ", 0));
      assertEquals(List.of("a", "b"),
          new ArrayList<>(SafeTensors.read(path, arena).tensors().keySet()));
    }
  }

  @Test
  void roundTripKeepsNamesValuesAndMetadataAcrossChunks() throws IOException {
    Path path = folder.resolve("round.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      tensors.put("big", Tensor.randomNormal(arena, 1, 700, 1000)); // 2.8 MB: several chunks
      tensors.put("empty", Tensor.zeros(arena, 3, 0));
      tensors.put("scalar", Tensor.full(arena, -0f));
      tensors.put("naïve \"name\"\n\uD83D\uDE00", Tensor.fromArray(arena,
          new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.MIN_VALUE}, 3));
      Map<String, String> metadata = Map.of("note", "quote \" and \\ backslash \u0000 \u00e9");
      SafeTensors.write(path, tensors, metadata);
      SafeTensors.File read = SafeTensors.read(path, arena);
      assertEquals(new ArrayList<>(tensors.keySet()), new ArrayList<>(read.tensors().keySet()));
      for (String name : tensors.keySet()) {
        MemorySegment expected = tensors.get(name).segment();
        MemorySegment actual = read.tensors().get(name).segment();
        assertEquals(tensors.get(name).shape(), read.tensors().get(name).shape(), name);
        assertEquals(-1, expected.mismatch(actual), name + " is bit-identical");
      }
      assertEquals(metadata, read.metadata());
      try (SafeTensors.Reader reader = SafeTensors.open(path)) {
        assertEquals(Shape.of(700, 1000), reader.entries().get("big").shape());
        Map<String, Tensor> some = reader.read(arena, List.of("scalar"));
        assertEquals(List.of("scalar"), new ArrayList<>(some.keySet()));
        var e = assertThrows(IOException.class, () -> reader.read(arena, List.of("nope")));
        assertTrue(e.getMessage().contains("has no tensor \"nope\""), e.getMessage());
      }
      assertEquals(List.of(path.getFileName()), list(folder), "no temporary file is left");
    }
  }

  @Test
  void writingRefusesWhatWouldMakeAnInvalidFileAndKeepsThePreviousFile() throws IOException {
    Path path = folder.resolve("keep.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.ones(arena, 2);
      SafeTensors.write(path, Map.of("t", t), Map.of());
      byte[] before = Files.readAllBytes(path);
      Map<String, Tensor> nullValue = new LinkedHashMap<>();
      nullValue.put("n", null);
      Map<String, String> nullMeta = new LinkedHashMap<>();
      nullMeta.put("k", null);
      Tensor closed;
      try (Arena other = Arena.ofConfined()) {
        closed = Tensor.ones(other, 1);
      }
      Map<String, Runnable> attempts = new LinkedHashMap<>();
      attempts.put("__metadata__", () -> write(path, Map.of("__metadata__", t), Map.of()));
      attempts.put("unpaired surrogate U+D800", () -> write(path, Map.of("a\uD800", t), Map.of()));
      attempts.put("unpaired surrogate U+DC00",
          () -> write(path, Map.of("t", t), Map.of("k", "\uDC00")));
      attempts.put("is null", () -> write(path, nullValue, Map.of()));
      attempts.put("the value is null", () -> write(path, Map.of("t", t), nullMeta));
      for (Map.Entry<String, Runnable> attempt : attempts.entrySet()) {
        var e = assertThrows(IllegalArgumentException.class, attempt.getValue()::run);
        assertTrue(e.getMessage().contains(attempt.getKey()), e.getMessage());
      }
      assertThrows(IllegalStateException.class, () -> write(path, Map.of("c", closed), Map.of()));
      assertArrayEquals(before, Files.readAllBytes(path), "the previous file is intact");
      assertEquals(List.of(path.getFileName()), list(folder), "no temporary file is left");
    }
  }

  private static void write(Path path, Map<String, Tensor> tensors, Map<String, String> meta) {
    try {
      SafeTensors.write(path, tensors, meta);
    } catch (IOException e) {
      fail(e);
    }
  }

  private static List<Path> list(Path folder) throws IOException {
    try (Stream<Path> files = Files.list(folder)) {
      return files.map(Path::getFileName).toList();
    }
  }

  /** Outcomes of the fuzz: a valid read, an IOException, or anything else (a bug). */
  record FuzzCounts(int cases, int valid, int ioExceptions, List<String> others) {}

  /**
   * Runs {@code cases} seeded mutations of valid files (byte flips, truncations, insertions,
   * JSON-alphabet noise in the header) through {@link SafeTensors#read}.
   */
  static FuzzCounts fuzz(Path folder, long seed, int cases) throws IOException {
    SplittableRandom random = new SplittableRandom(seed);
    List<byte[]> seeds = new ArrayList<>();
    try (Arena arena = Arena.ofConfined()) {
      for (int i = 0; i < 8; i++) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        int count = random.nextInt(4);
        for (int k = 0; k < count; k++) {
          long[] dims = new long[random.nextInt(3)];
          for (int d = 0; d < dims.length; d++) {
            dims[d] = random.nextInt(4);
          }
          tensors.put("layer." + k + (k % 2 == 0 ? ".weight" : ".bias"),
              Tensor.randomNormal(arena, random.nextLong(), dims));
        }
        Path path = folder.resolve("seed.safetensors");
        SafeTensors.write(path, tensors, i % 2 == 0 ? Map.of() : Map.of("epoch", "3"));
        seeds.add(Files.readAllBytes(path));
      }
    }
    String alphabet = "{}[]\",:0123456789-+.eE \\u/nulltruefalse";
    Path path = folder.resolve("fuzz.safetensors");
    int valid = 0;
    int io = 0;
    List<String> others = new ArrayList<>();
    for (int c = 0; c < cases; c++) {
      byte[] bytes = seeds.get(random.nextInt(seeds.size())).clone();
      int mutations = 1 + random.nextInt(4);
      for (int m = 0; m < mutations && bytes.length > 0; m++) {
        int kind = random.nextInt(8);
        int at = random.nextInt(bytes.length);
        switch (kind) {
          case 0 -> bytes[at] ^= (byte) (1 << random.nextInt(8));
          case 1 -> bytes[at] = (byte) random.nextInt(256);
          case 2 -> bytes = Arrays.copyOf(bytes, at);
          case 3 -> {
            byte[] grown = new byte[bytes.length + 1];
            System.arraycopy(bytes, 0, grown, 0, at);
            grown[at] = (byte) alphabet.charAt(random.nextInt(alphabet.length()));
            System.arraycopy(bytes, at, grown, at + 1, bytes.length - at);
            bytes = grown;
          }
          case 4 -> { // noise inside the header, where the parser lives
            long declared = bytes.length < 8 ? 0
                : ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            int headerEnd = (int) Math.min(bytes.length,
                8 + Math.min(Math.max(declared, 0), 1 << 16));
            if (headerEnd > 8) {
              bytes[8 + random.nextInt(headerEnd - 8)] =
                  (byte) alphabet.charAt(random.nextInt(alphabet.length()));
            }
          }
          case 5 -> { // a shorter header length: the JSON ends inside a token
            if (bytes.length >= 8) {
              long declared = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
              if (declared > 0 && declared <= bytes.length) {
                ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
                    .putLong(0, random.nextLong(declared));
              }
            }
          }
          case 6 -> { // a run of brackets, for the nesting limit
            byte[] run = (random.nextBoolean() ? "[" : "{\"k\":")
                .repeat(1 + random.nextInt(5000)).getBytes(StandardCharsets.US_ASCII);
            if (bytes.length >= 8) {
              int where = Math.max(8, at);
              byte[] grown = new byte[bytes.length + run.length];
              System.arraycopy(bytes, 0, grown, 0, where);
              System.arraycopy(run, 0, grown, where, run.length);
              System.arraycopy(bytes, where, grown, where + run.length, bytes.length - where);
              ByteBuffer b = ByteBuffer.wrap(grown).order(ByteOrder.LITTLE_ENDIAN);
              b.putLong(0, b.getLong(0) + run.length); // the header still covers the insertion
              bytes = grown;
            }
          }
          default -> bytes[Math.min(at, 7)] = (byte) random.nextInt(256); // the length itself
        }
      }
      Files.write(path, bytes);
      try (Arena arena = Arena.ofConfined()) {
        SafeTensors.File read = SafeTensors.read(path, arena);
        for (Tensor t : read.tensors().values()) {
          if (t.segment().byteSize() != t.size() * 4) {
            others.add("case " + c + ": a tensor of the wrong size");
          }
        }
        valid++;
      } catch (IOException e) {
        io++;
      } catch (Throwable t) {
        others.add("case " + c + ": " + t);
      }
    }
    return new FuzzCounts(cases, valid, io, others);
  }

  @Test
  void randomMutationsOfValidFilesGiveIOExceptionOrAValidRead() throws IOException {
    FuzzCounts counts = fuzz(folder, 12, 3000);
    System.out.println("safetensors fuzz: " + counts.cases() + " cases, " + counts.valid()
        + " valid, " + counts.ioExceptions() + " IOException, " + counts.others().size()
        + " other");
    assertTrue(counts.others().isEmpty(), counts.others().toString());
    assertTrue(counts.ioExceptions() > counts.cases() / 2, "the mutations reach the checks");
    assertFalse(counts.valid() == 0, "some mutations (in tensor data) stay valid");
  }
}
