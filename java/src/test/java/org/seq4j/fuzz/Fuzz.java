package org.seq4j.fuzz;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Pattern;
import org.seq4j.Seq4jException;
import org.seq4j.Tensor;

/**
 * One fuzz case in progress: the random source, the names of the arguments of the call under test,
 * and at most one deliberate defect (a null, a closed or foreign arena, a read-only output, a wrong
 * shape or value) with the exception type it must produce. {@link #judge} turns how the case ended
 * into an {@link Outcome}: passed, or a failure of one class.
 *
 * <p>The contract checked: a case without defect returns results equal to the float64 reference
 * (the case itself asserts them and throws {@link AssertionError} otherwise) and throws nothing; a
 * case with a defect throws one of the documented types, the one its defect calls for, with a
 * message that names one of the call's arguments (the defective one, where the defect is a null,
 * closed, foreign or read-only tensor).
 */
public final class Fuzz {
  /** The exception types the public API documents (README, "Errors"). */
  public static final List<Class<? extends Throwable>> DOCUMENTED = List.of(
      IllegalArgumentException.class, IllegalStateException.class, NullPointerException.class,
      WrongThreadException.class, IndexOutOfBoundsException.class, IOException.class,
      Seq4jException.class);

  /** A failure class of the fuzz. */
  public enum Failure {
    /** The case's float results differ from the reference (an AssertionError of the case). */
    WRONG_NUMBERS,
    /** A defective call returned normally. */
    DEFECT_ACCEPTED,
    /** A valid call threw. */
    VALID_REJECTED,
    /** An exception outside {@link #DOCUMENTED}, or not the type the defect calls for. */
    WRONG_EXCEPTION_TYPE,
    /** A documented exception whose message names none of the call's arguments. */
    MESSAGE_NAMES_NO_ARGUMENT
  }

  /** How one case ended: a failure class (null when it passed) and a one-line detail. */
  public record Outcome(String kind, Failure failure, String thrown, String where,
      String detail) {
    /** Whether the case passed. */
    public boolean passed() {
      return failure == null;
    }

    /** What makes two failures the same: call, class, exception type and where it was thrown. */
    public String distinctKey() {
      return kind + " " + failure + " " + thrown + " " + where;
    }
  }

  final Random random;
  final String kind;
  private final Set<String> names = new LinkedHashSet<>();
  private String defect;
  private String defectArgument;
  private List<Class<? extends Throwable>> expected;
  private final List<Arena> arenas = new ArrayList<>();

  Fuzz(String kind, long seed) {
    this.kind = kind;
    this.random = new Random(seed);
  }

  /** Declares the argument names of the call under test (any of them may be named). */
  Fuzz names(String... argumentNames) {
    names.addAll(List.of(argumentNames));
    return this;
  }

  /** The defect planted so far, or null. */
  String defect() {
    return defect;
  }

  /** Whether the case is still valid (no defect planted). */
  boolean valid() {
    return defect == null;
  }

  /**
   * With probability p, and only while no defect is planted, plants one: {@code description}
   * (which begins with the argument it concerns) and the exception type it must raise. Returns
   * whether it did.
   */
  @SafeVarargs
  final boolean plant(double p, String argument, String description,
      Class<? extends Throwable>... types) {
    if (defect != null || random.nextDouble() >= p) {
      return false;
    }
    defect = argument + ": " + description;
    defectArgument = argument;
    expected = List.of(types);
    return true;
  }

  /** Plants a defect unconditionally (when none is planted yet); for generators that decide. */
  void plantNow(String argument, String description, Class<? extends Throwable> type) {
    if (defect == null) {
      defect = argument + ": " + description;
      defectArgument = argument;
      expected = List.of(type);
    }
  }

  /** A fresh confined arena, closed when the case ends. */
  Arena arena() {
    Arena arena = Arena.ofConfined();
    arenas.add(arena);
    return arena;
  }

  /**
   * An input tensor of {@code dims} in {@code arena}, standard normal; with small probabilities
   * (and only as this case's one defect) null, of a closed arena, or of another thread's confined
   * arena.
   */
  Tensor input(Arena arena, String name, long... dims) {
    Tensor t = Tensor.randomNormal(arena, random.nextLong(), dims);
    return hostile(t, name, false);
  }

