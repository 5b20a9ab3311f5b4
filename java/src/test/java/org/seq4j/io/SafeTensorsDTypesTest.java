package org.seq4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
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
import org.junit.jupiter.params.provider.ValueSource;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.nn.Parameter;
import org.seq4j.train.Checkpoints;

/**
 * safetensors beyond F32: F16, BF16 and F64 read as F32, BF16 written, other dtypes refused by
 * name, and reading on demand (the header alone, or some tensors).
 *
 * <p>Every expected value comes from a reference conversion written here from the IEEE 754
 * definitions (sign, biased exponent, significand; round to nearest, ties to even, done with
 * {@link Math#rint} on an exactly scaled double), never from the code under test.
 */
class SafeTensorsDTypesTest {
  @TempDir Path folder;

  // ---- references, from the definitions

  /** binary16: 1 sign bit, 5 exponent bits (bias 15), 10 significand bits. */
  static float referenceF16(int bits) {
    int sign = (bits >> 15) & 1;
    int exponent = (bits >> 10) & 0x1f;
    int significand = bits & 0x3ff;
    double magnitude;
    if (exponent == 0x1f) {
      magnitude = significand == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
    } else if (exponent == 0) {
      magnitude = Math.scalb((double) significand, -24); // 2^-14 * significand / 2^10
    } else {
      magnitude = Math.scalb((double) (1024 + significand), exponent - 15 - 10);
    }
    return (float) (sign == 1 ? -magnitude : magnitude); // exact: every binary16 is a float
  }

  /** bfloat16: 1 sign bit, 8 exponent bits (bias 127), 7 significand bits. */
  static float referenceBf16(int bits) {
    int sign = (bits >> 15) & 1;
    int exponent = (bits >> 7) & 0xff;
    int significand = bits & 0x7f;
    double magnitude;
    if (exponent == 0xff) {
      magnitude = significand == 0 ? Double.POSITIVE_INFINITY : Double.NaN;
    } else if (exponent == 0) {
      magnitude = Math.scalb((double) significand, -133); // 2^-126 * significand / 2^7
    } else {
      magnitude = Math.scalb((double) (128 + significand), exponent - 127 - 7);
    }
    return (float) (sign == 1 ? -magnitude : magnitude);
  }

  /**
   * Rounds a finite or infinite double to a binary format with {@code precision} significand bits,
   * smallest normal exponent {@code minExponent} and overflow threshold 2^128, ties to even: the
   * quantum is 2^(e - precision + 1), at least that of the subnormals; |x| / quantum is exact, so
   * {@link Math#rint} rounds it exactly.
   */
  static double roundBinary(double x, int precision, int minExponent) {
    if (Double.isNaN(x) || Double.isInfinite(x) || x == 0) {
      return x;
    }
    int exponent = Math.max(Math.getExponent(x), minExponent);
    double quantum = Math.scalb(1.0, exponent - precision + 1);
    double rounded = Math.rint(Math.abs(x) / quantum) * quantum;
    if (rounded >= Math.scalb(1.0, 128)) {
      rounded = Double.POSITIVE_INFINITY;
    }
    return Math.copySign(rounded, x);
  }

  /** double to float, round to nearest even (24 significand bits, normals from 2^-126). */
  static float referenceF64ToF32(double x) {
    return Double.isNaN(x) ? Float.NaN : (float) roundBinary(x, 24, -126); // cast exact
  }

  /** float to bfloat16 bits, round to nearest even (8 significand bits); NaN is 0x7FC0. */
  static int referenceBf16Bits(float x) {
    if (Float.isNaN(x)) {
      return 0x7FC0;
    }
    float rounded = (float) roundBinary(x, 8, -126); // exact: a bfloat16 value is a float
    int bits = Float.floatToRawIntBits(rounded);
    assertEquals(0, bits & 0xffff, "the reference rounded to a bfloat16");
    return bits >>> 16;
  }

  @Test
  void theReferencesAgreeWithKnownValues() {
    assertEquals(65504f, referenceF16(0x7BFF));
    assertEquals(0x1p-24f, referenceF16(0x0001));
    assertEquals(0x1p-14f, referenceF16(0x0400));
    assertEquals(0.33333334f, referenceF64ToF32(1.0 / 3));
    assertEquals(0x3F80, referenceBf16Bits(1f));
    assertEquals(0x3F80, referenceBf16Bits(1f + 0x1p-8f)); // tie, to even
    assertEquals(0x3F82, referenceBf16Bits(1f + 0x3p-8f)); // tie, to even (up)
    assertEquals(0x7F80, referenceBf16Bits(Float.MAX_VALUE)); // overflows
    assertEquals(Float.MIN_VALUE, referenceBf16(0x0001) * 0x1p-16f);
  }

  // ---- building files

