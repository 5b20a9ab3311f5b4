package org.seq4j.io;

import java.io.Closeable;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.seq4j.DType;
import org.seq4j.Shape;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;

/**
 * Reads and writes the safetensors format (Hugging Face): an 8-byte little-endian header length
 * {@code N}, {@code N} bytes of UTF-8 JSON naming each tensor's dtype, shape and byte range, then
 * the raw little-endian data. Files written here load in PyTorch with {@code
 * safetensors.torch.load_file}, and the files of {@code safetensors.torch.save_file(
 * model.state_dict())} load here, whatever their floating-point dtype.
 *
 * <pre>{@code
 * SafeTensors.write(path, Map.of("weight_ih_l0", w), Map.of("step", "100"));
 * SafeTensors.File file = SafeTensors.read(path, arena);
 * Tensor w = file.tensors().get("weight_ih_l0");
 *
 * SafeTensors.write(half, tensors, Map.of(), SafeTensors.StorageDType.BF16); // half the size
 * try (SafeTensors.Reader reader = SafeTensors.open(path)) { // reads the header only
 *   Shape shape = reader.entries().get("weight_ih_l0").shape();
 *   Tensor one = reader.read(arena, "weight_ih_l0");           // reads that tensor's bytes only
 * }
 * }</pre>
 *
 * <h2>Dtypes</h2>
 *
 * seq4j's tensors are F32. Reading converts each tensor to F32 exactly as PyTorch's {@code
 * .float()} does:
 *
 * <ul>
 *   <li>{@code F32}: copied bit for bit;
 *   <li>{@code F16} (IEEE binary16) and {@code BF16} (bfloat16): exact, as every value of theirs
 *       is a float, subnormals, ±0, ±inf and NaN included;
 *   <li>{@code F64}: rounded to the nearest float, ties to even; beyond the float range it
 *       overflows to ±inf, and NaN stays NaN.
 * </ul>
 *
 * A tensor of any other dtype of the format ({@code I64}, {@code I32}, {@code BOOL}, {@code U8},
 * {@code F8_E4M3}, ...) is not converted: naming it in {@link Reader#read(Arena, Collection)} is
 * an {@link IOException} naming the file, the tensor and its dtype, and {@link #read(Path, Arena)}
 * refuses a file holding one before allocating anything. {@link Entry#readable()} tells which
 * tensors of a file can be read, so that a caller can read the others (PyTorch's {@code
 * num_batches_tracked} counters are I64, for example).
 *
 * <p>Writing stores F32 by default, or BF16 on request ({@link StorageDType#BF16}): each float is
 * rounded to the nearest bfloat16, ties to even, as PyTorch's {@code .to(torch.bfloat16)} does;
 * NaN is written as the quiet NaN {@code 0x7FC0}, as PyTorch's scalar conversion writes it.
 *
 * <h2>Reading on demand</h2>
 *
 * {@link #open} reads the 8-byte length and the header, nothing else: the names, dtypes, shapes
 * and metadata of a file are known without reading or allocating its tensors. {@link
 * Reader#read(Arena, Collection)} then reads the bytes of the chosen tensors only, by positional
 * reads of the open file.
 *
 * <h2>Validation</h2>
 *
 * A file is untrusted input. Its header is validated completely before anything is allocated for
 * its tensors, following the format's README and the checks of the Rust reference reader
 * ({@code huggingface/safetensors}, {@code Metadata::validate} and {@code read_metadata}):
 *
 * <ul>
 *   <li>the file holds at least the 8-byte length; the header length is at most 100,000,000 bytes
 *       (the reference's {@code MAX_HEADER_SIZE}) and within the file;
 *   <li>the header is valid UTF-8 and strict JSON (RFC 8259: no trailing commas, comments, leading
 *       zeros, invalid escapes, unescaped control characters or unpaired surrogates; nesting at
 *       most 128 deep, serde_json's limit), one object, optionally padded with whitespace;
 *   <li>no object has a duplicate key (the README: "Duplicate keys are disallowed"), compared
 *       after unescaping;
 *   <li>{@code __metadata__}, when present, is an object whose values are all strings (or
 *       {@code null}, meaning none);
 *   <li>every other entry is an object with a known {@code dtype} string, a {@code shape} array of
 *       non-negative integers and a {@code data_offsets} array of two non-negative integers
 *       {@code [begin, end]} with {@code begin <= end}; other fields are ignored, as the reference
 *       ignores them;
 *   <li>the element count and byte count are computed with overflow checks and equal {@code end -
 *       begin};
 *   <li>sorted by offset, the entries cover the data section exactly: the first begins at 0, each
 *       begins where the previous ends (no overlap, no hole) and the last ends at the end of the
 *       file (no trailing bytes), so a file never claims more memory than it holds.
 * </ul>
 *
 * Every violation is an {@link IOException} whose message names the file and, where the fault is
 * in one entry, the tensor. These checks hold for every dtype of the format, readable or not.
 */
public final class SafeTensors {
  /** The largest header accepted, in bytes: the Rust reference's {@code MAX_HEADER_SIZE}. */
  public static final long MAX_HEADER_BYTES = 100_000_000L;

