package org.seq4j.fuzz;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import org.seq4j.Tensor;
import org.seq4j.internal.NativeBindings;

/**
 * The forked JVM of the fuzz: runs cases {@code first .. first+count-1} of a run seeded {@code
 * seed} and reports each on stdout, one line before it starts and one when it ends:
 *
 * <pre>
 * START &lt;index&gt; &lt;kind&gt;
 * CASE &lt;index&gt; &lt;kind&gt; PASS|&lt;failure class&gt; &lt;exception type&gt; &lt;where&gt; | &lt;detail&gt;
 * DONE &lt;cases&gt;
 * </pre>
 *
 * A START without its CASE is the case that killed the JVM. Arguments: {@code seed first count
 * [planted]}; {@code planted} adds a case, only reachable here, that does what the harness must
 * catch: {@code crash} writes through a wild native pointer (SIGSEGV, an hs_err file), {@code halt}
 * ends the JVM with {@code Runtime.halt(134)}, {@code wrong-exception} throws an undocumented
 * exception from a "library" call, {@code vague} a documented one whose message names nothing.
 */
public final class FuzzChild {
  private FuzzChild() {}

  /** Entry point of the forked JVM. */
  public static void main(String[] args) {
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out),
        true, StandardCharsets.UTF_8);
    long seed = Long.parseLong(args[0]);
    long first = Long.parseLong(args[1]);
    long count = Long.parseLong(args[2]);
    String planted = args.length > 3 ? args[3] : null;
    long done = 0;
    for (long i = first; i < first + count; i++) {
      long caseSeed = FuzzCases.caseSeed(seed, i);
      String kind = FuzzCases.generator(caseSeed).kind();
      out.println("START " + i + " " + kind);
      Fuzz.Outcome outcome = FuzzCases.run(caseSeed);
      out.println(line(i, outcome));
      done++;
      if (planted != null && i == first + count / 2) {
        long index = first + count;
        for (String which : planted.split(",")) {
          out.println("START " + index + " planted-" + which);
          out.println(line(index, planted(which)));
          index++;
          done++;
        }
      }
    }
    out.println("DONE " + done);
    out.flush();
    System.exit(0);
  }

  static String line(long index, Fuzz.Outcome o) {
    return "CASE " + index + " " + o.kind() + " " + (o.passed() ? "PASS" : o.failure().name())
        + " " + o.thrown() + " " + o.where().replace(' ', '_') + " | " + o.detail();
  }

  /** The planted cases of the self-check. */
  static Fuzz.Outcome planted(String which) {
    Fuzz f = new Fuzz("planted-" + which, 0);
    f.names("tensor");
    Throwable thrown = null;
    try {
      switch (which) {
        case "crash" -> {
          // a native write to address 8: the crash a missing check in the library would cause
          MemorySegment wild = MemorySegment.ofAddress(8).reinterpret(64);
          NativeBindings.fill(wild, 1f, 16);
        }
        case "halt" -> Runtime.getRuntime().halt(134);
        case "wrong-exception" -> {
          f.plantNow("tensor", "planted", IllegalArgumentException.class);
          Object shape = Tensor.class;
          throw new ClassCastException("planted: " + ((String) shape));
        }
        case "vague" -> {
          f.plantNow("tensor", "planted", IllegalArgumentException.class);
          throw new IllegalArgumentException("Something went wrong");
        }
        default -> throw new IllegalArgumentException("planted: unknown " + which);
      }
    } catch (Throwable t) {
      thrown = t;
    }
    return f.judge(thrown);
  }
}
