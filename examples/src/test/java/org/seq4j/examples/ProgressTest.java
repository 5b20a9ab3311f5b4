package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Progress: plain lines when not on a terminal, a line redrawn in place on one. */
class ProgressTest {
  private static String run(boolean terminal) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    Progress progress = new Progress("lstm", 3, "windows", out, terminal);
    for (int epoch = 1; epoch <= 3; epoch++) {
      progress.update(epoch, 1.0 / epoch, 100L * epoch);
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void plainLinesWhenNotATerminal() {
    String text = run(false).replace(System.lineSeparator(), "\n");
    assertFalse(text.contains("\r"), "no carriage return: " + text);
    assertFalse(text.contains("\u001b"), "no escape codes: " + text);
    String[] lines = text.split("\n", -1);
    assertEquals(4, lines.length, "one line per update: " + text);
    assertEquals("", lines[3]);
    for (int i = 0; i < 3; i++) {
      assertTrue(lines[i].matches("  lstm +epoch +" + (i + 1) + "/3  loss \\d[.,]\\d{4}  .* windows/s"),
          lines[i]);
    }
  }

  @Test
  void redrawnInPlaceOnATerminal() {
    String text = run(true);
    assertEquals(3, text.chars().filter(c -> c == '\r').count(), text);
    assertTrue(text.startsWith("\r"), text);
    assertTrue(text.endsWith(System.lineSeparator()), "a newline after the last epoch");
    assertEquals(1, text.split(System.lineSeparator()).length, text);
    assertTrue(text.contains("[########################]"), text);
  }

  @Test
  void standardOutputUnderTheTestRunnerIsNotATerminal() {
    // Surefire forks the JVM with its standard streams piped.
    assertFalse(Progress.isTerminal());
  }
}
