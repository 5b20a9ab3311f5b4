package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * DESIGN.md's boundary rules, checked on the library's sources:
 *
 * <ul>
 *   <li>only {@code org.seq4j.internal} knows the C ABI: no other class imports {@code
 *       java.lang.invoke}, names a {@code MethodHandle} or a {@code StructLayout}, uses {@code
 *       ValueLayout.ADDRESS} or calls {@code invokeExact};
 *   <li>the packages form no cycle ({@code org.seq4j} → {@code internal}; {@code nn} → {@code
 *       org.seq4j}; {@code train} → {@code nn}; ...), so each can be understood and changed from
 *       the bottom up.
 * </ul>
 *
 * <p>One edge is exempt from the cycle rule: {@code internal} may name the public value types it
 * translates to and from ({@link #ABI_VALUE_TYPES}: the exception a native status becomes, and the
 * enums whose codes it maps). They reference no other seq4j package (checked), so such an edge
 * cannot close a cycle through anything but themselves.
 *
 * <p>The scan reads the sources as text without comments and string literals; a reference is an
 * import or a fully qualified name.
 */
class ArchitectureTest {
  private static final Path SOURCES = Path.of("src/main/java");
  private static final String ROOT = "org.seq4j";
  private static final String INTERNAL = "org.seq4j.internal";
  static final Set<String> ABI_VALUE_TYPES =
      Set.of("org.seq4j.Seq4jException", "org.seq4j.Backend", "org.seq4j.KernelIsa");

  /** What a class outside internal must not contain, and why. */
  private static final Map<Pattern, String> FORBIDDEN = Map.of(
      Pattern.compile("\\bjava\\.lang\\.invoke\\b"), "imports java.lang.invoke",
      Pattern.compile("\\bMethodHandles?\\b"), "names a MethodHandle",
      Pattern.compile("\\bStructLayout\\b"), "uses a StructLayout",
      Pattern.compile("\\bValueLayout\\s*\\.\\s*(ADDRESS|\\*)"), "uses ValueLayout.ADDRESS",
      Pattern.compile("\\binvokeExact\\b"), "calls invokeExact");

  private static final Pattern REFERENCE =
      Pattern.compile("\\borg\\.seq4j((?:\\.[a-z][a-z0-9_]*)*)\\.([A-Z]\\w*)");
  private static final Pattern PACKAGE = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;",
      Pattern.MULTILINE);

  /** A source file: its path (for messages), package and text without comments and strings. */
  record Source(String path, String packageName, String code) {
    static Source of(String path, String text) {
      String code = strip(text);
      Matcher m = PACKAGE.matcher(code);
      return new Source(path, m.find() ? m.group(1) : "", code);
    }
  }

  @Test
  void onlyInternalKnowsTheCAbi() {
    assertEquals(List.of(), boundaryViolations(librarySources()));
  }

  @Test
  void packagesFormNoCycle() {
    List<Source> sources = librarySources();
    assertEquals(List.of(), abiValueTypesThatAreNotLeaves(sources));
    assertEquals(List.of(), cycles(sources));
  }

  @Test
  void theRulesCatchPlantedViolations() {
    // the checks themselves can fail: sources with one violation each
    List<Source> planted = List.of(
        Source.of("org/seq4j/nn/Bad.java", "package org.seq4j.nn;\n"
            + "import java.lang.invoke.MethodHandle; // a comment about ADDRESS\n"
            + "class Bad {\n"
            + "  Object f(MethodHandle h) throws Throwable { return h.invokeExact(); }\n}"),
        Source.of("org/seq4j/nn/Fine.java", "package org.seq4j.nn;\n"
            + "/** Mentions invokeExact and StructLayout in a comment only. */\n"
            + "class Fine { String s = \"invokeExact\"; }"));
    List<String> violations = boundaryViolations(planted);
    assertEquals(List.of(
        "org/seq4j/nn/Bad.java calls invokeExact",
        "org/seq4j/nn/Bad.java imports java.lang.invoke",
        "org/seq4j/nn/Bad.java names a MethodHandle"), violations);
    List<Source> cyclic = List.of(
        Source.of("org/seq4j/nn/A.java", "package org.seq4j.nn;\nimport org.seq4j.train.B;"),
        Source.of("org/seq4j/train/B.java", "package org.seq4j.train;\nclass B {"
            + " org.seq4j.nn.A a; }"));
    assertEquals(List.of("org.seq4j.nn -> org.seq4j.train -> org.seq4j.nn"), cycles(cyclic));
  }

  // ---- the rules

  static List<String> boundaryViolations(List<Source> sources) {
    List<String> violations = new ArrayList<>();
    for (Source source : sources) {
      String name = source.packageName();
      if (name.equals(INTERNAL) || name.startsWith(INTERNAL + ".")) {
        continue;
      }
      for (Map.Entry<Pattern, String> rule : FORBIDDEN.entrySet()) {
        if (rule.getKey().matcher(source.code()).find()) {
          violations.add(source.path() + " " + rule.getValue());
        }
      }
    }
    violations.sort(null);
    return violations;
  }

  /** package -> the seq4j packages its sources reference (the ABI value type edges left out). */
  static Map<String, Set<String>> dependencies(List<Source> sources) {
    Map<String, Set<String>> graph = new TreeMap<>();
    for (Source source : sources) {
      Set<String> targets = graph.computeIfAbsent(source.packageName(), p -> new TreeSet<>());
      Matcher m = REFERENCE.matcher(source.code());
      while (m.find()) {
        String target = ROOT + m.group(1);
        String type = target + "." + m.group(2);
        boolean exempt = source.packageName().equals(INTERNAL) && ABI_VALUE_TYPES.contains(type);
        if (!target.equals(source.packageName()) && !exempt) {
          targets.add(target);
        }
      }
    }
    return graph;
  }

  static List<String> abiValueTypesThatAreNotLeaves(List<Source> sources) {
    List<String> wrong = new ArrayList<>();
    for (Source source : sources) {
      String type = source.path().replace('/', '.').replaceAll("\\.java$", "");
      if (ABI_VALUE_TYPES.contains(type)) {
        Matcher m = REFERENCE.matcher(source.code());
        while (m.find()) {
          if (!(ROOT + m.group(1)).equals(source.packageName())) {
            wrong.add(type + " references " + m.group());
          }
        }
      }
    }
    return wrong;
  }

  /** Every cycle found by a depth-first search, each as "a -> b -> a". */
  static List<String> cycles(List<Source> sources) {
    Map<String, Set<String>> graph = dependencies(sources);
    List<String> found = new ArrayList<>();
    Set<String> done = new TreeSet<>();
    for (String start : graph.keySet()) {
      search(start, graph, new ArrayList<>(), done, found);
    }
    return found;
  }

  private static void search(String node, Map<String, Set<String>> graph, List<String> path,
      Set<String> done, List<String> found) {
    int seen = path.indexOf(node);
    if (seen >= 0) {
      List<String> cycle = new ArrayList<>(path.subList(seen, path.size()));
      cycle.add(node);
      found.add(String.join(" -> ", cycle));
      return;
    }
    if (done.contains(node)) {
      return;
    }
    path.add(node);
    for (String next : graph.getOrDefault(node, Set.of())) {
      search(next, graph, path, done, found);
    }
    path.remove(path.size() - 1);
    done.add(node);
  }

  // ---- reading the sources

  static List<Source> librarySources() {
    assertTrue(Files.isDirectory(SOURCES.resolve("org/seq4j")),
        "run from the java module's folder: " + SOURCES.toAbsolutePath());
    try (Stream<Path> files = Files.walk(SOURCES)) {
      return files.filter(f -> f.toString().endsWith(".java"))
          .filter(f -> !f.getFileName().toString().equals("module-info.java"))
          .sorted()
          .map(f -> Source.of(SOURCES.relativize(f).toString().replace('\\', '/'), read(f)))
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The text without comments, string and character literals (text blocks included). */
  static String strip(String text) {
    StringBuilder out = new StringBuilder(text.length());
    int i = 0;
    while (i < text.length()) {
      char c = text.charAt(i);
      if (text.startsWith("//", i)) {
        while (i < text.length() && text.charAt(i) != '\n') {
          i++;
        }
      } else if (text.startsWith("/*", i)) {
        int end = text.indexOf("*/", i + 2);
        i = end < 0 ? text.length() : end + 2;
        out.append(' ');
      } else if (text.startsWith("\"\"\"", i)) {
        int end = text.indexOf("\"\"\"", i + 3);
        i = end < 0 ? text.length() : end + 3;
        out.append("\"\"");
      } else if (c == '"' || c == '\'') {
        i++;
        while (i < text.length() && text.charAt(i) != c) {
          i += text.charAt(i) == '\\' ? 2 : 1;
        }
        i++;
        out.append(c).append(c);
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }
}
