package org.seq4j;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * torch.matmul with its backward. Operands of rank 1 are promoted (a vector a to a row {@code (1,
 * k)}, a vector b to a column {@code (k, 1)}) and the added dimension removed from the result;
 * operands of rank 2 or more are stacks of matrices whose batch dimensions (all but the last
 * two) broadcast as in elementwise ops. Each batch matrix is one native GEMM over a slice of the
 * contiguous operands; a stack times a single matrix is folded into one GEMM of {@code (B·m, k)
 * · (k, n)}.
 *
 * <p>Backward: {@code dA = dC · Bᵀ} and {@code dB = Aᵀ · dC} per batch matrix, accumulated
 * (GEMMs with beta = 1) into the operand's matrix, which sums over the batch dimensions it was
 * broadcast along.
 */
final class MatmulOps {
  private MatmulOps() {}

  /** The shapes of one matmul, resolved. */
  private record Plan(
      long[] batch, // broadcast batch dimensions of the result
      long[] aBatch, // a's batch dimensions, right-aligned to batch (1 where absent)
      long[] bBatch,
      long m,
      long k,
      long n,
      long[] outDims) {
    long batchCount() {
      return ShapeOps.product(batch, 0, batch.length);
    }

    /** The flat index of a's (or b's) matrix for result matrix {@code index}. */
    static long operandIndex(long index, long[] batch, long[] operand) {
      long result = 0;
      long stride = 1;
      for (int i = batch.length - 1; i >= 0; i--) {
        long coordinate = index % batch[i];
        index /= batch[i];
        if (operand[i] != 1) {
          result += coordinate * stride;
        }
        stride *= operand[i];
      }
      return result;
    }
  }

  static Tensor matmul(Tensor a, Tensor b) {
    ShapeOps.usable(a, "tensor");
    ShapeOps.usable(b, "other");
    Arena arena = ShapeOps.arenaOf(a, "tensor");
    Plan plan = plan(a.shape().dims(), b.shape().dims());
    Tensor out = Tensor.zeros(arena, plan.outDims());
    forward(a, b, out, plan);
    Autograd.record("Tensor.matmul", List.of(a, b), List.of(out), List.of(a, b),
        (scratch, g) -> {
          if (g[0] == null) {
            return new Tensor[2];
          }
          Tensor gradA = a.requiresGrad() ? Tensor.zeros(scratch, a.shape().dims()) : null;
          Tensor gradB = b.requiresGrad() ? Tensor.zeros(scratch, b.shape().dims()) : null;
          backward(a, b, g[0], gradA, gradB, plan);
          return new Tensor[] {gradA, gradB};
        });
    return out;
  }

  private static Plan plan(long[] a, long[] b) {
    if (a.length == 0) {
      throw new IllegalArgumentException("tensor: expected a tensor of rank >= 1 for matmul, got"
          + " a scalar");
    }
    if (b.length == 0) {
      throw new IllegalArgumentException("other: expected a tensor of rank >= 1 for matmul, got"
          + " a scalar");
    }
    long m = a.length == 1 ? 1 : a[a.length - 2];
    long k = a[a.length - 1];
    long kb = b.length == 1 ? b[0] : b[b.length - 2];
    long n = b.length == 1 ? 1 : b[b.length - 1];
    if (kb != k) {
      throw new IllegalArgumentException("other: expected " + k + (b.length == 1 ? " elements"
          : " rows") + " to match the last dimension of tensor " + Shape.of(a)
          + ", got shape " + Shape.of(b));
    }
    long[] aBatchOwn = a.length <= 2 ? new long[0] : Arrays.copyOf(a, a.length - 2);
    long[] bBatchOwn = b.length <= 2 ? new long[0] : Arrays.copyOf(b, b.length - 2);
    int rank = Math.max(aBatchOwn.length, bBatchOwn.length);
    long[] batch = new long[rank];
    long[] aBatch = new long[rank];
    long[] bBatch = new long[rank];
    for (int i = 0; i < rank; i++) {
      int ia = i - (rank - aBatchOwn.length);
      int ib = i - (rank - bBatchOwn.length);
      aBatch[i] = ia < 0 ? 1 : aBatchOwn[ia];
      bBatch[i] = ib < 0 ? 1 : bBatchOwn[ib];
      if (aBatch[i] != bBatch[i] && aBatch[i] != 1 && bBatch[i] != 1) {
        throw new IllegalArgumentException("other: its batch dimensions "
            + Arrays.toString(bBatchOwn) + " (shape " + Shape.of(b) + ") do not broadcast with"
            + " those of tensor " + Arrays.toString(aBatchOwn) + " (shape " + Shape.of(a)
            + ")");
      }
      batch[i] = aBatch[i] == 1 ? bBatch[i] : aBatch[i];
    }
    long[] outDims = Arrays.copyOf(batch, rank + 2);
    int r = rank;
    if (a.length != 1) {
      outDims[r++] = m;
    }
    if (b.length != 1) {
      outDims[r++] = n;
    }
    return new Plan(batch, aBatch, bBatch, m, k, n, Arrays.copyOf(outDims, r));
  }