  /** One tensor of a hand-built file: its dtype, shape and raw little-endian bytes. */
  record Raw(String dtype, long[] shape, byte[] data) {}

  /** A file of {@code tensors} in map order, with the header padded to 8 bytes. */
  static byte[] file(Map<String, Raw> tensors, String metadataJson) {
    StringBuilder header = new StringBuilder("{");
    if (metadataJson != null) {
      header.append("\"__metadata__\":").append(metadataJson);
    }
    long offset = 0;
    for (Map.Entry<String, Raw> e : tensors.entrySet()) {
      Raw raw = e.getValue();
      header.append(header.length() > 1 ? "," : "").append('"').append(e.getKey())
          .append("\":{\"dtype\":\"").append(raw.dtype()).append("\",\"shape\":[");
      for (int i = 0; i < raw.shape().length; i++) {
        header.append(i == 0 ? "" : ",").append(raw.shape()[i]);
      }
      header.append("],\"data_offsets\":[").append(offset).append(',')
          .append(offset + raw.data().length).append("]}");
      offset += raw.data().length;
    }
    header.append('}');
    while (header.length() % 8 != 0) {
      header.append(' ');
    }
    byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
    ByteBuffer out = ByteBuffer.allocate((int) (8 + json.length + offset))
        .order(ByteOrder.LITTLE_ENDIAN);
    out.putLong(json.length).put(json);
    tensors.values().forEach(raw -> out.put(raw.data()));
    return out.array();
  }

