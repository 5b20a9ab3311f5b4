package org.seq4j.nn;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The one seeding scheme: a fresh dropout seed per call, never shared, also across threads. */
class SeedsTest {

  @Test
  void concurrentCallsNeverShareADropoutSeed() {
    Seeds.DropoutSeeds seeds = new Seeds.DropoutSeeds(Seeds.DEFAULT_SEED);
    Set<Long> drawn = ConcurrentHashMap.newKeySet();
    IntStream.range(0, 8000).parallel().forEach(i -> drawn.add(seeds.next()));
    assertEquals(8000, drawn.size());
  }

  @Test
  void theSequenceDependsOnlyOnTheSeed() {
    Seeds.DropoutSeeds a = new Seeds.DropoutSeeds(42);
    Seeds.DropoutSeeds b = new Seeds.DropoutSeeds(42);
    for (int call = 0; call < 5; call++) {
      long next = a.next();
      assertEquals(Seeds.mix(42, call), next);
      assertEquals(next, b.next());
    }
    assertNotEquals(Seeds.mix(42, 0), Seeds.mix(43, 0));
  }
}
