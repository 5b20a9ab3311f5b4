package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.seq4j.Shape;
import org.seq4j.Tensor;

/**
 * Per-thread buffers of the recurrent layers' allocation-free path ({@code forward} into tensors
 * the caller allocated): GC-managed, grown as needed, reused by every call of the thread.
 */
final class RecurrentScratch {
  private static final ThreadLocal<RecurrentScratch> CURRENT =
      ThreadLocal.withInitial(RecurrentScratch::new);

  private final MemorySegment[] buffers = new MemorySegment[4];

  private RecurrentScratch() {}

  /** The calling thread's buffers. */
  static RecurrentScratch current() {
    return CURRENT.get();
  }

  /** A tensor of these dimensions over buffer {@code slot} (0 to 3). */
  Tensor tensor(int slot, long... dims) {
    Shape shape = Shape.of(dims);
    long bytes = org.seq4j.internal.Checks.multiply(shape.size(), Float.BYTES, "shape", shape);
    if (buffers[slot] == null || buffers[slot].byteSize() < bytes) {
      buffers[slot] = Arena.ofAuto().allocate(Math.max(bytes, 64), 64);
    }
    return Tensor.ofSegment(buffers[slot].asSlice(0, bytes), dims);
  }
}
