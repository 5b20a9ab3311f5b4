package org.seq4j.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.seq4j.Tensor;
import org.seq4j.internal.Checks;

/**
 * Reads and writes the safetensors format (Hugging Face): an 8-byte little-endian header length,
 * a JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
 * seq4j writes F32 tensors; files written here load in PyTorch with {@code
 * safetensors.torch.load_file}, and PyTorch's F32 files load here.
 *
 * <pre>{@code
 * SafeTensors.write(path, Map.of("weight_ih_l0", w), Map.of("step", "100"));
 * SafeTensors.File file = SafeTensors.read(path, arena);
 * Tensor w = file.tensors().get("weight_ih_l0");
 * }</pre>
 */
public final class SafeTensors {
  /** Headers above this size are refused: a corrupt length must not allocate gigabytes. */
  private static final long MAX_HEADER_BYTES = 100L << 20;

  private SafeTensors() {}

  /** The contents of a file: tensors in file order, and the string metadata. */
  public record File(Map<String, Tensor> tensors, Map<String, String> metadata) {}

  /**
   * Writes the tensors (in map order) and metadata to {@code path}, atomically: a temporary file
   * in the same folder is renamed over the target, so a crash never leaves half a checkpoint.
   */
  public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata)
      throws IOException {
    StringBuilder header = new StringBuilder("{");
    if (metadata != null && !metadata.isEmpty()) {
      header.append("\"__metadata__\":{");
      boolean first = true;
      for (Map.Entry<String, String> entry : metadata.entrySet()) {
        header.append(first ? "" : ",").append(quote(entry.getKey())).append(':')
            .append(quote(entry.getValue()));
        first = false;
      }
      header.append('}');
    }
    long offset = 0;
    for (Map.Entry<String, Tensor> entry : tensors.entrySet()) {
      if (entry.getKey().equals("__metadata__")) {
        throw new IllegalArgumentException("tensors: the name __metadata__ is reserved");
      }
      Tensor tensor = entry.getValue();
      Checks.usable(tensor.segment(), "tensors[" + entry.getKey() + "]");
      long bytes = tensor.segment().byteSize();
      header.append(header.length() > 1 ? "," : "").append(quote(entry.getKey()))
          .append(":{\"dtype\":\"F32\",\"shape\":[");
      long[] dims = tensor.shape().dims();
      for (int i = 0; i < dims.length; i++) {
        header.append(i == 0 ? "" : ",").append(dims[i]);
      }
      header.append("],\"data_offsets\":[").append(offset).append(',').append(offset + bytes)
          .append("]}");
      offset += bytes;
    }
    header.append('}');
    byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
    int padding = (8 - json.length % 8) % 8; // keeps the data 8-byte aligned, as the spec allows
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
        prefix.flip();
        while (prefix.hasRemaining()) {
          channel.write(prefix);
        }
        for (Tensor tensor : tensors.values()) {
          ByteBuffer data = littleEndian(tensor);
          while (data.hasRemaining()) {
            channel.write(data);
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
    } finally {
      Files.deleteIfExists(temporary);
    }
  }

  private static ByteBuffer littleEndian(Tensor tensor) {
    ByteBuffer native_ = tensor.segment().asByteBuffer();
    if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
      return native_;
    }
    ByteBuffer swapped = ByteBuffer.allocate(native_.remaining()).order(ByteOrder.LITTLE_ENDIAN);
    native_.order(ByteOrder.nativeOrder());
    while (native_.hasRemaining()) {
      swapped.putFloat(native_.getFloat());
    }
    return swapped.flip();
  }

  /**
   * Reads every tensor of a file into new tensors in {@code arena}.
   *
   * @throws IOException if the file cannot be read or is not valid safetensors (the message says
   *     what is wrong)
   */
  public static File read(Path path, Arena arena) throws IOException {
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size < 8) {
        throw new IOException(path + ": not a safetensors file (" + size + " bytes)");
      }
      ByteBuffer lengthBuffer = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      readFully(channel, lengthBuffer, 0);
      long headerLength = lengthBuffer.flip().getLong();
      if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
        throw new IOException(path + ": not a safetensors file (header length " + headerLength
            + " in a file of " + size + " bytes)");
      }
      ByteBuffer headerBuffer = ByteBuffer.allocate((int) headerLength);
      readFully(channel, headerBuffer, 8);
      String json = new String(headerBuffer.array(), StandardCharsets.UTF_8);
      Map<String, Object> header;
      try {
        header = new Json(json).object();
      } catch (IllegalArgumentException e) {
        throw new IOException(path + ": malformed safetensors header: " + e.getMessage(), e);
      }
      long dataStart = 8 + headerLength;
      Map<String, Tensor> tensors = new LinkedHashMap<>();
      Map<String, String> metadata = new LinkedHashMap<>();
      for (Map.Entry<String, Object> entry : header.entrySet()) {
        String name = entry.getKey();
        if (name.equals("__metadata__")) {
          if (entry.getValue() instanceof Map<?, ?> values) {
            values.forEach((k, v) -> metadata.put(String.valueOf(k), String.valueOf(v)));
          }
          continue;
        }
        if (!(entry.getValue() instanceof Map<?, ?> info)) {
          throw new IOException(path + ": entry " + name + " is not an object");
        }
        Object dtype = info.get("dtype");
        if (!"F32".equals(dtype)) {
          throw new IOException(path + ": tensor " + name + " has dtype " + dtype
              + "; seq4j reads F32 only");
        }
        long[] shape = longs(info.get("shape"), path, name, "shape");
        long[] offsets = longs(info.get("data_offsets"), path, name, "data_offsets");
        Tensor tensor = Tensor.zeros(arena, shape);
        long bytes = tensor.segment().byteSize();
        if (offsets.length != 2 || offsets[1] - offsets[0] != bytes || offsets[0] < 0
            || dataStart + offsets[1] > size) {
          throw new IOException(path + ": tensor " + name + " has data_offsets "
              + java.util.Arrays.toString(offsets) + " that do not fit its shape "
              + tensor.shape() + " or the file");
        }
        ByteBuffer data = tensor.segment().asByteBuffer();
        readFully(channel, data, dataStart + offsets[0]);
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
          MemorySegment s = tensor.segment();
          for (long i = 0; i < tensor.size(); i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.intBitsToFloat(
                Integer.reverseBytes(Float.floatToRawIntBits(s.getAtIndex(ValueLayout.JAVA_FLOAT, i)))));
          }
        }
        tensors.put(name, tensor);
      }
      return new File(Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }
  }

  private static void readFully(FileChannel channel, ByteBuffer buffer, long position)
      throws IOException {
    long at = position;
    while (buffer.hasRemaining()) {
      int read = channel.read(buffer, at);
      if (read < 0) {
        throw new IOException("unexpected end of file at byte " + at);
      }
      at += read;
    }
  }

  private static long[] longs(Object value, Path path, String name, String field)
      throws IOException {
    if (!(value instanceof List<?> list)) {
      throw new IOException(path + ": tensor " + name + " has no " + field + " array");
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(list.get(i) instanceof Long number)) {
        throw new IOException(path + ": tensor " + name + " has a non-integer in " + field);
      }
      out[i] = number;
    }
    return out;
  }

  private static String quote(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : text.toCharArray()) {
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
        }
      }
    }
    return out.append('"').toString();
  }

  /** The JSON subset of a safetensors header: objects, arrays, strings and integers. */
  private static final class Json {
    private final String text;
    private int at;

    Json(String text) {
      this.text = text;
    }

    Map<String, Object> object() {
      Map<String, Object> result = parseObject();
      skipSpace();
      if (at != text.length()) {
        throw new IllegalArgumentException("trailing characters at " + at);
      }
      return result;
    }

    private Object value() {
      skipSpace();
      if (at >= text.length()) {
        throw new IllegalArgumentException("unexpected end");
      }
      char c = text.charAt(at);
      if (c == '{') {
        return parseObject();
      }
      if (c == '[') {
        List<Object> list = new ArrayList<>();
        at++;
        skipSpace();
        if (peek(']')) {
          at++;
          return list;
        }
        while (true) {
          list.add(value());
          skipSpace();
          if (peek(',')) {
            at++;
          } else {
            expect(']');
            return list;
          }
        }
      }
      if (c == '"') {
        return string();
      }
      int start = at;
      while (at < text.length() && "-+0123456789.eE".indexOf(text.charAt(at)) >= 0) {
        at++;
      }
      String number = text.substring(start, at);
      if (number.isEmpty()) {
        throw new IllegalArgumentException("unexpected '" + c + "' at " + start);
      }
      try {
        return Long.parseLong(number);
      } catch (NumberFormatException e) {
        return Double.parseDouble(number);
      }
    }

    private Map<String, Object> parseObject() {
      skipSpace();
      expect('{');
      Map<String, Object> map = new LinkedHashMap<>();
      skipSpace();
      if (peek('}')) {
        at++;
        return map;
      }
      while (true) {
        skipSpace();
        String key = string();
        skipSpace();
        expect(':');
        map.put(key, value());
        skipSpace();
        if (peek(',')) {
          at++;
        } else {
          expect('}');
          return map;
        }
      }
    }

    private String string() {
      expect('"');
      StringBuilder out = new StringBuilder();
      while (at < text.length() && text.charAt(at) != '"') {
        char c = text.charAt(at++);
        if (c == '\\') {
          char e = text.charAt(at++);
          switch (e) {
            case 'n' -> out.append('\n');
            case 't' -> out.append('\t');
            case 'r' -> out.append('\r');
            case 'b' -> out.append('\b');
            case 'f' -> out.append('\f');
            case 'u' -> {
              out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
              at += 4;
            }
            default -> out.append(e);
          }
        } else {
          out.append(c);
        }
      }
      expect('"');
      return out.toString();
    }

    private boolean peek(char c) {
      return at < text.length() && text.charAt(at) == c;
    }

    private void expect(char c) {
      if (!peek(c)) {
        throw new IllegalArgumentException("expected '" + c + "' at " + at);
      }
      at++;
    }

    private void skipSpace() {
      while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
        at++;
      }
    }
  }

}
