package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.nio.FloatBuffer;
import org.junit.jupiter.api.Test;
import org.seq4j.reference.Tolerances;

class TensorTest {

  @Test
  void factoriesFillAsPromised() {
    try (Arena arena = Arena.ofConfined()) {
      assertArrayEquals(new float[6], Tensor.zeros(arena, 2, 3).toArray());
      assertArrayEquals(new float[] {1, 1, 1}, Tensor.ones(arena, 3).toArray());
      assertArrayEquals(new float[] {-0.5f, -0.5f}, Tensor.full(arena, -0.5f, 1, 2).toArray());
      Tensor scalar = Tensor.full(arena, 7f);
      assertEquals(0, scalar.shape().rank());
      assertEquals(1, scalar.size());
      assertEquals(7f, scalar.get());
      Tensor empty = Tensor.zeros(arena, 0, 5);
      assertEquals(0, empty.size());
      assertEquals(0, empty.toArray().length);
    }
  }

  @Test
  void randomTensorsAreSeededAndHaveTheRightMoments() {
    try (Arena arena = Arena.ofConfined()) {
      float[] a = Tensor.randomNormal(arena, 42, 100_000).toArray();
      float[] b = Tensor.randomNormal(arena, 42, 100_000).toArray();
      float[] c = Tensor.randomNormal(arena, 43, 100_000).toArray();
      assertArrayEquals(a, b);
      assertNotEquals(a[0], c[0]);
      double mean = 0;
      double square = 0;
      for (float v : a) {
        mean += v;
        square += (double) v * v;
      }
      mean /= a.length;
      double variance = square / a.length - mean * mean;
      assertEquals(0, mean, Tolerances.NORMAL_SAMPLE_MOMENTS);
      assertEquals(1, variance, Tolerances.NORMAL_SAMPLE_MOMENTS);

      float[] u = Tensor.randomUniform(arena, 7, -2f, 3f, 100_000).toArray();
      double uniformMean = 0;
      for (float v : u) {
        assertTrue(v >= -2f && v < 3f, "value " + v);
        uniformMean += v;
      }
      assertEquals(0.5, uniformMean / u.length, Tolerances.UNIFORM_SAMPLE_MEAN);
      assertArrayEquals(u, Tensor.randomUniform(arena, 7, -2f, 3f, 100_000).toArray());
    }
  }

  @Test
  void arraysAndBuffersRoundTrip() {
    try (Arena arena = Arena.ofConfined()) {
      float[] data = {1, 2, 3, 4, 5, 6};
      Tensor t = Tensor.fromArray(arena, data, 3, 2);
      assertArrayEquals(data, t.toArray());
      data[0] = 99; // the tensor holds a copy
      assertEquals(1f, t.get(0, 0));

      FloatBuffer source = FloatBuffer.wrap(new float[] {0, 9, 8, 7, 6});
      source.position(1);
      Tensor fromBuffer = Tensor.fromBuffer(arena, source, 2, 2);
      assertEquals(1, source.position(), "the source position is not changed");
      assertArrayEquals(new float[] {9, 8, 7, 6}, fromBuffer.toArray());

      FloatBuffer target = FloatBuffer.allocate(6);
      target.put(-1f);
      fromBuffer.copyTo(target);
      assertEquals(5, target.position());
      assertArrayEquals(new float[] {-1, 9, 8, 7, 6, 0}, target.array());
    }
  }