  /** The deepest JSON nesting accepted (serde_json's default recursion limit). */
  static final int MAX_NESTING = 128;

  /** The key under which the header holds string metadata. */
  private static final String METADATA = "__metadata__";

  /** Bytes moved per read or write call, a multiple of every element size. */
  private static final int CHUNK_BYTES = 1 << 20;

  private static final ValueLayout.OfFloat FILE_FLOAT =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static final ValueLayout.OfShort FILE_SHORT =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static final ValueLayout.OfDouble FILE_DOUBLE =
      ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  /** The dtypes that reading converts to F32. */
  private static final List<String> READABLE = List.of("F32", "F16", "BF16", "F64");

  /** The dtypes of the format and their element sizes in bytes. */
  private static final Map<String, Integer> DTYPE_BYTES = dtypes();

  private SafeTensors() {}

  private static Map<String, Integer> dtypes() {
    Map<String, Integer> sizes = new LinkedHashMap<>();
    for (String one : List.of("BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0")) {
      sizes.put(one, 1);
    }
    for (String two : List.of("I16", "U16", "F16", "BF16")) {
      sizes.put(two, 2);
    }
    for (String four : List.of("I32", "U32", "F32")) {
      sizes.put(four, 4);
    }
    for (String eight : List.of("I64", "U64", "F64", "C64")) {
      sizes.put(eight, 8);
    }
    return Collections.unmodifiableMap(sizes);
  }

  /**
   * The dtype in which {@link #write(Path, Map, Map, StorageDType)} stores tensors. Reading
   * accepts more (see the class comment).
   */
  public enum StorageDType {
    /** IEEE 754 binary32, bit for bit: the default, exact. */
    F32(4),
    /**
     * bfloat16: half the bytes, each float rounded to the nearest bfloat16 (ties to even) as
     * PyTorch's {@code .to(torch.bfloat16)} does; NaN stays NaN ({@code 0x7FC0}). Its 8-bit
     * significand keeps about 3 significant decimal digits.
     */
    BF16(2);

    private final int byteSize;

    StorageDType(int byteSize) {
      this.byteSize = byteSize;
    }

    /** Bytes per element in the file. */
    public int byteSize() {
      return byteSize;
    }
  }

  /**
   * The contents of a file: tensors in header order, all F32, and the string metadata.
   *
   * @param tensors the tensors by name, in header order
   * @param metadata the {@code __metadata__} strings; empty when the file has none
   */
  public record File(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  /**
   * One validated tensor entry of a header.
   *
   * @param name the tensor's key
   * @param dtype the format's dtype name ({@code F32}, {@code BF16}, ...)
   * @param shape the dimensions
   * @param begin the first byte of its data, relative to the start of the data section
   * @param end one past its last byte, relative to the start of the data section
   */
  public record Entry(String name, String dtype, Shape shape, long begin, long end) {
    /** The data's size in bytes. */
    public long byteSize() {
      return end - begin;
    }

    /**
     * Whether seq4j can read this tensor: its dtype is F32, F16, BF16 or F64, which reading
     * converts to F32.
     */
    public boolean readable() {
      return READABLE.contains(dtype);
    }
  }

  // ---- writing

  /**
   * Writes the tensors (in map order) as F32, and the metadata, to {@code path}, atomically: {@link
   * #write(Path, Map, Map, StorageDType)} with {@link StorageDType#F32}.
   *
   * @param path the file to write or replace
   * @param tensors the tensors by name, written in map order
   * @param metadata string metadata; may be null or empty
   * @throws IOException if the file cannot be written
   * @throws IllegalArgumentException if a name or value would make an invalid file (see {@link
   *     #write(Path, Map, Map, StorageDType)})
   * @throws IllegalStateException if a tensor's arena is closed
   */
  public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    write(path, tensors, metadata, StorageDType.F32);
  }