  /** Like {@link #input}, but never null (where null means "none", a valid choice). */
  Tensor inputNotNull(Arena arena, String name, long... dims) {
    Tensor t = Tensor.randomNormal(arena, random.nextLong(), dims);
    return random.nextDouble() < 0.02 ? t : hostile(t, name, false, false);
  }

  /** Like {@link #output}, but never null (where null means "none", a valid choice). */
  Tensor outputNotNull(Arena arena, String name, long... dims) {
    Tensor t = Tensor.randomNormal(arena, random.nextLong(), dims);
    return hostile(t, name, true, false);
  }

  /** An output tensor: like {@link #input}, and also possibly read-only. */
  Tensor output(Arena arena, String name, long... dims) {
    Tensor t = Tensor.randomNormal(arena, random.nextLong(), dims);
    return hostile(t, name, true);
  }

  /** Applies at most one lifecycle defect to t. */
  Tensor hostile(Tensor t, String name, boolean written) {
    return hostile(t, name, written, true);
  }

  Tensor hostile(Tensor t, String name, boolean written, boolean nullable) {
    double r = random.nextDouble();
    if (!nullable && r < 0.02) {
      return t;
    }
    if (r < 0.02 && plant(1, name, "null", NullPointerException.class,
        IllegalArgumentException.class)) {
      return null;
    }
    if (r >= 0.02 && r < 0.04 && plant(1, name, "its arena is closed", IllegalStateException.class)) {
      return closedTensor(t.shape().dims());
    }
    if (r >= 0.04 && r < 0.06
        && plant(1, name, "another thread's confined arena", WrongThreadException.class)) {
      return foreignTensor(t.shape().dims());
    }
    if (written && r >= 0.06 && r < 0.08
        && plant(1, name, "read-only output", IllegalArgumentException.class)) {
      return Tensor.ofSegment(t.segment().asReadOnly(), t.shape().dims());
    }
    return t;
  }

  /** dims, or (as this case's defect, with probability p) dims with axis changed. */
  long[] shape(double p, String name, long[] dims, int... linkedAxes) {
    if (linkedAxes.length == 0 || defect != null || random.nextDouble() >= p) {
      return dims;
    }
    long[] wrong = dims.clone();
    int choice = random.nextInt(linkedAxes.length + 1);
    if (choice == linkedAxes.length) { // a rank mismatch
      // appended: one more than the last size, so that "(..., C)" shapes break too; dropped: the
      // last, unless the one before it has the same size (then "(..., C)" would still fit) or is
      // 1 (then a broadcasting argument, an attention mask (1, 1, 1, Tk) say, would still fit)
      long[] longer = java.util.Arrays.copyOf(dims, dims.length + 1);
      longer[dims.length] = dims.length == 0 ? 2 : dims[dims.length - 1] + 1;
      if (random.nextBoolean() && dims.length > 1
          && dims[dims.length - 2] != dims[dims.length - 1] && dims[dims.length - 2] != 1) {
        plantNow(name, "rank " + (dims.length - 1) + " instead of " + dims.length,
            IllegalArgumentException.class);
        return java.util.Arrays.copyOf(dims, dims.length - 1);
      }
      plantNow(name, "rank " + longer.length + " instead of " + dims.length,
          IllegalArgumentException.class);
      return longer;
    }
    int axis = linkedAxes[choice];
    wrong[axis] = wrong[axis] + 1 + random.nextInt(2);
    plantNow(name, "axis " + axis + " is " + wrong[axis] + " instead of " + dims[axis],
        IllegalArgumentException.class);
    return wrong;
  }

  private static ExecutorService foreign;

