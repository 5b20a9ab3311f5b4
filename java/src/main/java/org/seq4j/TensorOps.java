package org.seq4j;

import java.lang.foreign.Arena;
import org.seq4j.internal.Checks;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.NativeBindings;

/**
 * Basic tensor arithmetic in native code: the matrix product on oneDNN or OpenBLAS, and
 * elementwise add, scale and axpy. Every method checks shapes, liveness, aliasing and that its
 * output is writable (not a read-only tensor) before the native call and names the offending
 * argument. An empty product ({@code k = 0}) is well defined on every backend: {@code out = beta
 * * out}, zeros for the default {@code beta = 0}; an empty {@code out} ({@code m = 0} or {@code n
 * = 0}) is left alone.
 */
public final class TensorOps {
  private TensorOps() {}

  /** {@code out = a · b} for matrices {@code a (m, k)}, {@code b (k, n)}, {@code out (m, n)}. */
  public static void matmul(Tensor a, Tensor b, Tensor out) {
    matmul(a, b, out, MatmulOptions.DEFAULT);
  }

  /** A new {@code (m, n)} tensor in {@code arena} holding {@code a (m, k) · b (k, n)}. */
  public static Tensor matmul(Arena arena, Tensor a, Tensor b) {
    requireMatrix(a, "a");
    requireMatrix(b, "b");
    Tensor out = Tensor.zeros(arena, a.dim(0), b.dim(1));
    matmul(a, b, out, MatmulOptions.DEFAULT);
    return out;
  }

  /**
   * {@code out = alpha * op(a) · op(b) + beta * out}: {@code op(a)} is {@code (m, k)} ({@code a}
   * is stored {@code (k, m)} when transposed), {@code op(b)} is {@code (k, n)}, {@code out} is
   * {@code (m, n)} and shares no memory with {@code a} or {@code b}.
   */
  public static void matmul(Tensor a, Tensor b, Tensor out, MatmulOptions options) {
    requireMatrix(a, "a");
    requireMatrix(b, "b");
    requireMatrix(out, "out");
    Checks.usable(a.segment(), "a");
    Checks.usable(b.segment(), "b");
    Checks.writable(out.segment(), "out");
    if (options == null) {
      throw new NullPointerException("options");
    }
    long m = options.transposeA() ? a.dim(1) : a.dim(0);
    long k = options.transposeA() ? a.dim(0) : a.dim(1);
    long kb = options.transposeB() ? b.dim(1) : b.dim(0);
    long n = options.transposeB() ? b.dim(0) : b.dim(1);
    if (kb != k) {
      throw new IllegalArgumentException(
          "b: expected " + k + (options.transposeB() ? " columns" : " rows") + " to match "
              + (options.transposeA() ? "the rows of a (transposed) " : "the columns of a ")
              + a.shape() + ", got shape " + b.shape());
    }
    if (out.dim(0) != m || out.dim(1) != n) {
      throw new IllegalArgumentException(
          "out: expected shape (" + m + ", " + n + "), got " + out.shape());
    }
    Checks.disjoint(out.segment(), "out", a.segment(), "a");
    Checks.disjoint(out.segment(), "out", b.segment(), "b");
    NativeBindings.matmul(out.segment(), a.segment(), b.segment(), m, n, k,
        options.transposeA(), options.transposeB(), options.alpha(), options.beta(),
        AbiConstants.backend(options.backend()));
    out.markChanged();
  }

  /** {@code out = a + b} elementwise; all three have one shape. {@code out} may be a or b. */
  public static void add(Tensor a, Tensor b, Tensor out) {
    requireSameShape(a, "a", b, "b");
    requireSameShape(a, "a", out, "out");
    Checks.usable(a.segment(), "a");
    Checks.usable(b.segment(), "b");
    Checks.writable(out.segment(), "out");
    requireIdenticalOrDisjoint(out, a, "a");
    requireIdenticalOrDisjoint(out, b, "b");
    NativeBindings.add(out.segment(), a.segment(), b.segment(), a.size());
    out.markChanged();
  }

  /** {@code out = alpha * x} elementwise; same shape. {@code out} may be x. */
  public static void scale(Tensor x, float alpha, Tensor out) {
    requireSameShape(x, "x", out, "out");
    Checks.usable(x.segment(), "x");
    Checks.writable(out.segment(), "out");
    requireIdenticalOrDisjoint(out, x, "x");
    NativeBindings.scale(out.segment(), x.segment(), alpha, x.size());
    out.markChanged();
  }

  /** {@code y += alpha * x} elementwise; same shape; {@code x} and {@code y} share no memory. */
  public static void axpy(float alpha, Tensor x, Tensor y) {
    requireSameShape(x, "x", y, "y");
    Checks.usable(x.segment(), "x");
    Checks.writable(y.segment(), "y");
    Checks.disjoint(y.segment(), "y", x.segment(), "x");
    NativeBindings.axpy(y.segment(), alpha, x.segment(), x.size());
    y.markChanged();
  }

  private static void requireMatrix(Tensor t, String name) {
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (t.shape().rank() != 2) {
      throw new IllegalArgumentException(
          name + ": expected a matrix (rank 2), got shape " + t.shape());
    }
  }

  private static void requireSameShape(Tensor reference, String referenceName, Tensor t,
      String name) {
    if (reference == null) {
      throw new NullPointerException(referenceName);
    }
    if (t == null) {
      throw new NullPointerException(name);
    }
    if (!t.shape().equals(reference.shape())) {
      throw new IllegalArgumentException(
          name + ": expected shape " + reference.shape() + " (the shape of " + referenceName
              + "), got " + t.shape());
    }
  }

  /** Elementwise ops may write in place, but not into a shifted view of their input. */
  private static void requireIdenticalOrDisjoint(Tensor out, Tensor input, String name) {
    boolean identical =
        out.segment().address() == input.segment().address()
            && out.segment().byteSize() == input.segment().byteSize();
    if (!identical) {
      Checks.disjoint(out.segment(), "out", input.segment(), name);
    }
  }
}