  static byte[] shorts(int... values) {
    ByteBuffer out = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      out.putShort((short) v);
    }
    return out.array();
  }

  static byte[] doubles(double... values) {
    ByteBuffer out = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (double v : values) {
      out.putDouble(v);
    }
    return out.array();
  }

  static byte[] floats(float... values) {
    ByteBuffer out = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
    for (float v : values) {
      out.putFloat(v);
    }
    return out.array();
  }

  /** Every 16-bit pattern, 0 to 65535. */
  static int[] allSixteenBitPatterns() {
    int[] all = new int[1 << 16];
    for (int i = 0; i < all.length; i++) {
      all[i] = i;
    }
    return all;
  }

  /** Asserts bit equality, NaN matching any NaN. */
  static void assertSameFloat(float expected, float actual, String what) {
    if (Float.isNaN(expected)) {
      assertTrue(Float.isNaN(actual), what + ": expected NaN, got " + actual);
    } else {
      assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
          what + ": expected " + expected + " (" + Float.toHexString(expected) + "), got "
              + actual + " (" + Float.toHexString(actual) + ")");
    }
  }

  Path write(String name, byte[] bytes) throws IOException {
    Path path = folder.resolve(name);
    Files.write(path, bytes);
    return path;
  }

  // ---- reading F16, BF16, F64

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"F16", "BF16"})
  void everySixteenBitPatternReadsAsTheExactFloat(String dtype) throws IOException {
    int[] patterns = allSixteenBitPatterns();
    Map<String, Raw> tensors = new LinkedHashMap<>();
    tensors.put("all", new Raw(dtype, new long[] {256, 256}, shorts(patterns)));
    Path path = write(dtype + ".safetensors", file(tensors, null));
    try (Arena arena = Arena.ofConfined()) {
      Tensor all = SafeTensors.read(path, arena).tensors().get("all");
      assertEquals(Shape.of(256, 256), all.shape());
      float[] values = all.toArray();
      for (int bits : patterns) {
        float expected = dtype.equals("F16") ? referenceF16(bits) : referenceBf16(bits);
        assertSameFloat(expected, values[bits], dtype + " 0x" + Integer.toHexString(bits));
      }
      // the named edge cases, spelled out
      if (dtype.equals("F16")) {
        assertEquals(0x1p-24f, values[0x0001], "smallest subnormal");
        assertEquals(0x3FFp-24f, values[0x03FF], "largest subnormal");
        assertEquals(0x1p-14f, values[0x0400], "smallest normal");
        assertEquals(65504f, values[0x7BFF], "largest normal");
        assertEquals(-65504f, values[0xFBFF]);
        assertEquals(Float.POSITIVE_INFINITY, values[0x7C00]);
        assertEquals(Float.NEGATIVE_INFINITY, values[0xFC00]);
        assertTrue(Float.isNaN(values[0x7E00]) && Float.isNaN(values[0x7C01]));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(values[0x8000]));
      } else {
        assertEquals(0x1p-133f, values[0x0001], "smallest subnormal");
        assertEquals(0x1p-126f, values[0x0080], "smallest normal");
        assertEquals(Float.intBitsToFloat(0x7F7F0000), values[0x7F7F], "largest normal");
        assertEquals(Float.POSITIVE_INFINITY, values[0x7F80]);
        assertEquals(Float.NEGATIVE_INFINITY, values[0xFF80]);
        assertTrue(Float.isNaN(values[0x7FC0]) && Float.isNaN(values[0xFF81]));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(values[0x8000]));
      }
    }
  }

  /** Doubles whose rounding to float is decided at an edge, with what it must give. */
  static double[] f64Edges() {
    double halfUlpAtMax = 0x1p103; // Float.MAX_VALUE's ulp is 2^104
    return new double[] {
      0.0, -0.0, 1.0, -2.5, 1.0 / 3, 0.1, -0.1, Math.PI, 1e30, -1e-30,
      1 + 0x1p-24, // tie: to 1 (even)
      1 + 0x3p-24, // tie: to 1 + 2^-22 (even)
      1 + 0x1p-24 + 0x1p-52, // just above the tie: up
      1 - 0x1p-25, // tie below 1 (ulp 2^-24 there): to 1
      Float.MAX_VALUE, -Float.MAX_VALUE,
      Float.MAX_VALUE + halfUlpAtMax, // tie at the top: to even, which is +inf
      Float.MAX_VALUE + halfUlpAtMax - 0x1p75, // one double ulp below the tie: MAX_VALUE
      -(Float.MAX_VALUE + halfUlpAtMax),
      1e39, -1e39, Double.MAX_VALUE, -Double.MAX_VALUE, // overflow to ±inf
      Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, Double.NaN,
      Double.longBitsToDouble(0x7FF0000000000001L), // a signalling NaN
      Double.longBitsToDouble(0xFFF8000000000000L), // a negative NaN
      0x1p-126, 0x1p-126 - 0x1p-150, // the smallest normal, and a value rounding up to it
      0x1p-149, -0x1p-149, // the smallest subnormal float
      0x1p-150, // tie between 0 and the smallest subnormal: to 0
      0x3p-150, // tie between 1 and 2 quanta: to 2
      0x1p-150 + 0x1p-170, // above the tie: the smallest subnormal
      Double.MIN_VALUE, -Double.MIN_VALUE, // to ±0
    };
  }

  @Test
  void f64ReadsRoundedToNearestEvenWithOverflowToInfinity() throws IOException {
    double[] edges = f64Edges();
    SplittableRandom random = new SplittableRandom(64);
    double[] values = new double[edges.length + 20_000];
    System.arraycopy(edges, 0, values, 0, edges.length);
    for (int i = edges.length; i < values.length; i++) {
      values[i] = i % 2 == 0 ? Double.longBitsToDouble(random.nextLong()) // every exponent
          : Math.scalb(random.nextDouble(-1, 1), random.nextInt(-160, 140)); // around float's
    }
    Map<String, Raw> tensors = new LinkedHashMap<>();
    tensors.put("d", new Raw("F64", new long[] {values.length}, doubles(values)));
    Path path = write("f64.safetensors", file(tensors, null));
    try (Arena arena = Arena.ofConfined()) {
      float[] read = SafeTensors.read(path, arena).tensors().get("d").toArray();
      for (int i = 0; i < values.length; i++) {
        assertSameFloat(referenceF64ToF32(values[i]), read[i], "F64 " + values[i]);
      }
      assertEquals(1f, read[10]);
      assertEquals(1f + 0x1p-22f, read[11]);
      assertEquals(Float.POSITIVE_INFINITY, read[16]);
      assertEquals(Float.MAX_VALUE, read[17]);
      assertEquals(0f, read[32]);
      assertEquals(2 * Float.MIN_VALUE, read[33]);
    }
  }

  // ---- writing BF16

  @Test
  void bf16WritesRoundToNearestEvenAndReadBackAsTheReference() throws IOException {
    List<Float> edges = new ArrayList<>(List.of(0f, -0f, 1f, -1f, 1f + 0x1p-8f, 1f + 0x3p-8f,
        1f + 0x1p-8f + 0x1p-23f, 1f - 0x1p-9f, Float.MAX_VALUE, -Float.MAX_VALUE,
        Float.intBitsToFloat(0x7F7F7FFF), Float.intBitsToFloat(0x7F7F8000), // below, at the tie
        Float.intBitsToFloat(0x7F7E8000), // a tie that rounds down to the largest bf16... even
        Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN,
        Float.intBitsToFloat(0xFFC00001), Float.intBitsToFloat(0x7F800001), // NaNs
        Float.MIN_VALUE, -Float.MIN_VALUE, 0x1p-133f, 0x1p-134f, 0x3p-134f, 0x1p-126f,
        Float.intBitsToFloat(0x007FFFFF), 3.14159265f, 1e-3f, 65504f, 1e38f));
    SplittableRandom random = new SplittableRandom(16);
    for (int i = 0; i < 50_000; i++) {
      edges.add(i % 2 == 0 ? Float.intBitsToFloat(random.nextInt())
          : (float) random.nextGaussian());
    }
    float[] values = new float[edges.size()];
    for (int i = 0; i < values.length; i++) {
      values[i] = edges.get(i);
    }
    Path path = folder.resolve("bf16.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      tensors.put("x", Tensor.fromArray(arena, values, values.length));
      tensors.put("scalar", Tensor.full(arena, 1f + 0x3p-8f));
      tensors.put("empty", Tensor.zeros(arena, 0, 3));
      SafeTensors.write(path, tensors, Map.of("k", "v"), SafeTensors.StorageDType.BF16);

      byte[] bytes = Files.readAllBytes(path);
      long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
      assertEquals(0, headerLength % 8, "the data is 8-byte aligned");
      String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
      assertTrue(header.contains("\"x\":{\"dtype\":\"BF16\",\"shape\":[" + values.length
          + "],\"data_offsets\":[0," + 2 * values.length + "]}"), header);
      assertEquals(8 + headerLength + 2L * values.length + 2, bytes.length, "2 bytes a value");
      ByteBuffer data = ByteBuffer.wrap(bytes, (int) (8 + headerLength), 2 * values.length)
          .slice().order(ByteOrder.LITTLE_ENDIAN);
      for (int i = 0; i < values.length; i++) {
        assertEquals(referenceBf16Bits(values[i]), data.getShort(2 * i) & 0xffff,
            "bits of " + values[i] + " (" + Integer.toHexString(Float.floatToRawIntBits(
                values[i])) + ")");
      }

      SafeTensors.File read = SafeTensors.read(path, arena);
      float[] back = read.tensors().get("x").toArray();
      for (int i = 0; i < values.length; i++) {
        assertSameFloat(referenceBf16(referenceBf16Bits(values[i])), back[i],
            "round trip of " + values[i]);
      }
      assertEquals(1f + 0x1p-6f, read.tensors().get("scalar").get());
      assertEquals(Shape.of(0, 3), read.tensors().get("empty").shape());
      assertEquals(Map.of("k", "v"), read.metadata());
      try (SafeTensors.Reader reader = SafeTensors.open(path)) {
        assertEquals("BF16", reader.entries().get("x").dtype());
      }
      // the default stays F32 and exact
      SafeTensors.write(path, Map.of("x", tensors.get("x")), Map.of());
      assertEquals(-1, tensors.get("x").segment().mismatch(
          SafeTensors.read(path, arena).tensors().get("x").segment()));
    }
    assertEquals(List.of(path.getFileName()), list(folder), "no temporary file is left");
  }

  @Test
  void theConvertersMatchTheReferences() {
    for (int bits : allSixteenBitPatterns()) {
      assertSameFloat(referenceF16(bits), SafeTensors.f16ToFloat((short) bits), "F16");
      assertSameFloat(referenceBf16(bits), SafeTensors.bf16ToFloat((short) bits), "BF16");
    }
    SplittableRandom random = new SplittableRandom(3);
    for (int i = 0; i < 200_000; i++) {
      float x = Float.intBitsToFloat(random.nextInt());
      assertEquals(referenceBf16Bits(x), SafeTensors.floatToBf16(x) & 0xffff, "" + x);
    }
  }

  // ---- other dtypes and hostile headers

  static Stream<String> unconvertedDtypes() {
    return Stream.of("BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "F8_E5M2",
        "F8_E4M3", "F8_E8M0", "C64");
  }

  static int width(String dtype) {
    return switch (dtype) {
      case "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0" -> 1;
      case "I16", "U16", "F16", "BF16" -> 2;
      case "I32", "U32", "F32" -> 4;
      default -> 8;
    };
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("unconvertedDtypes")
  void anUnconvertedDtypeIsAnIOExceptionNamingFileTensorAndDtype(String dtype)
      throws IOException {
    Map<String, Raw> tensors = new LinkedHashMap<>();
    tensors.put("w", new Raw("F32", new long[] {2}, floats(1.5f, -2f)));
    tensors.put("num_batches_tracked", new Raw(dtype, new long[] {3},
        new byte[3 * width(dtype)]));
    Path path = write("other.safetensors", file(tensors, null));
    IOException e = assertThrows(IOException.class,
        () -> SafeTensors.read(path, new SafeTensorsTest.UntouchableArena()));
    String message = e.getMessage();
    assertTrue(message.contains(path.toString())
        && message.contains("tensor \"num_batches_tracked\"")
        && message.contains("dtype is " + dtype + ", which seq4j does not convert to F32"),
        message);
    // the other tensors can still be read by name
    try (SafeTensors.Reader reader = SafeTensors.open(path); Arena arena = Arena.ofConfined()) {
      assertFalse(reader.entries().get("num_batches_tracked").readable());
      assertTrue(reader.entries().get("w").readable());
      assertEquals(Shape.of(3), reader.entries().get("num_batches_tracked").shape());
      List<String> readable = reader.entries().values().stream()
          .filter(SafeTensors.Entry::readable).map(SafeTensors.Entry::name).toList();
      assertArrayEquals(new float[] {1.5f, -2f}, reader.read(arena, readable).get("w").toArray());
      e = assertThrows(IOException.class,
          () -> reader.read(new SafeTensorsTest.UntouchableArena(), "num_batches_tracked"));
      assertTrue(e.getMessage().contains(path.toString())
          && e.getMessage().contains("tensor \"num_batches_tracked\": dtype is " + dtype),
          e.getMessage());
    }
  }

  static Stream<Arguments> hostileFiles() {
    return Stream.of(
        Arguments.of("F16 too short", SafeTensorsTest.entry("h", "F16", "[3]", 0, 8), 8,
            "shape [3] of dtype F16 needs 6 bytes, but data_offsets [0, 8] span 8"),
        Arguments.of("F16 read as if F32", SafeTensorsTest.entry("h", "F16", "[2]", 0, 8), 8,
            "needs 4 bytes, but data_offsets [0, 8] span 8"),
        Arguments.of("BF16 too long", SafeTensorsTest.entry("b", "BF16", "[2,2]", 0, 6), 6,
            "shape [2, 2] of dtype BF16 needs 8 bytes, but data_offsets [0, 6] span 6"),
        Arguments.of("F64 as wide as F32", SafeTensorsTest.entry("d", "F64", "[3]", 0, 12), 12,
            "shape [3] of dtype F64 needs 24 bytes, but data_offsets [0, 12] span 12"),
        Arguments.of("F16 byte count overflows", SafeTensorsTest.entry("h", "F16",
            "[4611686018427387904]", 0, 2), 2, "of dtype F16 has more than"),
        Arguments.of("BF16 byte count overflows", SafeTensorsTest.entry("b", "BF16",
            "[2147483648,2147483648]", 0, 2), 2, "of dtype BF16 has more than"),
        Arguments.of("F64 byte count overflows", SafeTensorsTest.entry("d", "F64",
            "[1152921504606846976]", 0, 8), 8, "of dtype F64 has more than"),
        Arguments.of("F64 elements fit, bytes past the file", SafeTensorsTest.entry("d", "F64",
            "[268435456]", 0, 1L << 31), 8, "run past the end of the data section"),
        Arguments.of("lower-case dtype", SafeTensorsTest.entry("d", "bf16", "[1]", 0, 2), 2,
            "unknown dtype \"bf16\""),
        Arguments.of("F128", SafeTensorsTest.entry("d", "F128", "[1]", 0, 16), 16,
            "unknown dtype \"F128\""),
        Arguments.of("empty dtype", SafeTensorsTest.entry("d", "", "[1]", 0, 4), 4,
            "unknown dtype \"\""),
        Arguments.of("PyTorch's name for it", SafeTensorsTest.entry("d", "float16", "[1]", 0, 2),
            2, "unknown dtype \"float16\""));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("hostileFiles")
  void hostileHeadersOfTheNewDtypesAreRefusedBeforeAllocating(String label, String entry,
      int data, String reason) throws IOException {
    Path path = write("hostile.safetensors", SafeTensorsTest.file("{" + entry + "}", data));
    IOException e = assertThrows(IOException.class,
        () -> SafeTensors.read(path, new SafeTensorsTest.UntouchableArena()), label);
    assertTrue(e.getMessage().contains(path.toString()) && e.getMessage().contains("tensor \"")
        && e.getMessage().contains(reason), e.getMessage());
    assertThrows(IOException.class, () -> SafeTensors.open(path).close(), label);
  }

  @Test
  void aMixedDtypeFileLoadsEveryTensorAsF32() throws IOException {
    Map<String, Raw> tensors = new LinkedHashMap<>();
    tensors.put("d", new Raw("F64", new long[] {2}, doubles(1 + 0x1p-24, -1e300)));
    tensors.put("f", new Raw("F32", new long[] {1, 2}, floats(0.1f, Float.NaN)));
    tensors.put("b", new Raw("BF16", new long[] {3}, shorts(0x3F80, 0xC0A0, 0x0001)));
    tensors.put("h", new Raw("F16", new long[] {2, 1}, shorts(0x3555, 0x8001)));
    tensors.put("scalar", new Raw("F16", new long[] {}, shorts(0x7C00)));
    tensors.put("none", new Raw("BF16", new long[] {0, 4}, new byte[0]));
    Path path = write("mixed.safetensors", file(tensors, "{\"format\":\"pt\"}"));
    try (Arena arena = Arena.ofConfined()) {
      SafeTensors.File read = SafeTensors.read(path, arena);
      assertEquals(List.of("d", "f", "b", "h", "scalar", "none"),
          new ArrayList<>(read.tensors().keySet()));
      assertArrayEquals(new float[] {1f, Float.NEGATIVE_INFINITY},
          read.tensors().get("d").toArray());
      assertArrayEquals(new float[] {0.1f, Float.NaN}, read.tensors().get("f").toArray());
      assertArrayEquals(new float[] {1f, -5f, 0x1p-133f}, read.tensors().get("b").toArray());
      assertArrayEquals(new float[] {referenceF16(0x3555), -0x1p-24f},
          read.tensors().get("h").toArray());
      assertEquals(Shape.of(2, 1), read.tensors().get("h").shape());
      assertEquals(Float.POSITIVE_INFINITY, read.tensors().get("scalar").get());
      assertEquals(Shape.of(0, 4), read.tensors().get("none").shape());
      assertEquals(Map.of("format", "pt"), read.metadata());
      for (Tensor t : read.tensors().values()) {
        assertEquals(org.seq4j.DType.F32, t.dtype());
      }
    }
  }

  // ---- reading on demand

  /** A read-only channel that counts the bytes read through it. */
  static final class CountingChannel extends FileChannel {
    final FileChannel inner;
    long bytesRead;

    CountingChannel(Path path) throws IOException {
      inner = FileChannel.open(path, StandardOpenOption.READ);
    }

    private long count(long n) {
      bytesRead += Math.max(0, n);
      return n;
    }

    @Override
    public int read(ByteBuffer dst) throws IOException {
      return (int) count(inner.read(dst));
    }

    @Override
    public long read(ByteBuffer[] dsts, int offset, int length) throws IOException {
      return count(inner.read(dsts, offset, length));
    }

    @Override
    public int read(ByteBuffer dst, long position) throws IOException {
      return (int) count(inner.read(dst, position));
    }

    @Override
    public int write(ByteBuffer src) {
      throw new UnsupportedOperationException();
    }

    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) {
      throw new UnsupportedOperationException();
    }

    @Override
    public int write(ByteBuffer src, long position) {
      throw new UnsupportedOperationException();
    }

    @Override
    public long position() throws IOException {
      return inner.position();
    }

    @Override
    public FileChannel position(long newPosition) throws IOException {
      inner.position(newPosition);
      return this;
    }

    @Override
    public long size() throws IOException {
      return inner.size();
    }

    @Override
    public FileChannel truncate(long size) {
      throw new UnsupportedOperationException();
    }

    @Override
    public void force(boolean metaData) throws IOException {
      inner.force(metaData);
    }

    @Override
    public long transferTo(long position, long count, WritableByteChannel target) {
      throw new UnsupportedOperationException("counted reads only");
    }

    @Override
    public long transferFrom(ReadableByteChannel src, long position, long count) {
      throw new UnsupportedOperationException();
    }

    @Override
    public MappedByteBuffer map(MapMode mode, long position, long size) {
      throw new UnsupportedOperationException("counted reads only");
    }

    @Override
    public FileLock lock(long position, long size, boolean shared) {
      throw new UnsupportedOperationException();
    }

    @Override
    public FileLock tryLock(long position, long size, boolean shared) {
      throw new UnsupportedOperationException();
    }

    @Override
    protected void implCloseChannel() throws IOException {
      inner.close();
    }
  }

  @Test
  void openReadsTheHeaderAloneAndReadReadsOnlyTheChosenTensors() throws IOException {
    Path path = folder.resolve("big.safetensors");
    try (Arena arena = Arena.ofConfined()) {
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      tensors.put("a", Tensor.randomNormal(arena, 1, 512, 1024)); // 2 MiB as F32
      tensors.put("b", Tensor.randomNormal(arena, 2, 3, 5));
      tensors.put("c", Tensor.randomNormal(arena, 3, 1024, 700));
      SafeTensors.write(path, tensors, Map.of("epoch", "7"), SafeTensors.StorageDType.BF16);
      long headerLength = ByteBuffer.wrap(Files.readAllBytes(path), 0, 8)
          .order(ByteOrder.LITTLE_ENDIAN).getLong();

      CountingChannel channel = new CountingChannel(path);
      try (SafeTensors.Reader reader = SafeTensors.open(path, channel)) {
        assertEquals(8 + headerLength, channel.bytesRead, "open reads the length and header");
        assertEquals(Map.of("epoch", "7"), reader.metadata());
        assertEquals(List.of("a", "b", "c"), new ArrayList<>(reader.entries().keySet()));
        SafeTensors.Entry b = reader.entries().get("b");
        assertEquals("BF16", b.dtype());
        assertEquals(Shape.of(3, 5), b.shape());
        assertEquals(30, b.byteSize());
        assertEquals(8 + headerLength, channel.bytesRead, "the entries are already there");

        Tensor one = reader.read(arena, "b");
        assertEquals(8 + headerLength + 30, channel.bytesRead, "b's 30 bytes and no more");
        float[] expected = tensors.get("b").toArray();
        for (int i = 0; i < expected.length; i++) {
          assertSameFloat(referenceBf16(referenceBf16Bits(expected[i])), one.toArray()[i], "b");
        }
        Map<String, Tensor> two = reader.read(arena, List.of("c", "b"));
        assertEquals(List.of("c", "b"), new ArrayList<>(two.keySet()), "in the order given");
        assertEquals(8 + headerLength + 30 + 2L * 1024 * 700 + 30, channel.bytesRead);
      }
    }
  }

  @Test
  void aReaderKeepsItsMetadataWhenTheDataIsTruncatedAfterOpening() throws IOException {
    Map<String, Raw> tensors = new LinkedHashMap<>();
    tensors.put("first", new Raw("BF16", new long[] {2}, shorts(0x4000, 0x4040)));
    tensors.put("last", new Raw("F64", new long[] {4}, doubles(1, 2, 3, 4)));
    byte[] bytes = file(tensors, "{\"format\":\"pt\"}");
    Path path = write("cut.safetensors", bytes);
    try (SafeTensors.Reader reader = SafeTensors.open(path); Arena arena = Arena.ofConfined()) {
      try (FileChannel cut = FileChannel.open(path, StandardOpenOption.WRITE)) {
        cut.truncate(bytes.length - 20); // into "last"
      }
      assertEquals(Map.of("format", "pt"), reader.metadata());
      assertEquals(Shape.of(4), reader.entries().get("last").shape());
      assertArrayEquals(new float[] {2f, 3f}, reader.read(arena, "first").toArray());
      IOException e = assertThrows(IOException.class, () -> reader.read(arena, "last"));
      assertTrue(e.getMessage().contains(path.toString())
          && e.getMessage().contains("tensor \"last\"")
          && e.getMessage().contains("truncated while being read"), e.getMessage());
    }
    // opened after the cut, the file is refused as a whole
    IOException e = assertThrows(IOException.class, () -> SafeTensors.open(path));
    assertTrue(e.getMessage().contains("run past the end of the data section"), e.getMessage());
  }

  // ---- a file as safetensors.torch.save_file writes it

  /**
   * The exact bytes that {@code safetensors.torch.save_file(sd, path, metadata={"format": "pt"})}
   * writes for the state dict of
   *
   * <pre>
   * lstm = torch.nn.LSTM(2, 1).to(torch.bfloat16); fc = torch.nn.Linear(1, 1).half()
   * sd = {"lstm." + k: v for k, v in lstm.state_dict().items()}
   * sd |= {"fc." + k: v for k, v in fc.state_dict().items()}
   * </pre>
   *
   * with the values set as below. As the Rust {@code safetensors::tensor::prepare} does
   * (huggingface/safetensors), tensors are sorted by dtype, widest alignment first in the order of
   * its {@code Dtype} enum (BF16 after F16 there, so BF16 first), then by name; the data follows
   * in that order; the header is compact JSON ({@code serde_json}), {@code __metadata__} first,
   * each entry's fields in the order dtype, shape, data_offsets, padded with spaces to a multiple
   * of 8 bytes.
   */
  static final String TORCH_HEADER = "{\"__metadata__\":{\"format\":\"pt\"},"
      + "\"lstm.bias_hh_l0\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]},"
      + "\"lstm.bias_ih_l0\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[8,16]},"
      + "\"lstm.weight_hh_l0\":{\"dtype\":\"BF16\",\"shape\":[4,1],\"data_offsets\":[16,24]},"
      + "\"lstm.weight_ih_l0\":{\"dtype\":\"BF16\",\"shape\":[4,2],\"data_offsets\":[24,40]},"
      + "\"fc.bias\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[40,42]},"
      + "\"fc.weight\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[42,44]}}"
      + "     "; // 443 characters + 5 spaces = 448 = 56 * 8

  /** The data section: little-endian BF16, then F16, in the header's order. */
  static final int[] TORCH_DATA = {
    0x80, 0x3F, 0x00, 0xBF, 0x80, 0x3E, 0x00, 0x00, // bias_hh: 1, -0.5, 0.25, 0
    0x40, 0x40, 0x80, 0xBE, 0x00, 0x3D, 0x80, 0xBF, // bias_ih: 3, -0.25, 0.03125, -1
    0x00, 0x40, 0xC0, 0xBF, 0xAB, 0x3E, 0x00, 0x80, // weight_hh: 2, -1.5, 0x3EAB, -0
    0x20, 0x41, 0x00, 0xC1, 0x49, 0x40, 0xCC, 0x3D, // weight_ih row 0, 1: 10, -8, 0x4049, 0x3DCC
    0x80, 0x7F, 0x80, 0xFF, 0xC0, 0x7F, 0x01, 0x00, // row 2, 3: +inf, -inf, NaN, 2^-133
    0x00, 0xB8, // fc.bias F16: -0.5
    0x55, 0x35, // fc.weight F16: 0x3555, 0.333251953125
  };

  static byte[] torchFile() {
    byte[] header = TORCH_HEADER.getBytes(StandardCharsets.US_ASCII);
    ByteBuffer out = ByteBuffer.allocate(8 + header.length + TORCH_DATA.length);
    out.put(new byte[] {(byte) 0xC0, 0x01, 0, 0, 0, 0, 0, 0}); // 448, little-endian
    out.put(header);
    for (int b : TORCH_DATA) {
      out.put((byte) b);
    }
    return out.array();
  }

  @Test
  void aStateDictAsSafetensorsTorchSavesItLoads() throws IOException {
    assertEquals(448, TORCH_HEADER.length(), "the header length written in the first 8 bytes");
    Path path = write("torch.safetensors", torchFile());
    try (Arena arena = Arena.ofConfined()) {
      SafeTensors.File read = SafeTensors.read(path, arena);
      assertEquals(Map.of("format", "pt"), read.metadata());
      assertEquals(List.of("lstm.bias_hh_l0", "lstm.bias_ih_l0", "lstm.weight_hh_l0",
          "lstm.weight_ih_l0", "fc.bias", "fc.weight"), new ArrayList<>(read.tensors().keySet()));
      Map<String, Tensor> t = read.tensors();
      assertArrayEquals(new float[] {1f, -0.5f, 0.25f, 0f}, t.get("lstm.bias_hh_l0").toArray());
      assertArrayEquals(new float[] {3f, -0.25f, 0.03125f, -1f},
          t.get("lstm.bias_ih_l0").toArray());
      assertEquals(Shape.of(4, 1), t.get("lstm.weight_hh_l0").shape());
      assertArrayEquals(new float[] {2f, -1.5f, referenceBf16(0x3EAB), -0f},
          t.get("lstm.weight_hh_l0").toArray());
      assertEquals(Shape.of(4, 2), t.get("lstm.weight_ih_l0").shape());
      float[] ih = t.get("lstm.weight_ih_l0").toArray();
      assertArrayEquals(new float[] {10f, -8f, 3.140625f, referenceBf16(0x3DCC),
          Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 0x1p-133f}, ih);
      assertEquals(Shape.of(1), t.get("fc.bias").shape());
      assertEquals(-0.5f, t.get("fc.bias").get(0));
      assertEquals(Shape.of(1, 1), t.get("fc.weight").shape());
      assertEquals(0.333251953125f, t.get("fc.weight").get(0, 0));
    }
  }

  @Test
  void checkpointLoadingAcceptsTheTorchFileIntoF32Parameters() throws IOException {
    Path path = write("torch.safetensors", torchFile());
    try (Arena arena = Arena.ofConfined()) {
      Map<String, long[]> shapes = new LinkedHashMap<>();
      shapes.put("lstm.weight_ih_l0", new long[] {4, 2});
      shapes.put("lstm.weight_hh_l0", new long[] {4, 1});
      shapes.put("lstm.bias_ih_l0", new long[] {4});
      shapes.put("lstm.bias_hh_l0", new long[] {4});
      shapes.put("fc.weight", new long[] {1, 1});
      shapes.put("fc.bias", new long[] {1});
      List<Parameter> parameters = new ArrayList<>();
      shapes.forEach((name, dims) -> parameters.add(Parameter.of(name,
          Tensor.full(arena, 42f, dims), Tensor.zeros(arena, dims))));
      Map<String, String> metadata = Checkpoints.load(path, parameters, null);
      assertEquals("pt", metadata.get("format"));
      assertArrayEquals(new float[] {3f, -0.25f, 0.03125f, -1f},
          parameters.get(2).data().toArray());
      assertEquals(0.333251953125f, parameters.get(4).data().get(0, 0));
      assertEquals(-0.5f, parameters.get(5).data().get(0));

      // a seq4j checkpoint written as BF16 by hand loads the same way
      Path bf16 = folder.resolve("bf16.safetensors");
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      parameters.forEach(p -> tensors.put(p.name(), p.data()));
      SafeTensors.write(bf16, tensors, Map.of(), SafeTensors.StorageDType.BF16);
      parameters.forEach(p -> p.data().fill(7f));
      Checkpoints.load(bf16, parameters, null);
      assertEquals(3f, parameters.get(2).data().get(0));
      assertEquals(referenceBf16(referenceBf16Bits(0.333251953125f)),
          parameters.get(4).data().get(0, 0));
    }
  }

  private static List<Path> list(Path folder) throws IOException {
    try (Stream<Path> files = Files.list(folder)) {
      return files.map(Path::getFileName).toList();
    }
  }
}
