package org.seq4j.nn;

import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.seq4j.Tensor;
import org.seq4j.train.Adam;
import org.seq4j.train.Sgd;

/**
 * Issue 12's life-cycle classes: contexts and caches are refused by any layer but the one that made
 * them; a constructor that fails leaves no native memory behind; close() under concurrent calls
 * waits for the calls in flight, then every later call gets IllegalStateException.
 */
class LifecycleTest {
  private static final ScaledDotProductAttention.Options NO_MASK =
      ScaledDotProductAttention.Options.DEFAULT;

  // ---- contexts and caches belong to their layer

  @Test
  void aContextOrCacheOfAnotherLayerOfTheSameShapeIsRefused() {
    try (MultiHeadAttention a = new MultiHeadAttention(8, 2);
        MultiHeadAttention b = new MultiHeadAttention(8, 2);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 1, 3, 2, 8);
      MultiHeadAttention.Context context = a.forward(arena, x, x, x, NO_MASK, Mode.TRAINING)
          .context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith(
          "context: it was made by another MultiHeadAttention"), e.getMessage());
      a.backward(arena, context, Tensor.ones(arena, 3, 2, 8)); // its own layer takes it
      MultiHeadAttention.Cache cache = a.newCache(arena, 2, 4);
      e = assertThrows(IllegalArgumentException.class,
          () -> b.forwardStep(arena, Tensor.randomNormal(arena, 2, 1, 2, 8), cache));
      assertTrue(e.getMessage().startsWith("cache: it was made by another MultiHeadAttention"),
          e.getMessage());
      assertEquals(0, cache.length(), "a refused step leaves the cache as it was");
    }
    try (LayerNorm a = new LayerNorm(4); LayerNorm b = new LayerNorm(4);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 3, 2, 4);
      LayerNorm.Context context = a.forward(arena, x).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 2, 4)));
      assertTrue(e.getMessage().startsWith("context: it was made by another LayerNorm"));
    }
    try (TransformerEncoderLayer a = encoderLayer(); TransformerEncoderLayer b = encoderLayer();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 4, 3, 2, 8);
      var context = a.forward(arena, x, NO_MASK, Mode.TRAINING).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith(
          "context: it was made by another TransformerEncoderLayer"), e.getMessage());
    }
    try (TransformerDecoderLayer a = decoderLayer(); TransformerDecoderLayer b = decoderLayer();
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 5, 3, 2, 8);
      var context = a.forward(arena, x, x, NO_MASK, NO_MASK, Mode.TRAINING).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith(
          "context: it was made by another TransformerDecoderLayer"), e.getMessage());
      MultiHeadAttention.Cache cache = a.newCache(arena, 2, 4);
      e = assertThrows(IllegalArgumentException.class, () -> b.forwardStep(arena,
          Tensor.randomNormal(arena, 6, 1, 2, 8), x, NO_MASK, cache));
      assertTrue(e.getMessage().startsWith("cache: it was made by another MultiHeadAttention"),
          e.getMessage());
    }
    try (TransformerEncoder a = new TransformerEncoder(2, i -> encoderLayer(), null);
        TransformerEncoder b = new TransformerEncoder(1, i -> encoderLayer(), null);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 7, 3, 2, 8);
      var context = a.forward(arena, x, NO_MASK, Mode.TRAINING).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith("context: it was made by another TransformerEncoder"),
          e.getMessage());
    }
    try (TransformerDecoder a = new TransformerDecoder(2, i -> decoderLayer(), null);
        TransformerDecoder b = new TransformerDecoder(1, i -> decoderLayer(), null);
        Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 8, 3, 2, 8);
      var context = a.forward(arena, x, x, NO_MASK, NO_MASK, Mode.TRAINING).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith("context: it was made by another TransformerDecoder"),
          e.getMessage());
      TransformerDecoder.Cache cache = a.newCache(arena, 2, 4);
      e = assertThrows(IllegalArgumentException.class, () -> b.forwardStep(arena,
          Tensor.randomNormal(arena, 9, 1, 2, 8), x, NO_MASK, cache));
      assertTrue(e.getMessage().startsWith("cache: it was made by another TransformerDecoder"),
          e.getMessage());
    }
    try (Lstm a = Lstm.builder(3, 4).build(); Lstm b = Lstm.builder(3, 4).build();
        Arena arena = Arena.ofConfined()) {
      var context = a.forward(arena, Tensor.randomNormal(arena, 10, 2, 1, 3), null, null,
          Mode.TRAINING).context();
      var e = assertThrows(IllegalArgumentException.class,
          () -> b.backward(arena, context, Tensor.ones(arena, 2, 1, 4), null));
      assertTrue(e.getMessage().startsWith("context: it belongs to another layer"));
    }
  }

  @Test
  void contextsAndCachesOfClosedArenasOrLayersAreRefused() {
    MultiHeadAttention attention = new MultiHeadAttention(8, 2);
    MultiHeadAttention.Context stale;
    MultiHeadAttention.Cache staleCache;
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 11, 3, 2, 8);
      stale = attention.forward(arena, x, x, x, NO_MASK, Mode.TRAINING).context();
      staleCache = attention.newCache(arena, 2, 4);
    }
    try (Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalStateException.class,
          () -> attention.backward(arena, stale, Tensor.ones(arena, 3, 2, 8)));
      assertTrue(e.getMessage().startsWith("context: the arena of its forward pass is closed"),
          e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> attention.forwardStep(arena,
          Tensor.randomNormal(arena, 12, 1, 2, 8), staleCache));
      assertEquals("cache: the arena it was made in is closed", e.getMessage());
      Tensor x = Tensor.randomNormal(arena, 13, 3, 2, 8);
      MultiHeadAttention.Context live = attention.forward(arena, x, x, x, NO_MASK,
          Mode.TRAINING).context();
      attention.close();
      e = assertThrows(IllegalStateException.class,
          () -> attention.backward(arena, live, Tensor.ones(arena, 3, 2, 8)));
      assertEquals("MultiHeadAttention: the layer is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class, () -> attention.newCache(arena, 1, 1));
      assertEquals("MultiHeadAttention: the layer is closed", e.getMessage());
      attention.close(); // closing again does nothing
    }
    TransformerEncoderLayer layer = encoderLayer();
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 14, 3, 2, 8);
      var context = layer.forward(arena, x, NO_MASK, Mode.TRAINING).context();
      layer.close();
      var e = assertThrows(IllegalStateException.class,
          () -> layer.backward(arena, context, Tensor.ones(arena, 3, 2, 8)));
      assertEquals("TransformerEncoderLayer: the layer is closed", e.getMessage());
      e = assertThrows(IllegalStateException.class,
          () -> layer.forward(arena, x, NO_MASK, Mode.INFERENCE));
      assertEquals("TransformerEncoderLayer: the layer is closed", e.getMessage());
    }
  }

  private static TransformerEncoderLayer encoderLayer() {
    return TransformerEncoderLayer.builder(8, 2).dimFeedforward(6).dropout(0f).build();
  }

  private static TransformerDecoderLayer decoderLayer() {
    return TransformerDecoderLayer.builder(8, 2).dimFeedforward(6).dropout(0f).build();
  }

  // ---- all-or-nothing construction

  /** glibc's struct mallinfo2: ten size_t fields (seq4j's tensors come from malloc). */
  private static final MemoryLayout MALLINFO2 = MemoryLayout.structLayout(
      JAVA_LONG.withName("arena"), JAVA_LONG.withName("ordblks"), JAVA_LONG.withName("smblks"),
      JAVA_LONG.withName("hblks"), JAVA_LONG.withName("hblkhd"), JAVA_LONG.withName("usmblks"),
      JAVA_LONG.withName("fsmblks"), JAVA_LONG.withName("uordblks"),
      JAVA_LONG.withName("fordblks"), JAVA_LONG.withName("keepcost"));

  private static long mallocInUse() {
    Linker linker = Linker.nativeLinker();
    MethodHandle mallinfo2 = linker.downcallHandle(
        linker.defaultLookup().find("mallinfo2").orElseThrow(), FunctionDescriptor.of(MALLINFO2));
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment info = (MemorySegment) mallinfo2.invokeExact((SegmentAllocator) arena);
      return info.get(JAVA_LONG, 7 * 8) + info.get(JAVA_LONG, 4 * 8);
    } catch (Throwable t) {
      throw new AssertionError(t);
    }
  }

  /**
   * The smallest growth of malloc'd memory over three runs of {@code failures} failing
   * constructions, each of which allocated megabytes before it failed before the fix.
   */
  private static long smallestGrowth(int failures, Runnable failingConstruction) {
    long smallest = Long.MAX_VALUE;
    for (int run = 0; run < 3; run++) {
      long before = mallocInUse();
      for (int i = 0; i < failures; i++) {
        try {
          failingConstruction.run();
          throw new AssertionError("the construction was expected to fail");
        } catch (IllegalArgumentException | IllegalStateException expected) {
          // the point: nothing of it stays behind
        }
      }
      smallest = Math.min(smallest, mallocInUse() - before);
    }
    return smallest;
  }

  @Test
  void failedConstructionsLeaveNoNativeMemoryBehind() {
    // each of these allocated 4 to 40 MB before it failed; 40 failures leaked 160 MB to 1.6 GB
    List<Runnable> failing = new ArrayList<>();
    failing.add(() -> TransformerEncoderLayer.builder(512, 8).dimFeedforward(0).build());
    failing.add(() -> TransformerDecoderLayer.builder(512, 8).dimFeedforward(-1).build());
    failing.add(() -> MultiHeadAttention.builder(512, 8).keyDim(-3).build());
    // a failure late in a stack: the layers made before it and the norm are closed
    failing.add(() -> new TransformerEncoder(4, i -> {
      if (i == 3) {
        throw new IllegalStateException("layer 3 cannot be made");
      }
      return TransformerEncoderLayer.builder(256, 4).dimFeedforward(512).build();
    }, new LayerNorm(256)));
    failing.add(() -> new TransformerDecoder(3, i -> {
      if (i == 2) {
        throw new IllegalArgumentException("layer 2 cannot be made");
      }
      return TransformerDecoderLayer.builder(256, 4).dimFeedforward(512).build();
    }, null));
    for (Runnable construction : failing) {
      long growth = smallestGrowth(40, construction);
      assertTrue(growth < 4L << 20, "40 failed constructions grew native memory by " + growth
          + " bytes");
    }
  }

  @Test
  void aStackThatFailsClosesTheLayersItMadeAndItsNorm() {
    List<TransformerEncoderLayer> made = new ArrayList<>();
    LayerNorm norm = new LayerNorm(8);
    var e = assertThrows(IllegalStateException.class, () -> new TransformerEncoder(3, i -> {
      if (i == 2) {
        throw new IllegalStateException("no third layer");
      }
      TransformerEncoderLayer layer = encoderLayer();
      made.add(layer);
      return layer;
    }, norm));
    assertEquals("no third layer", e.getMessage());
    assertEquals(2, made.size());
    try (Arena arena = Arena.ofConfined()) {
      Tensor x = Tensor.randomNormal(arena, 15, 3, 2, 8);
      for (TransformerEncoderLayer layer : made) {
        assertThrows(IllegalStateException.class,
            () -> layer.forward(arena, x, NO_MASK, Mode.INFERENCE));
      }
      assertThrows(IllegalStateException.class, () -> norm.forward(arena, x));
    }
    var npe = assertThrows(NullPointerException.class,
        () -> new TransformerDecoder(2, i -> null, null));
    assertEquals("layer: returned null for layer 0", npe.getMessage());
  }

  // ---- close() while other threads call

  /** Runs calls on 3 threads until close; checks close returns and every later call is refused. */
  private static void closeWhileCalling(AutoCloseable closeable, String closedMessage,
      Consumer<Arena> call) throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4); // 3 callers and the closer
    CountDownLatch running = new CountDownLatch(3);
    AtomicLong calls = new AtomicLong();
    List<Future<Throwable>> workers = new ArrayList<>();
    for (int w = 0; w < 3; w++) {
      workers.add(pool.submit(() -> {
        boolean counted = false;
        while (true) {
          try (Arena arena = Arena.ofConfined()) {
            call.accept(arena);
            calls.incrementAndGet();
            if (!counted) {
              running.countDown();
              counted = true;
            }
          } catch (IllegalStateException closed) {
            if (!counted) {
              running.countDown();
            }
            return closedMessage.equals(closed.getMessage()) ? null : closed;
          } catch (Throwable other) {
            running.countDown();
            return other;
          }
        }
      }));
    }
    try {
      assertTrue(running.await(2, TimeUnit.MINUTES), "the callers started");
      // close succeeds while the others keep calling: it waits for the calls in flight
      Future<?> closing = pool.submit(() -> {
        closeable.close();
        return null;
      });
      closing.get(2, TimeUnit.MINUTES); // a hang guard, not a timing assertion
      for (Future<Throwable> worker : workers) {
        Throwable failure = worker.get(2, TimeUnit.MINUTES);
        if (failure != null) {
          throw new AssertionError("a caller failed otherwise than with '" + closedMessage + "'",
              failure);
        }
      }
      assertTrue(calls.get() >= 3);
      try (Arena arena = Arena.ofConfined()) {
        var e = assertThrows(IllegalStateException.class, () -> call.accept(arena));
        assertEquals(closedMessage, e.getMessage());
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void closeWaitsForCallsInFlightAndThenRefusesNewOnes() throws Exception {
    for (int round = 0; round < 3; round++) {
      Lstm lstm = Lstm.builder(16, 32).numLayers(2).build();
      closeWhileCalling(lstm, "Lstm: the layer is closed",
          arena -> lstm.forward(arena, Tensor.randomNormal(arena, 1, 20, 4, 16)));
      MultiHeadAttention attention = new MultiHeadAttention(32, 4);
      closeWhileCalling(attention, "MultiHeadAttention: the layer is closed", arena -> {
        Tensor x = Tensor.randomNormal(arena, 2, 30, 2, 32);
        attention.forward(arena, x, x, x, NO_MASK, Mode.INFERENCE);
      });
      TransformerEncoderLayer layer = TransformerEncoderLayer.builder(32, 4).dimFeedforward(64)
          .dropout(0f).build();
      closeWhileCalling(layer, "TransformerEncoderLayer: the layer is closed",
          arena -> layer.forward(arena, Tensor.randomNormal(arena, 3, 10, 2, 32), NO_MASK,
              Mode.INFERENCE));
      Linear linear = new Linear(64, 64, true, 1);
      closeWhileCalling(linear, "Linear: the layer is closed",
          arena -> linear.forward(arena, Tensor.randomNormal(arena, 4, 50, 64)));
      Embedding embedding = new Embedding(100, 16, 1);
      closeWhileCalling(embedding, "Embedding: the layer is closed",
          arena -> embedding.forward(arena, new long[] {1, 2, 3}, 3));
      try (Linear owner = new Linear(64, 64, true, 2)) {
        Adam adam = Adam.builder(owner.parameters()).build();
        closeWhileCalling(adam, "Adam: the optimizer is closed", arena -> adam.step());
        Sgd sgd = Sgd.builder(owner.parameters()).momentum(0.9).build();
        closeWhileCalling(sgd, "Sgd: the optimizer is closed", arena -> sgd.step());
      }
    }
  }
}