  /**
   * Writes the tensors (in map order), stored as {@code dtype}, and metadata to {@code path},
   * atomically: everything is validated first, then a temporary file in the same folder is
   * written, forced to disk and renamed over the target, so a failure or crash never leaves half a
   * file and never destroys the previous one.
   *
   * @param path the file to write or replace
   * @param tensors the tensors by name, written in map order
   * @param metadata string metadata; may be null or empty
   * @param dtype how the tensors are stored: {@link StorageDType#F32} exactly, or {@link
   *     StorageDType#BF16} rounded to nearest even
   * @throws IOException if the file cannot be written
   * @throws IllegalArgumentException if a name or value would make an invalid file: a null name,
   *     tensor or metadata entry, the reserved name {@code __metadata__}, text that is not
   *     well-formed Unicode (an unpaired surrogate cannot be written as UTF-8), or a header larger
   *     than {@link #MAX_HEADER_BYTES}
   * @throws IllegalStateException if a tensor's arena is closed
   */
  public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata,
      StorageDType dtype) throws IOException {
    Objects.requireNonNull(path, "path");
    Objects.requireNonNull(tensors, "tensors");
    Objects.requireNonNull(dtype, "dtype");
    byte[] json = header(tensors, metadata == null ? Map.of() : metadata, dtype);
    int padding = (8 - json.length % 8) % 8; // keeps the data 8-byte aligned, as the reference does
    Path folder = path.toAbsolutePath().getParent();
    Files.createDirectories(folder);
    Path temporary = Files.createTempFile(folder, "." + path.getFileName(), ".part");
    try {
      try (FileChannel channel = FileChannel.open(temporary, StandardOpenOption.WRITE)) {
        ByteBuffer prefix = ByteBuffer.allocate(8 + json.length + padding)
            .order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(json.length + padding).put(json);
        for (int i = 0; i < padding; i++) {
          prefix.put((byte) ' ');
        }
        writeFully(channel, prefix.flip());
        byte[] chunk = new byte[CHUNK_BYTES];
        MemorySegment chunkSegment = MemorySegment.ofArray(chunk);
        for (Map.Entry<String, Tensor> entry : tensors.entrySet()) {
          Tensor tensor = entry.getValue();
          Checks.usable(tensor.segment(), "tensors[" + display(entry.getKey()) + "]");
          long bytes = tensor.size() * dtype.byteSize(); // checked by header()
          for (long done = 0; done < bytes; ) {
            int n = (int) Math.min(CHUNK_BYTES, bytes - done);
            long first = done / dtype.byteSize(); // the chunk's first element
            int count = n / dtype.byteSize();
            if (dtype == StorageDType.F32) {
              MemorySegment.copy(tensor.segment(), ValueLayout.JAVA_FLOAT_UNALIGNED,
                  first * DType.F32.byteSize(), chunkSegment, FILE_FLOAT, 0, count);
            } else {
              for (int i = 0; i < count; i++) {
                chunkSegment.setAtIndex(FILE_SHORT, i, floatToBf16(tensor.segment()
                    .getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, first + i)));
              }
            }
            writeFully(channel, ByteBuffer.wrap(chunk, 0, n));
            done += n;
          }
        }
        channel.force(true);
      }
      try {
        Files.move(temporary, path, StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temporary, path, StandardCopyOption.REPLACE_EXISTING);
      }
      forceFolder(folder);
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  /** The JSON header of a file, after checking every name, value and size. */
  private static byte[] header(Map<String, Tensor> tensors, Map<String, String> metadata,
      StorageDType dtype) {
    StringBuilder header = new StringBuilder("{");
    if (!metadata.isEmpty()) {
      header.append(quote(METADATA)).append(":{");
      boolean first = true;
      for (Map.Entry<String, String> entry : metadata.entrySet()) {
        String key = entry.getKey();
        if (key == null) {
          throw new IllegalArgumentException("metadata: a key is null");
        }
        if (entry.getValue() == null) {
          throw new IllegalArgumentException("metadata[" + display(key) + "]: the value is null");
        }
        wellFormed(key, "metadata: the key " + display(key));
        wellFormed(entry.getValue(), "metadata[" + display(key) + "]");
        header.append(first ? "" : ",").append(quote(key)).append(':')
            .append(quote(entry.getValue()));
        first = false;
      }
      header.append('}');
    }
    long offset = 0;
    for (Map.Entry<String, Tensor> entry : tensors.entrySet()) {
      String name = entry.getKey();
      if (name == null) {
        throw new IllegalArgumentException("tensors: a name is null");
      }
      if (name.equals(METADATA)) {
        throw new IllegalArgumentException("tensors: the name " + METADATA + " is reserved");
      }
      wellFormed(name, "tensors: the name " + display(name));
      Tensor tensor = entry.getValue();
      if (tensor == null) {
        throw new IllegalArgumentException("tensors[" + display(name) + "]: the tensor is null");
      }
      Checks.usable(tensor.segment(), "tensors[" + display(name) + "]");
      long bytes;
      try {
        bytes = Math.multiplyExact(tensor.size(), (long) dtype.byteSize());
        header.append(header.length() > 1 ? "," : "").append(quote(name))
            .append(":{\"dtype\":\"").append(dtype.name()).append("\",\"shape\":[");
        long[] dims = tensor.shape().dims();
        for (int i = 0; i < dims.length; i++) {
          header.append(i == 0 ? "" : ",").append(dims[i]);
        }
        header.append("],\"data_offsets\":[").append(offset).append(',')
            .append(Math.addExact(offset, bytes)).append("]}");
        offset = Math.addExact(offset, bytes);
      } catch (ArithmeticException overflow) {
        throw new IllegalArgumentException("tensors: the data would exceed " + Long.MAX_VALUE
            + " bytes at tensor " + display(name), overflow);
      }
      if (header.length() > MAX_HEADER_BYTES) {
        break; // reported below, before the whole header is built
      }
    }
    header.append('}');
    byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
    if (json.length + (8 - json.length % 8) % 8 > MAX_HEADER_BYTES) {
      throw new IllegalArgumentException("tensors: the header would take " + json.length
          + " bytes, more than the " + MAX_HEADER_BYTES + " safetensors readers accept (too many"
          + " or too long names and metadata)");
    }
    return json;
  }

  /** Throws unless {@code text} is well-formed UTF-16, so that its UTF-8 form is exact. */
  private static void wellFormed(String text, String what) {
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (Character.isHighSurrogate(c) && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        throw new IllegalArgumentException(what + " holds an unpaired surrogate U+"
            + String.format("%04X", (int) c) + " at index " + i + ", which UTF-8 cannot encode");
      }
    }
  }

  private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }

  /** Makes the rename durable where the platform allows forcing a folder (POSIX). */
  private static void forceFolder(Path folder) {
    try (FileChannel channel = FileChannel.open(folder, StandardOpenOption.READ)) {
      channel.force(true);
    } catch (IOException | UnsupportedOperationException e) {
      // Windows cannot open a folder as a channel; the rename itself is still atomic there
    }
  }

  // ---- conversions (package-private for the tests)

  /** bfloat16 to float, exactly: a bfloat16 is the upper half of a float's bits. */
  static float bf16ToFloat(short bits) {
    return Float.intBitsToFloat((bits & 0xffff) << 16);
  }

  /** IEEE binary16 to float, exactly (subnormals, ±inf and NaN payloads included). */
  static float f16ToFloat(short bits) {
    return Float.float16ToFloat(bits);
  }

  /**
   * double to float as a C cast and PyTorch's {@code .float()}: round to nearest, ties to even;
   * beyond the float range ±inf; NaN stays NaN (Java's narrowing conversion, JLS 5.1.3).
   */
  static float f64ToFloat(double value) {
    return (float) value;
  }

  /**
   * float to bfloat16, rounded to nearest with ties to even, as PyTorch's {@code
   * c10::BFloat16}: adding {@code 0x7FFF} plus the lowest kept bit to the float's bits rounds
   * their upper half (a carry out of the significand raises the exponent, up to ±inf); NaN
   * becomes the quiet NaN {@code 0x7FC0}.
   */
  static short floatToBf16(float value) {
    if (Float.isNaN(value)) {
      return (short) 0x7FC0;
    }
    int bits = Float.floatToRawIntBits(value);
    return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
  }

  /**
   * Converts {@code count} elements of the file's {@code dtype} at the start of {@code from} to
   * floats at element {@code toIndex} of {@code target}.
   */
  private static void decode(String dtype, MemorySegment from, int count, MemorySegment target,
      long toIndex) {
    ValueLayout.OfFloat out = ValueLayout.JAVA_FLOAT_UNALIGNED;
    switch (dtype) {
      case "F32" -> MemorySegment.copy(from, FILE_FLOAT, 0, target, out,
          toIndex * DType.F32.byteSize(), count);
      case "BF16" -> {
        for (int i = 0; i < count; i++) {
          target.setAtIndex(out, toIndex + i, bf16ToFloat(from.getAtIndex(FILE_SHORT, i)));
        }
      }
      case "F16" -> {
        for (int i = 0; i < count; i++) {
          target.setAtIndex(out, toIndex + i, f16ToFloat(from.getAtIndex(FILE_SHORT, i)));
        }
      }
      case "F64" -> {
        for (int i = 0; i < count; i++) {
          target.setAtIndex(out, toIndex + i, f64ToFloat(from.getAtIndex(FILE_DOUBLE, i)));
        }
      }
      default -> throw new AssertionError("not a readable dtype: " + dtype); // checked before
    }
  }

  // ---- reading

  /**
   * Reads every tensor of a file into new F32 tensors in {@code arena}, converting F16, BF16 and
   * F64 (see the class comment). Nothing is allocated until the whole header is validated and
   * every tensor is known to be readable.
   *
   * @param path the file
   * @param arena where the tensors are allocated
   * @return the tensors in header order, and the metadata
   * @throws IOException if the file cannot be read or is not valid safetensors, or holds a tensor
   *     of a dtype seq4j does not convert (I64, BOOL, ...; the message names the file, the tensor
   *     and the dtype; {@link #open} and {@link Reader#read(Arena, Collection)} read the others)
   */
  public static File read(Path path, Arena arena) throws IOException {
    Objects.requireNonNull(arena, "arena");
    try (Reader reader = open(path)) {
      for (Entry e : reader.entries().values()) {
        if (!e.readable()) {
          throw reader.tensorError(e.name(), "dtype is " + e.dtype() + ", which seq4j does not"
              + " convert to F32 (it reads " + String.join(", ", READABLE) + "); to read the"
              + " other tensors, open the file and read them by name (Entry.readable())");
        }
      }
      return new File(reader.read(arena, reader.entries().keySet()), reader.metadata());
    }
  }

  /**
   * Opens a file and validates its header completely (see the class comment), reading its
   * length and header only, not its tensor data: for inspecting a file (names, dtypes, shapes,
   * metadata), or for reading some of its tensors. The caller closes the reader.
   *
   * @param path the file
   * @return the open, validated file
   * @throws IOException if the file cannot be read or its header is not valid safetensors
   */
  public static Reader open(Path path) throws IOException {
    Objects.requireNonNull(path, "path");
    return open(path, FileChannel.open(path, StandardOpenOption.READ));
  }

  /**
   * {@link #open(Path)} on a channel already open (the tests count the bytes it reads); closes the
   * channel when the header is invalid.
   */
  static Reader open(Path path, FileChannel channel) throws IOException {
    try {
      return new Reader(path, channel);
    } catch (IOException | RuntimeException | Error e) {
      channel.close();
      throw e;
    }
  }

  /**
   * An open safetensors file whose header has been validated. Reading keeps using the same open
   * file, so replacing the file by another (as {@link #write} does) does not mix two files.
   */
  public static final class Reader implements Closeable {
    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private Reader(Path path, FileChannel channel) throws IOException {
      this.path = path;
      this.channel = channel;
      long size = channel.size();
      if (size < 8) {
        throw new IOException(path + ": not a safetensors file: " + size
            + " bytes, fewer than the 8 of the header length");
      }
      ByteBuffer lengthBuffer = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(lengthBuffer, 0, null);
      long headerLength = lengthBuffer.flip().getLong();
      if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
        throw new IOException(path + ": not a safetensors file: header length "
            + Long.toUnsignedString(headerLength) + " is above the limit of " + MAX_HEADER_BYTES
            + " bytes");
      }
      if (headerLength > size - 8) {
        throw new IOException(path + ": not a safetensors file: header length " + headerLength
            + " runs past the end of the file (" + size + " bytes, so at most " + (size - 8)
            + ")");
      }
      ByteBuffer headerBuffer = ByteBuffer.allocate((int) headerLength);
      readFully(headerBuffer, 8, null);
      String json = utf8(headerBuffer.flip());
      Map<String, Object> header;
      try {
        header = new Json(json).document();
      } catch (Json.Malformed e) {
        throw new IOException(path + ": malformed safetensors header: " + e.getMessage()
            + " at character " + e.at + " of " + json.length()
            + (e.entry == null ? "" : e.entry.equals(METADATA) ? " (in " + METADATA + ")"
                : " (in the entry of tensor " + display(e.entry) + ")"));
      }
      this.dataStart = 8 + headerLength;
      this.metadata = metadataOf(header.get(METADATA));
      this.entries = entriesOf(header, size - dataStart);
    }

    private String utf8(ByteBuffer bytes) throws IOException {
      CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT);
      CharBuffer chars = CharBuffer.allocate(bytes.remaining());
      CoderResult result = decoder.decode(bytes, chars, true);
      if (result.isError()) {
        throw new IOException(path + ": malformed safetensors header: not valid UTF-8 at byte "
            + (8 + bytes.position()) + " of the file");
      }
      decoder.flush(chars);
      return chars.flip().toString();
    }

    private Map<String, String> metadataOf(Object value) throws IOException {
      if (value == null || value == Json.NULL) {
        return Map.of();
      }
      if (!(value instanceof Map<?, ?> map)) {
        throw new IOException(path + ": " + METADATA + " is " + Json.kind(value)
            + ", not an object of strings");
      }
      Map<String, String> out = new LinkedHashMap<>();
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        if (!(entry.getValue() instanceof String text)) {
          throw new IOException(path + ": " + METADATA + ": the value of "
              + display((String) entry.getKey()) + " is " + Json.kind(entry.getValue())
              + ", not a string");
        }
        out.put((String) entry.getKey(), text);
      }
      return Collections.unmodifiableMap(out);
    }

    private Map<String, Entry> entriesOf(Map<String, Object> header, long dataLength)
        throws IOException {
      Map<String, Entry> out = new LinkedHashMap<>();
      for (Map.Entry<String, Object> item : header.entrySet()) {
        String name = item.getKey();
        if (!name.equals(METADATA)) {
          out.put(name, entry(name, item.getValue()));
        }
      }
      List<Entry> byOffset = new ArrayList<>(out.values());
      byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
      long expected = 0;
      Entry previous = null;
      for (Entry e : byOffset) {
        if (e.end() > dataLength) {
          throw tensorError(e.name(), "data_offsets [" + e.begin() + ", " + e.end()
              + "] run past the end of the data section, which holds " + dataLength
              + " bytes (the file is truncated or the header is wrong)");
        }
        if (e.begin() < expected) {
          throw tensorError(e.name(), "data_offsets [" + e.begin() + ", " + e.end()
              + "] overlap those of tensor " + display(previous.name()) + " ["
              + previous.begin() + ", " + previous.end() + "]");
        }
        if (e.begin() > expected) {
          throw tensorError(e.name(), "data_offsets [" + e.begin() + ", " + e.end()
              + "] leave a hole: bytes [" + expected + ", " + e.begin()
              + ") of the data section belong to no tensor");
        }
        expected = e.end();
        previous = e;
      }
      if (expected != dataLength) {
        throw new IOException(path + ": " + (dataLength - expected) + " trailing bytes: bytes ["
            + expected + ", " + dataLength + ") of the data section belong to no tensor"
            + (previous == null ? "" : " (the last, " + display(previous.name()) + ", ends at "
                + expected + ")"));
      }
      return Collections.unmodifiableMap(out);
    }

    private Entry entry(String name, Object value) throws IOException {
      if (!(value instanceof Map<?, ?> info)) {
        throw tensorError(name, "the entry is " + Json.kind(value) + ", not an object");
      }
      if (!(info.get("dtype") instanceof String dtype)) {
        throw tensorError(name, info.containsKey("dtype")
            ? "dtype is " + Json.kind(info.get("dtype")) + ", not a string" : "dtype is missing");
      }
      Integer elementBytes = DTYPE_BYTES.get(dtype);
      if (elementBytes == null) {
        throw tensorError(name, "unknown dtype " + display(dtype) + " (the format's are "
            + DTYPE_BYTES.keySet() + ")");
      }
      long[] dims = integers(name, "shape", info.get("shape"), -1);
      long[] offsets = integers(name, "data_offsets", info.get("data_offsets"), 2);
      if (offsets[0] > offsets[1]) {
        throw tensorError(name, "data_offsets " + Arrays.toString(offsets)
            + " end before they begin");
      }
      long bytes;
      try {
        long elements = 1;
        for (long dim : dims) {
          elements = Math.multiplyExact(elements, dim);
        }
        bytes = Math.multiplyExact(elements, (long) elementBytes);
      } catch (ArithmeticException overflow) {
        throw tensorError(name, "shape " + Arrays.toString(dims) + " of dtype " + dtype
            + " has more than " + Long.MAX_VALUE + " bytes");
      }
      if (offsets[1] - offsets[0] != bytes) {
        throw tensorError(name, "shape " + Arrays.toString(dims) + " of dtype " + dtype
            + " needs " + bytes + " bytes, but data_offsets " + Arrays.toString(offsets)
            + " span " + (offsets[1] - offsets[0]));
      }
      return new Entry(name, dtype, Shape.of(dims), offsets[0], offsets[1]);
    }

    /** A JSON array of non-negative integers that fit a long, of {@code length} unless -1. */
    private long[] integers(String name, String field, Object value, int length)
        throws IOException {
      if (!(value instanceof List<?> list)) {
        throw tensorError(name, value == null ? field + " is missing"
            : field + " is " + Json.kind(value) + ", not an array");
      }
      if (length >= 0 && list.size() != length) {
        throw tensorError(name, field + " has " + list.size() + " entries, not " + length);
      }
      long[] out = new long[list.size()];
      for (int i = 0; i < out.length; i++) {
        Object item = list.get(i);
        if (!(item instanceof Json.Number number)) {
          throw tensorError(name, field + "[" + i + "] is " + Json.kind(item)
              + ", not an integer");
        }
        out[i] = number.nonNegativeLong();
        if (out[i] < 0) {
          throw tensorError(name, field + "[" + i + "] is " + display(number.text())
              + ", not an integer in [0, " + Long.MAX_VALUE + "]");
        }
      }
      return out;
    }

    private IOException tensorError(String name, String what) {
      return new IOException(path + ": tensor " + display(name) + ": " + what);
    }

    /** The file this reader reads. */
    public Path path() {
      return path;
    }

    /** The validated tensor entries, by name, in header order. */
    public Map<String, Entry> entries() {
      return entries;
    }

    /** The string metadata ({@code __metadata__}); empty when the file has none. */
    public Map<String, String> metadata() {
      return metadata;
    }

    /**
     * Reads one tensor into a new F32 tensor in {@code arena}: {@link #read(Arena, Collection)}
     * of that name alone, which reads its bytes only.
     *
     * @param arena where the tensor is allocated
     * @param name the tensor's key
     * @return the tensor, converted to F32
     * @throws IOException as {@link #read(Arena, Collection)}
     */
    public Tensor read(Arena arena, String name) throws IOException {
      return read(arena, List.of(Objects.requireNonNull(name, "name"))).get(name);
    }

    /**
     * Reads the named tensors into new F32 tensors in {@code arena}, in the order given,
     * converting F16, BF16 and F64 (see the class comment). Only their bytes are read from the
     * file. All names are checked (present, of a readable dtype) before anything is allocated.
     *
     * @param arena where the tensors are allocated
     * @param names the tensors' keys; a name given twice is read once
     * @return the tensors by name, in the order given
     * @throws IOException if a name is not in the file, a tensor's dtype is not one seq4j
     *     converts (the message names the file, the tensor and the dtype), or the file ends early
     *     (it was truncated after it was opened)
     */
    public Map<String, Tensor> read(Arena arena, Collection<String> names) throws IOException {
      Objects.requireNonNull(arena, "arena");
      Objects.requireNonNull(names, "names");
      List<Entry> wanted = new ArrayList<>();
      for (String name : names) {
        Entry e = entries.get(name);
        if (e == null) {
          throw new IOException(path + ": has no tensor " + display(name));
        }
        if (!e.readable()) {
          throw tensorError(name, "dtype is " + e.dtype() + ", which seq4j does not convert to"
              + " F32 (it reads " + String.join(", ", READABLE) + ")");
        }
        wanted.add(e);
      }
      Map<String, Tensor> out = new LinkedHashMap<>();
      for (Entry e : wanted) {
        if (!out.containsKey(e.name())) {
          out.put(e.name(), Tensor.uninitialized(arena, e.shape().dims()));
        }
      }
      ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(CHUNK_BYTES,
          wanted.stream().mapToLong(Entry::byteSize).max().orElse(0)));
      MemorySegment chunkSegment = MemorySegment.ofBuffer(chunk);
      for (Map.Entry<String, Tensor> read : out.entrySet()) {
        Entry e = entries.get(read.getKey());
        int width = DTYPE_BYTES.get(e.dtype());
        MemorySegment target = read.getValue().segment();
        // the chunk is either a multiple of every width or holds the whole tensor
        for (long done = 0; done < e.byteSize(); ) {
          int n = (int) Math.min(chunk.capacity(), e.byteSize() - done);
          chunk.clear().limit(n);
          readFully(chunk, dataStart + e.begin() + done, e.name());
          decode(e.dtype(), chunkSegment, n / width, target, done / width);
          done += n;
        }
      }
      return Collections.unmodifiableMap(out);
    }

    private void readFully(ByteBuffer buffer, long position, String tensor) throws IOException {
      long at = position;
      while (buffer.hasRemaining()) {
        int read = channel.read(buffer, at);
        if (read < 0) {
          throw new IOException(path + ": " + (tensor == null ? "" : "tensor " + display(tensor)
              + ": ") + "the file ends at byte " + at + ", before the data it declares (it was"
              + " truncated while being read)");
        }
        at += read;
      }
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }

  /** A name as messages show it: quoted and escaped as JSON, cut after 200 characters. */
  static String display(String name) {
    if (name == null) {
      return "null";
    }
    String shown = name.length() > 200 ? name.substring(0, 200) : name;
    return quote(shown) + (shown.length() < name.length()
        ? "... (" + name.length() + " characters)" : "");
  }

  private static String quote(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20 || c == 0x7f || Character.isSurrogate(c)
              && !(Character.isHighSurrogate(c) && i + 1 < text.length()
                  && Character.isLowSurrogate(text.charAt(i + 1)))
              && !(Character.isLowSurrogate(c) && i > 0
                  && Character.isHighSurrogate(text.charAt(i - 1)))) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }

  /**
   * Strict JSON (RFC 8259) into maps, lists, strings, {@link Number}s, booleans and {@link #NULL}:
   * every malformed input is a {@link Malformed} with its position, never another exception.
   * Nesting is bounded, numbers are kept as text until an integer is asked for, and duplicate keys
   * are refused.
   */
  static final class Json {
    /** JSON's {@code null}. */
    static final Object NULL = new Object() {
      @Override
      public String toString() {
        return "null";
      }
    };

    /** A number as written; converted only where an integer is expected. */
    record Number(String text) {
      /** The value when it is an integer in [0, Long.MAX_VALUE], else -1. */
      long nonNegativeLong() {
        if (text.startsWith("-") || text.indexOf('.') >= 0 || text.indexOf('e') >= 0
            || text.indexOf('E') >= 0 || text.length() > 19) {
          return -1;
        }
        try {
          return Long.parseLong(text);
        } catch (NumberFormatException tooLarge) {
          return -1;
        }
      }
    }

    /** A syntax error at a character position, inside the entry of a tensor where known. */
    static final class Malformed extends Exception {
      final int at;
      final String entry;

      Malformed(String message, int at, String entry) {
        super(message, null, false, false);
        this.at = at;
        this.entry = entry;
      }
    }

    private final String text;
    private int at;
    private int depth;
    private String entry; // the top-level key whose value is being parsed

    Json(String text) {
      this.text = text;
    }

    /** What a parsed value is, for messages. */
    static String kind(Object value) {
      if (value instanceof Map) {
        return "an object";
      }
      if (value instanceof List) {
        return "an array";
      }
      if (value instanceof String) {
        return "a string";
      }
      if (value instanceof Number number) {
        return "the number " + display(number.text());
      }
      if (value instanceof Boolean b) {
        return b.toString();
      }
      return "null";
    }

    /** The document: one object, with whitespace around it. */
    Map<String, Object> document() throws Malformed {
      skipSpace();
      if (!peek('{')) {
        throw error(at >= text.length() ? "the header is empty or blank"
            : "the header must be a JSON object, found '" + printable(text.charAt(at)) + "'");
      }
      Map<String, Object> result = object(true);
      skipSpace();
      if (at != text.length()) {
        throw error("trailing characters after the header's object: '"
            + printable(text.charAt(at)) + "'");
      }
      return result;
    }

    private Object value() throws Malformed {
      skipSpace();
      if (at >= text.length()) {
        throw error("unexpected end of the header");
      }
      char c = text.charAt(at);
      switch (c) {
        case '{':
          return object(false);
        case '[':
          return array();
        case '"':
          return string();
        case 't':
          return literal("true", Boolean.TRUE);
        case 'f':
          return literal("false", Boolean.FALSE);
        case 'n':
          return literal("null", NULL);
        default:
          if (c == '-' || c >= '0' && c <= '9') {
            return number();
          }
          throw error("unexpected character '" + printable(c) + "'");
      }
    }

    private Object literal(String word, Object value) throws Malformed {
      if (!text.startsWith(word, at)) {
        throw error("unexpected character '" + printable(text.charAt(at)) + "'");
      }
      at += word.length();
      return value;
    }

    private Number number() throws Malformed {
      int start = at;
      if (peek('-')) {
        at++;
      }
      if (peek('0')) {
        at++;
      } else if (digit()) {
        while (digit()) {
          at++;
        }
      } else {
        throw error("a number needs a digit after '-'");
      }
      if (peek('.')) {
        at++;
        if (!digit()) {
          throw error("a number needs a digit after '.'");
        }
        while (digit()) {
          at++;
        }
      }
      if (peek('e') || peek('E')) {
        at++;
        if (peek('+') || peek('-')) {
          at++;
        }
        if (!digit()) {
          throw error("a number needs a digit in its exponent");
        }
        while (digit()) {
          at++;
        }
      }
      return new Number(text.substring(start, at));
    }

    private boolean digit() {
      return at < text.length() && text.charAt(at) >= '0' && text.charAt(at) <= '9';
    }

    private void enter() throws Malformed {
      if (++depth > MAX_NESTING) {
        throw error("nesting deeper than " + MAX_NESTING + " levels");
      }
    }

    private List<Object> array() throws Malformed {
      enter();
      at++; // '['
      List<Object> list = new ArrayList<>();
      skipSpace();
      if (peek(']')) {
        at++;
        depth--;
        return list;
      }
      while (true) {
        list.add(value());
        skipSpace();
        if (peek(',')) {
          at++;
        } else if (peek(']')) {
          at++;
          depth--;
          return list;
        } else {
          throw error(at >= text.length() ? "unexpected end of the header in an array"
              : "expected ',' or ']' in an array, found '" + printable(text.charAt(at)) + "'");
        }
      }
    }

    private Map<String, Object> object(boolean top) throws Malformed {
      enter();
      at++; // '{'
      Map<String, Object> map = new LinkedHashMap<>();
      skipSpace();
      if (peek('}')) {
        at++;
        depth--;
        return map;
      }
      while (true) {
        skipSpace();
        if (!peek('"')) {
          throw error(at >= text.length() ? "unexpected end of the header in an object"
              : "expected a key string in an object, found '" + printable(text.charAt(at))
                  + "'");
        }
        int keyAt = at;
        String key = string();
        if (top) {
          entry = key;
        }
        if (map.containsKey(key)) {
          at = keyAt;
          throw error(top ? "duplicate tensor name " + display(key)
              : "duplicate key " + display(key));
        }
        skipSpace();
        if (!peek(':')) {
          throw error("expected ':' after the key " + display(key));
        }
        at++;
        map.put(key, value());
        if (top) {
          entry = null;
        }
        skipSpace();
        if (peek(',')) {
          at++;
        } else if (peek('}')) {
          at++;
          depth--;
          return map;
        } else {
          throw error(at >= text.length() ? "unexpected end of the header in an object"
              : "expected ',' or '}' in an object, found '" + printable(text.charAt(at)) + "'");
        }
      }
    }

    private String string() throws Malformed {
      at++; // '"'
      StringBuilder out = new StringBuilder();
      while (true) {
        if (at >= text.length()) {
          throw error("unterminated string");
        }
        char c = text.charAt(at);
        if (c == '"') {
          at++;
          return out.toString();
        }
        if (c < 0x20) {
          throw error("unescaped control character U+" + String.format("%04X", (int) c)
              + " in a string");
        }
        if (c != '\\') {
          out.append(c);
          at++;
          continue;
        }
        if (at + 1 >= text.length()) {
          throw error("unterminated escape in a string");
        }
        char e = text.charAt(at + 1);
        at += 2;
        switch (e) {
          case '"' -> out.append('"');
          case '\\' -> out.append('\\');
          case '/' -> out.append('/');
          case 'b' -> out.append('\b');
          case 'f' -> out.append('\f');
          case 'n' -> out.append('\n');
          case 'r' -> out.append('\r');
          case 't' -> out.append('\t');
          case 'u' -> {
            char unit = hex4();
            if (Character.isHighSurrogate(unit)) {
              if (!text.startsWith("\\u", at)) {
                throw error("unpaired surrogate \\u" + String.format("%04x", (int) unit)
                    + " in a string");
              }
              at += 2;
              char low = hex4();
              if (!Character.isLowSurrogate(low)) {
                throw error("unpaired surrogate \\u" + String.format("%04x", (int) unit)
                    + " in a string");
              }
              out.append(unit).append(low);
            } else if (Character.isLowSurrogate(unit)) {
              throw error("unpaired surrogate \\u" + String.format("%04x", (int) unit)
                  + " in a string");
            } else {
              out.append(unit);
            }
          }
          default -> {
            at -= 2;
            throw error("invalid escape '\\" + printable(e) + "' in a string");
          }
        }
      }
    }

    private char hex4() throws Malformed {
      if (at + 4 > text.length()) {
        throw error("a \\u escape needs 4 hex digits");
      }
      int value = 0;
      for (int i = 0; i < 4; i++) {
        int digit = Character.digit(text.charAt(at + i), 16);
        if (digit < 0 || text.charAt(at + i) > 'f') {
          throw error("a \\u escape needs 4 hex digits");
        }
        value = value * 16 + digit;
      }
      at += 4;
      return (char) value;
    }

    private static String printable(char c) {
      return c < 0x20 || c >= 0x7f ? String.format("\\u%04x", (int) c) : String.valueOf(c);
    }

    private boolean peek(char c) {
      return at < text.length() && text.charAt(at) == c;
    }

    private Malformed error(String message) {
      return new Malformed(message, at, entry);
    }

    private void skipSpace() {
      while (at < text.length()) {
        char c = text.charAt(at);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
          return;
        }
        at++;
      }
    }
  }
}