  /** A tensor of an arena confined to another (live) thread; that arena is never closed. */
  static Tensor foreignTensor(long... dims) {
    synchronized (Fuzz.class) {
      if (foreign == null) {
        foreign = Executors.newSingleThreadExecutor(r -> {
          Thread t = new Thread(r, "fuzz-foreign-owner");
          t.setDaemon(true);
          return t;
        });
      }
    }
    try {
      return foreign.submit(() -> Tensor.zeros(Arena.ofConfined(), dims)).get();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** An arena confined to another (live) thread, never closed. */
  static Arena foreignArena() {
    foreignTensor(1);
    try {
      return foreign.submit(Arena::ofConfined).get();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  /** A tensor whose arena has been closed. */
  static Tensor closedTensor(long... dims) {
    Arena arena = Arena.ofConfined();
    Tensor t = Tensor.zeros(arena, dims);
    arena.close();
    return t;
  }

  void close() {
    for (Arena arena : arenas) {
      try {
        arena.close();
      } catch (RuntimeException ignored) {
        // closed by the case itself
      }
    }
  }

  /** Judges how the case ended: {@code thrown} is null when the call returned normally. */
  Outcome judge(Throwable thrown) {
    if (thrown == null) {
      return defect == null ? new Outcome(kind, null, "-", "-", "ok")
          : new Outcome(kind, Failure.DEFECT_ACCEPTED, "-", defect.replaceAll("[0-9]+", "#"),
              defect);
    }
    String type = thrown.getClass().getName();
    String message = String.valueOf(thrown.getMessage());
    String at = where(thrown);
    String detail = (defect == null ? "valid" : defect) + " -> " + type + ": " + oneLine(message)
        + " @ " + at;
    if (defect != null && thrownByTheFuzz(thrown)) {
      // the call returned and the case's own checks then stumbled over the defect
      return new Outcome(kind, Failure.DEFECT_ACCEPTED, "-", defect.replaceAll("[0-9]+", "#"),
          defect + " (then " + type + ": " + oneLine(message) + ")");
    }
    if (thrown instanceof AssertionError) {
      return new Outcome(kind, Failure.WRONG_NUMBERS, type, oneLine(message).replaceAll("[\\[:].*", ""), detail);
    }
    boolean documented = DOCUMENTED.stream().anyMatch(c -> c.isInstance(thrown));
    if (!documented) {
      return new Outcome(kind, Failure.WRONG_EXCEPTION_TYPE, type, at, detail);
    }
    if (defect == null) {
      return new Outcome(kind, Failure.VALID_REJECTED, type, at, detail);
    }
    if (expected.stream().noneMatch(c -> c.isInstance(thrown))) {
      return new Outcome(kind, Failure.WRONG_EXCEPTION_TYPE, type, at,
          "expected " + expected + ": " + detail);
    }
    // a null, closed, foreign or read-only tensor: the message must name that very argument
    boolean specific = defect.endsWith(": null") || defect.endsWith("its arena is closed")
        || defect.endsWith("another thread's confined arena") || defect.endsWith("read-only output")
        || !expected.contains(IllegalArgumentException.class);
    Set<String> wanted = specific ? Set.of(defectArgument) : names;
    // a JDK message ("Cannot invoke ... because "x" is null") is not the library's own
    if (!namesAny(message, wanted) || message.contains("because \"")) {
      return new Outcome(kind, Failure.MESSAGE_NAMES_NO_ARGUMENT, type, at,
          "expected one of " + wanted + ": " + detail);
    }
    return new Outcome(kind, null, type, at, "ok");
  }

  /** Whether message contains one of names as a word. */
  static boolean namesAny(String message, Set<String> names) {
    for (String name : names) {
      if (Pattern.compile("(^|[^A-Za-z0-9_])" + Pattern.quote(name) + "($|[^A-Za-z0-9_])")
          .matcher(message).find()) {
        return true;
      }
    }
    return false;
  }

  /** Whether t comes from the fuzz's own code or the references, not from the library. */
  static boolean thrownByTheFuzz(Throwable t) {
    StackTraceElement[] trace = t.getStackTrace();
    for (StackTraceElement e : trace) {
      String c = e.getClassName();
      if (c.equals(FuzzChild.class.getName())) {
        return false; // the planted cases of the self-check stand in for library calls
      }
      if (c.startsWith("org.seq4j.fuzz.") || c.startsWith("org.seq4j.reference.")) {
        return true;
      }
      if (c.startsWith("org.seq4j.")) {
        return false;
      }
    }
    return false;
  }

  static String oneLine(String s) {
    String line = s.replace('\n', ' ').replace('\r', ' ');
    return line.length() > 300 ? line.substring(0, 300) + "…" : line;
  }

  /** The first stack frame inside org.seq4j but outside the fuzz: where it was thrown. */
  static String where(Throwable t) {
    for (StackTraceElement e : t.getStackTrace()) {
      if (e.getClassName().startsWith("org.seq4j.") && !e.getClassName().startsWith("org.seq4j.fuzz")
          && !e.getClassName().startsWith("org.seq4j.reference")) {
        return e.getClassName().substring("org.seq4j.".length()) + "." + e.getMethodName() + ":"
            + e.getLineNumber();
      }
    }
    StackTraceElement[] trace = t.getStackTrace();
    return trace.length == 0 ? "?" : trace[0].toString();
  }
}
