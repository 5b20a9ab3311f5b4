package org.seq4j;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What seq4j loaded and how it runs, from {@link Seq4j#runtimeInfo()}.
 *
 * @param version seq4j's version (Java side and native library agree)
 * @param threads threads of seq4j's pool ({@link Seq4j#setThreads})
 * @param onednnVersion oneDNN's version and commit
 * @param onednnIsa the instruction set oneDNN dispatches to on this CPU
 * @param openblasConfig OpenBLAS's build configuration
 * @param openblasCore the CPU kernel set OpenBLAS chose (affected by {@code OPENBLAS_CORETYPE})
 * @param openblasCoreTypeEnv the value of {@code OPENBLAS_CORETYPE}, empty when unset
 * @param openblasThreads OpenBLAS's own thread count (1: seq4j splits work across its pool)
 * @param libraryFolder the folder the native libraries were loaded from
 * @param librarySource where the native files came from (which JAR) and why this folder was used
 *     (the user cache, {@code -Dseq4j.cache.dir}, the temp-folder fallback and why the user cache
 *     failed, or {@code -Dseq4j.library.path})
 * @param libraries the native files, in load order
 * @param details every key the native library reported, as text
 */
public record RuntimeInfo(
    String version,
    int threads,
    String onednnVersion,
    String onednnIsa,
    String openblasConfig,
    String openblasCore,
    String openblasCoreTypeEnv,
    int openblasThreads,
    Path libraryFolder,
    String librarySource,
    List<Path> libraries,
    Map<String, String> details) {

  /** A multi-line, human-readable report. */
  @Override
  public String toString() {
    StringBuilder text = new StringBuilder();
    text.append("seq4j ").append(version).append(", ").append(threads).append(" threads\n");
    text.append("  oneDNN   ").append(onednnVersion).append(", ISA ").append(onednnIsa)
        .append('\n');
    text.append("  OpenBLAS ").append(openblasConfig).append(", core ").append(openblasCore)
        .append(", OPENBLAS_CORETYPE=")
        .append(openblasCoreTypeEnv.isEmpty() ? "(unset)" : openblasCoreTypeEnv)
        .append(", its own threads ").append(openblasThreads).append('\n');
    text.append("  loaded from ").append(libraryFolder).append(":");
    for (Path library : libraries) {
      text.append(' ').append(library.getFileName());
    }
    text.append("\n  ").append(librarySource);
    return text.toString();
  }
}
