package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The README's claim that the language model takes at most 1.3 times the lines of its PyTorch
 * twin, counted the same way for both: lines of code, without blank lines, comments (Javadoc and
 * docstrings included), package and import lines.
 */
class ExampleLengthTest {
  static final Path JAVA = Path.of("src/main/java/org/seq4j/examples/CharLanguageModel.java");
  static final Path PYTHON = Path.of("src/main/python/char_lm.py");

  static int codeLines(List<String> lines, boolean python) {
    int count = 0;
    boolean inComment = false;
    for (String line : lines) {
      String s = line.strip();
      if (s.isEmpty()) {
        continue;
      }
      if (python) {
        if (inComment) {
          inComment = !s.contains("\"\"\"");
          continue;
        }
        if (s.startsWith("\"\"\"")) {
          inComment = s.indexOf("\"\"\"", 3) < 0;
          continue;
        }
        if (s.startsWith("#") || s.startsWith("import ") || s.startsWith("from ")) {
          continue;
        }
      } else {
        if (inComment) {
          inComment = !s.contains("*/");
          continue;
        }
        if (s.startsWith("/*")) {
          inComment = !s.contains("*/");
          continue;
        }
        if (s.startsWith("//") || s.startsWith("package ") || s.startsWith("import ")) {
          continue;
        }
      }
      count++;
    }
    return count;
  }

  @Test
  void theCounterSkipsCommentsBlankLinesAndImports() {
    assertEquals(2, codeLines(List.of("package a;", "import b;", "", "/**", " * x", " */",
        "class A {", "  // y", "}"), false));
    assertEquals(2, codeLines(List.of("\"\"\"doc", "more\"\"\"", "import x", "from y import z",
        "# c", "a = 1", "\"\"\"one line\"\"\"", "print(a)"), true));
  }

  @Test
  void theLanguageModelTakesAtMost13TimesThePyTorchLines() throws IOException {
    int java = codeLines(Files.readAllLines(JAVA), false);
    int python = codeLines(Files.readAllLines(PYTHON), true);
    assertTrue(python > 40, "the PyTorch twin is there: " + python + " lines");
    assertTrue(java <= 1.3 * python, "Java " + java + " lines against PyTorch " + python);
  }
}
