package org.seq4j.data;

import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;

/**
 * A fixed, sorted set of tokens and their indices, for {@code Embedding} inputs and for reading
 * sampled indices back: Python's {@code chars = sorted(set(text))} with {@code {c: i for i, c in
 * enumerate(chars)}}, for characters (Unicode code points) or for whole tokens (words).
 *
 * <pre>{@code
 * Vocabulary chars = Vocabulary.ofCharacters(text);
 * long[] data = chars.encodeCharacters(text);            // one index per code point
 * String back = chars.decodeCharacters(data);            // equals text
 * }</pre>
 *
 * <p>Immutable and safe to share between threads.
 */
public final class Vocabulary {
  private final List<String> tokens;
  private final Map<String, Integer> indices;

  private Vocabulary(TreeSet<String> sorted) {
    this.tokens = List.copyOf(sorted);
    Map<String, Integer> map = new HashMap<>(tokens.size() * 2);
    for (int i = 0; i < tokens.size(); i++) {
      map.put(tokens.get(i), i);
    }
    this.indices = Collections.unmodifiableMap(map);
  }

  /**
   * The distinct code points of {@code text} in code-point order, each a token.
   *
   * @throws IllegalArgumentException if {@code text} is empty
   */
  public static Vocabulary ofCharacters(CharSequence text) {
    Objects.requireNonNull(text, "text");
    TreeSet<String> set = new TreeSet<>(Vocabulary::compareCodePoints);
    text.codePoints().forEach(c -> set.add(Character.toString(c)));
    if (set.isEmpty()) {
      throw new IllegalArgumentException("text: expected at least one character, got an empty"
          + " text");
    }
    return new Vocabulary(set);
  }

  /**
   * The distinct {@code tokens} in their natural (lexicographic) order.
   *
   * @throws IllegalArgumentException if there is no token
   */
  public static Vocabulary of(Iterable<String> tokens) {
    Objects.requireNonNull(tokens, "tokens");
    TreeSet<String> set = new TreeSet<>();
    int i = 0;
    for (String token : tokens) {
      set.add(Objects.requireNonNull(token, "tokens[" + i + "]"));
      i++;
    }
    if (set.isEmpty()) {
      throw new IllegalArgumentException("tokens: expected at least one token, got none");
    }
    return new Vocabulary(set);
  }

  /** The number of tokens. */
  public int size() {
    return tokens.size();
  }

  /** The tokens, by index. */
  public List<String> tokens() {
    return tokens;
  }

  /** Whether {@code token} is in the vocabulary. */
  public boolean contains(String token) {
    return indices.containsKey(token);
  }

  /**
   * The index of {@code token}.
   *
   * @throws IllegalArgumentException if it is not in the vocabulary
   */
  public long index(String token) {
    Integer index = indices.get(Objects.requireNonNull(token, "token"));
    if (index == null) {
      throw new IllegalArgumentException("token: expected one of the " + size()
          + " tokens of the vocabulary, got '" + escape(token) + "'");
    }
    return index;
  }

  /** The index of the character {@code codePoint}. */
  public long index(int codePoint) {
    return index(Character.toString(codePoint));
  }

  /**
   * The token at {@code index}.
   *
   * @throws IndexOutOfBoundsException if {@code index} is outside {@code [0, size())}
   */
  public String token(long index) {
    if (index < 0 || index >= tokens.size()) {
      throw new IndexOutOfBoundsException("index: expected a value in [0, " + tokens.size()
          + "), got " + index);
    }
    return tokens.get((int) index);
  }

  /** The index of each code point of {@code text}. */
  public long[] encodeCharacters(CharSequence text) {
    Objects.requireNonNull(text, "text");
    return text.codePoints().mapToLong(this::index).toArray();
  }

  /** The index of each token. */
  public long[] encode(List<String> tokens) {
    Objects.requireNonNull(tokens, "tokens");
    return tokens.stream().mapToLong(this::index).toArray();
  }

  /** The tokens of {@code indices}, concatenated (the inverse of {@link #encodeCharacters}). */
  public String decodeCharacters(long... indices) {
    StringBuilder s = new StringBuilder();
    for (long index : indices) {
      s.append(token(index));
    }
    return s.toString();
  }

  /** The tokens of {@code indices} (the inverse of {@link #encode}). */
  public List<String> decode(long... indices) {
    return Arrays.stream(indices).mapToObj(this::token).toList();
  }

  @Override
  public String toString() {
    return "Vocabulary(" + size() + " tokens)";
  }

  private static int compareCodePoints(String a, String b) {
    return Integer.compare(a.codePointAt(0), b.codePointAt(0));
  }

  private static String escape(String token) {
    return token.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r");
  }
}