  /** Whether b is one matrix applied to a stack a that needs no broadcasting: one GEMM. */
  private static boolean foldable(Plan plan) {
    for (int i = 0; i < plan.batch().length; i++) {
      if (plan.bBatch()[i] != 1 || plan.aBatch()[i] != plan.batch()[i]) {
        return false;
      }
    }
    return true;
  }

  private static Tensor matrix(Tensor t, long index, long rows, long columns) {
    long bytes = rows * columns * Float.BYTES;
    MemorySegment slice = t.segment().asSlice(index * bytes, bytes);
    return Tensor.ofSegment(slice, rows, columns);
  }

  private static void forward(Tensor a, Tensor b, Tensor out, Plan plan) {
    long m = plan.m();
    long k = plan.k();
    long n = plan.n();
    if (foldable(plan)) {
      long rows = plan.batchCount() * m;
      TensorOps.matmul(matrix(a, 0, rows, k), matrix(b, 0, k, n), matrix(out, 0, rows, n));
      return;
    }
    for (long i = 0; i < plan.batchCount(); i++) {
      long ia = Plan.operandIndex(i, plan.batch(), plan.aBatch());
      long ib = Plan.operandIndex(i, plan.batch(), plan.bBatch());
      TensorOps.matmul(matrix(a, ia, m, k), matrix(b, ib, k, n), matrix(out, i, m, n));
    }
  }

  /** dA += dC · Bᵀ and dB += Aᵀ · dC per batch matrix (either gradient may be null). */
  private static void backward(Tensor a, Tensor b, Tensor gradOut, Tensor gradA, Tensor gradB,
      Plan plan) {
    long m = plan.m();
    long k = plan.k();
    long n = plan.n();
    MatmulOptions abT = MatmulOptions.DEFAULT.transposeB(true).accumulate();
    MatmulOptions aTb = MatmulOptions.DEFAULT.transposeA(true).accumulate();
    if (foldable(plan)) {
      long rows = plan.batchCount() * m;
      if (gradA != null) {
        TensorOps.matmul(matrix(gradOut, 0, rows, n), matrix(b, 0, k, n),
            matrix(gradA, 0, rows, k), abT);
      }
      if (gradB != null) {
        TensorOps.matmul(matrix(a, 0, rows, k), matrix(gradOut, 0, rows, n),
            matrix(gradB, 0, k, n), aTb);
      }
      return;
    }
    for (long i = 0; i < plan.batchCount(); i++) {
      long ia = Plan.operandIndex(i, plan.batch(), plan.aBatch());
      long ib = Plan.operandIndex(i, plan.batch(), plan.bBatch());
      Tensor dC = matrix(gradOut, i, m, n);
      if (gradA != null) {
        TensorOps.matmul(dC, matrix(b, ib, k, n), matrix(gradA, ia, m, k), abT);
      }
      if (gradB != null) {
        TensorOps.matmul(matrix(a, ia, m, k), dC, matrix(gradB, ib, k, n), aTb);
      }
    }
  }
}
