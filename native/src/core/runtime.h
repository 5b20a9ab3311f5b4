// The shared thread pool: one OpenMP pool runs oneDNN and seq4j's kernels; OpenBLAS is kept
// single-threaded and is called from inside that pool, so no two pools compete for the cores.
#pragma once

#include <cstdint>

namespace seq4j {

// Threads set by seq4j_set_threads (initialised once from OMP_NUM_THREADS or the core count).
int threads();

// OpenMP's thread count is a per-thread setting: a JVM thread that calls in for the first time
// would get the default. Every compute entry point calls this first so the caller's OpenMP
// setting (which oneDNN reads) matches seq4j's.
void use_configured_threads();

// Whether seq4j_set_deterministic turned on deterministic mode: work is then split into pieces
// fixed by the shapes, never by the thread count (seq4j.h).
bool deterministic();

}  // namespace seq4j
