package org.seq4j.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Uninitialised off-heap memory owned by an arena: {@link Arena#allocate} zeroes every byte, which
 * for large buffers that native code overwrites at once (outputs, oneDNN workspaces) costs a full
 * extra pass over memory. The block is released when the arena closes.
 *
 * <p>The memory comes from libseq4j's {@code seq4j_alloc} (64-byte aligned), i.e. from the
 * allocator libseq4j links: in a sanitized build ({@code mvn -Psanitize verify}) AddressSanitizer's,
 * which then knows each block's exact size and reports a native access past its end or after its
 * release. (A lookup of {@code aligned_alloc} in the linker's default lookup would bypass it.)
 *
 * <p>Large released blocks are kept in a small bounded cache and handed to the next allocation of
 * a similar size: a training loop allocates the same workspaces every step, and fresh pages from
 * the operating system cost a page fault each (about 5% of an LSTM step at DESIGN.md's shape M).
 * {@link #releaseCached()} frees the cache. For AddressSanitizer, a cacheable block is marked
 * usable up to the size asked for ({@code seq4j_mark_usable}; the rest of its capacity poisoned)
 * and wholly poisoned while it sits in the cache, so that the sanitizer sees the same overflows and
 * uses after release as for any other block (a no-op in ordinary builds).
 */
public final class NativeMemory {
  private static final long ALIGNMENT = 64;
  /** Blocks below this size are not cached: malloc reuses small blocks well by itself. */
  private static final long CACHE_MIN_BYTES = 1L << 20;
  /** At most this many bytes stay cached. */
  private static final long CACHE_MAX_BYTES = 1L << 30;

  /** A cached block: its address and capacity. */
  private record Block(long address, long capacity) {}

  private static final java.util.ArrayDeque<Block> CACHE = new java.util.ArrayDeque<>();
  private static long cachedBytes;

  private NativeMemory() {}

  /**
   * {@code bytes} of uninitialised memory aligned to 64 bytes, freed when {@code arena} closes.
   *
   * @throws IllegalStateException if the arena is closed
   * @throws WrongThreadException if the arena is confined to another thread
   * @throws IllegalArgumentException if {@code bytes} is negative or too large to round up
   * @throws OutOfMemoryError if the system has no memory left
   */
  public static MemorySegment allocate(Arena arena, long bytes) {
    if (arena == null) {
      throw new NullPointerException("arena");
    }
    if (!arena.scope().isAlive()) {
      throw new IllegalStateException("arena: it is closed");
    }
    if (bytes < 0) {
      throw new IllegalArgumentException("bytes: expected >= 0, got " + bytes);
    }
    // A block that may be cached is rounded up to the alignment (its capacity is what a later
    // allocation may reuse); any other has exactly the size asked for (at least 1 byte), so that
    // a sanitizer sees that size. Checked: rounding a size near Long.MAX_VALUE up must not wrap
    // into a tiny block behind a huge segment.
    if (bytes > Long.MAX_VALUE - ALIGNMENT) {
      throw new IllegalArgumentException("bytes: " + bytes + " is too large: rounding it up to "
          + ALIGNMENT + " bytes overflows a long");
    }
    boolean cacheable = bytes >= CACHE_MIN_BYTES;
    long size = cacheable ? (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT : Math.max(1, bytes);
    Block block = cacheable ? takeCached(size) : null;
    if (block == null) {
      MemorySegment raw = NativeBindings.alloc(size);
      if (raw.equals(MemorySegment.NULL)) {
        releaseCached();
        raw = NativeBindings.alloc(size);
        if (raw.equals(MemorySegment.NULL)) {
          throw new OutOfMemoryError("seq4j: cannot allocate " + bytes + " bytes of native memory");
        }
      }
      block = new Block(raw.address(), size);
    }
    if (cacheable) {
      NativeBindings.markUsable(MemorySegment.ofAddress(block.address()), bytes, block.capacity());
    }
    Block owned = block;
    try {
      return MemorySegment.ofAddress(owned.address())
          .reinterpret(bytes, arena, ignored -> release(owned));
    } catch (WrongThreadException wrongThread) {
      release(owned);
      throw new WrongThreadException("arena: it is confined to another thread than '"
          + Thread.currentThread().getName() + "'");
    } catch (IllegalStateException closed) {
      release(owned);
      throw new IllegalStateException("arena: it is closed", closed);
    } catch (RuntimeException e) {
      release(owned);
      throw e;
    }
  }

  /** A cached block of at least {@code bytes} and at most twice that, or null. */
  private static synchronized Block takeCached(long bytes) {
    Block best = null;
    for (Block block : CACHE) {
      if (block.capacity() >= bytes && block.capacity() <= 2 * bytes
          && (best == null || block.capacity() < best.capacity())) {
        best = block;
      }
    }
    if (best != null) {
      CACHE.remove(best);
      cachedBytes -= best.capacity();
    }
    return best;
  }

  private static void release(Block block) {
    if (block.capacity() >= CACHE_MIN_BYTES) {
      synchronized (NativeMemory.class) {
        if (block.capacity() <= CACHE_MAX_BYTES) {
          NativeBindings.markUsable(MemorySegment.ofAddress(block.address()), 0, block.capacity());
          CACHE.addFirst(block);
          cachedBytes += block.capacity();
          while (cachedBytes > CACHE_MAX_BYTES) {
            Block oldest = CACHE.removeLast();
            cachedBytes -= oldest.capacity();
            free(MemorySegment.ofAddress(oldest.address()));
          }
          return;
        }
      }
    }
    free(MemorySegment.ofAddress(block.address()));
  }

  /** Frees every cached block (memory of open arenas is not affected). */
  public static void releaseCached() {
    java.util.List<Block> blocks;
    synchronized (NativeMemory.class) {
      blocks = java.util.List.copyOf(CACHE);
      CACHE.clear();
      cachedBytes = 0;
    }
    for (Block block : blocks) {
      free(MemorySegment.ofAddress(block.address()));
    }
  }

  /** Bytes held by the cache now. */
  public static synchronized long cachedBytes() {
    return cachedBytes;
  }

  private static void free(MemorySegment block) {
    NativeBindings.free(block);
  }
}
