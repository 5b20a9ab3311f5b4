package org.seq4j;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;

class RuntimeTest {

  @Test
  void versionsOfJavaAndNativeSidesAgree() {
    String version = Seq4j.version();
    assertFalse(version.isBlank());
    assertFalse(version.equals("unknown"), "seq4j.properties was not filtered");
  }

  @Test
  void runtimeInfoReportsWhatWasLoaded() {
    RuntimeInfo info = Seq4j.runtimeInfo();
    assertTrue(info.onednnVersion().startsWith("3.13"), info.onednnVersion());
    assertFalse(info.onednnIsa().isBlank());
    assertTrue(info.openblasConfig().contains("OpenBLAS 0.3.31"), info.openblasConfig());
    assertEquals(1, info.openblasThreads(), "OpenBLAS must not run its own thread pool");
    assertEquals(System.getenv().getOrDefault("OPENBLAS_CORETYPE", ""),
        info.openblasCoreTypeEnv());
    assertEquals("openmp", info.details().get("onednn.cpu_runtime"));
    assertTrue(info.toString().contains("oneDNN   3.13"), info.toString());
  }

  @Test
  void setThreadsIsSeenByEveryThreadAndKeepsResultsRight() throws Exception {
    int before = Seq4j.threads();
    try (Arena arena = Arena.ofShared()) {
      Tensor a = Tensor.randomNormal(arena, 3, 300, 300);
      Tensor expected = TensorOps.matmul(arena, a, a);
      Seq4j.setThreads(1);
      assertEquals(1, Seq4j.threads());
      int seenElsewhere = java.util.concurrent.CompletableFuture.supplyAsync(Seq4j::threads).get();
      assertEquals(1, seenElsewhere);
      for (Backend backend : new Backend[] {Backend.ONEDNN, Backend.BLAS}) {
        Tensor out = Tensor.zeros(arena, 300, 300);
        TensorOps.matmul(a, a, out, MatmulOptions.DEFAULT.backend(backend));
        float[] x = out.toArray();
        float[] y = expected.toArray();
        for (int i = 0; i < x.length; i++) {
          assertEquals(y[i], x[i],
              (float) org.seq4j.reference.Tolerances.MATMUL_THREAD_COUNT_AGREEMENT);
        }
      }
    } finally {
      Seq4j.setThreads(before);
    }
    assertEquals(before, Seq4j.threads());
    var e = assertThrows(IllegalArgumentException.class, () -> Seq4j.setThreads(0));
    assertEquals("threads: expected >= 1, got 0", e.getMessage());
  }
}