  @Test
  void elementAccessUsesRowMajorOrder() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.zeros(arena, 2, 3, 4);
      t.set(5f, 1, 2, 3);
      t.set(6f, 0, 1, 0);
      float[] values = t.toArray();
      assertEquals(5f, values[1 * 12 + 2 * 4 + 3]);
      assertEquals(6f, values[4]);
      assertEquals(5f, t.get(1, 2, 3));
    }
  }

  @Test
  void viewsShareMemory() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.fromArray(arena, new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 2, 2);
      Tensor middle = t.slice(1, 3);
      assertEquals(Shape.of(2, 2, 2), middle.shape());
      assertArrayEquals(new float[] {4, 5, 6, 7, 8, 9, 10, 11}, middle.toArray());
      middle.set(-1f, 0, 0, 0);
      assertEquals(-1f, t.get(1, 0, 0));
      Tensor flat = t.reshape(-1);
      assertEquals(Shape.of(12), flat.shape());
      assertEquals(Shape.of(4, 3), t.reshape(4, -1).shape());
      flat.set(42f, 11);
      assertEquals(42f, t.get(2, 1, 1));
      assertEquals(0, t.slice(3, 3).size());
    }
  }

  @Test
  void copyFillAndCopyFrom() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.randomNormal(arena, 1, 4, 5);
      Tensor copy = t.copy(arena);
      assertArrayEquals(t.toArray(), copy.toArray());
      copy.fill(3f);
      assertNotEquals(3f, t.get(0, 0));
      t.copyFrom(copy);
      assertArrayEquals(copy.toArray(), t.toArray());
      Tensor large = Tensor.zeros(arena, 300_001).fill(2f); // parallel path of fill
      for (float v : large.toArray()) {
        assertEquals(2f, v);
      }
    }
  }

  @Test
  void toStringShowsSmallTensorsAndSummarisesLargeOnes() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.fromArray(arena, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
      assertEquals("Tensor(2, 3) F32\n[[1.0, 2.0, 3.0],\n [4.0, 5.0, 6.0]]", t.toString());
      assertEquals("Tensor(2,) F32\n[0.0, 0.0]", Tensor.zeros(arena, 2).toString());
      String large = Tensor.zeros(arena, 100, 100).toString();
      assertTrue(large.startsWith("Tensor(100, 100) F32 [0.0, 0.0"), large);
      assertTrue(large.endsWith("9994 more]"), large);
    }
  }

  @Test
  void shapeAndCreationErrorsNameTheArgument() {
    try (Arena arena = Arena.ofConfined()) {
      var e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(arena, 2, -3));
      assertEquals("shape: dimension 1 must be >= 0, got -3 in (2, -3)", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.zeros(arena, Long.MAX_VALUE, 4));
      assertTrue(e.getMessage().contains("too large") || e.getMessage().contains("elements"),
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.fromArray(arena, new float[5], 2, 3));
      assertEquals("data: expected 6 floats for shape (2, 3), got 5", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.fromBuffer(arena, FloatBuffer.allocate(2), 3));
      assertEquals("data: expected 3 remaining floats for shape (3,), got 2", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.randomUniform(arena, 1, 2f, 1f, 3));
      assertEquals("low, high: expected finite low < high, got low=2.0 high=1.0", e.getMessage());

      Tensor t = Tensor.zeros(arena, 2, 3);
      e = assertThrows(IllegalArgumentException.class, () -> t.reshape(4, 2));
      assertEquals("dims: expected a shape of 6 elements (like (2, 3)), got (4, 2)",
          e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> t.reshape(4, -1));
      assertTrue(e.getMessage().startsWith("dims: cannot infer -1"), e.getMessage());
      e = assertThrows(IllegalArgumentException.class, () -> t.get(1));
      assertEquals("index: expected 2 coordinates for shape (2, 3), got 1", e.getMessage());
      var outOfBounds = assertThrows(IndexOutOfBoundsException.class, () -> t.get(1, 3));
      assertEquals("index: coordinate 1 must be in [0, 3), got 3 for shape (2, 3)",
          outOfBounds.getMessage());
      outOfBounds = assertThrows(IndexOutOfBoundsException.class, () -> t.slice(1, 3));
      assertEquals("start, end: expected 0 <= start <= end <= 2, got start=1 end=3",
          outOfBounds.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> t.copyFrom(Tensor.zeros(arena, 3, 2)));
      assertEquals("source: expected shape (2, 3), got (3, 2)", e.getMessage());
    }
  }

  @Test
  void uninitialisedAndWrappedTensorsAndTheBlockCache() {
    try (Arena arena = Arena.ofConfined()) {
      Tensor t = Tensor.uninitialized(arena, 3, 5);
      assertEquals(Shape.of(3, 5), t.shape());
      t.fill(1.5f);
      Tensor view = Tensor.ofSegment(t.segment(), 15);
      assertEquals(1.5f, view.get(14));
      var e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.ofSegment(t.segment(), 4, 4));
      assertEquals("segment: expected 64 bytes for shape (4, 4), got 60", e.getMessage());
      e = assertThrows(IllegalArgumentException.class,
          () -> Tensor.ofSegment(java.lang.foreign.MemorySegment.ofArray(new float[4]), 4));
      assertEquals("segment: expected off-heap (native) memory", e.getMessage());
    }
    // a large block returns to the cache when its arena closes, and is freed on request
    Seq4j.releaseCachedMemory();
    try (Arena arena = Arena.ofConfined()) {
      Tensor.uninitialized(arena, 1 << 20).fill(2f); // 4 MiB
    }
    long cached = Seq4j.releaseCachedMemory();
    assertTrue(cached >= 4L << 20, "cached " + cached);
    assertEquals(0, Seq4j.releaseCachedMemory());
  }

  @Test
  void closedArenaCannotAllocate() {
    Arena arena = Arena.ofConfined();
    arena.close();
    var e = assertThrows(IllegalStateException.class, () -> Tensor.zeros(arena, 2));
    assertEquals("arena: it is closed", e.getMessage());
  }
}
