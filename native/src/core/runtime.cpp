#include "runtime.h"

#include <omp.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "dnnl.h"
#include "error.h"
#include "ops/openblas.h"

#ifndef SEQ4J_VERSION
#error "SEQ4J_VERSION must be defined by the build"
#endif

namespace seq4j {
namespace {

std::atomic<int> configured_threads{0};
std::atomic<bool> deterministic_mode{false};
std::once_flag init_once;

void initialise() {
  // omp_get_max_threads() here reads OMP_NUM_THREADS or the number of cores.
  configured_threads.store(omp_get_max_threads());
  // OpenBLAS's own pthreads pool is never used: GEMMs are split across the OpenMP pool instead.
  openblas_set_num_threads(1);
}

void ensure_initialised() { std::call_once(init_once, initialise); }

const char *isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_default: return "default";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2_vnni_2: return "avx2_vnni_2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx10_1_512: return "avx10_1_512 (avx512_core_fp16)";
    case dnnl_cpu_isa_avx10_1_512_amx: return "avx10_1_512_amx";
    case dnnl_cpu_isa_avx10_1_512_amx_fp16: return "avx10_1_512_amx_fp16";
    default: return "other";
  }
}

const char *openblas_parallel_name(int mode) {
  switch (mode) {
    case 0: return "sequential";
    case 1: return "pthreads";
    case 2: return "openmp";
    default: return "unknown";
  }
}

}  // namespace

int threads() {
  ensure_initialised();
  return configured_threads.load(std::memory_order_relaxed);
}

void use_configured_threads() {
  int wanted = threads();
  if (omp_get_max_threads() != wanted) omp_set_num_threads(wanted);
}

bool deterministic() { return deterministic_mode.load(std::memory_order_relaxed); }

}  // namespace seq4j

using seq4j::fail;
using seq4j::guarded;

extern "C" {

const char *seq4j_version(void) { return SEQ4J_VERSION; }

int seq4j_noop(void) { return SEQ4J_OK; }

int seq4j_set_threads(int64_t n) {
  return guarded(__func__, [&] {
    if (n < 1 || n > 4096) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n must be in [1, 4096], got ", n);
    seq4j::threads();  // initialise first so the stored value is not overwritten afterwards
    seq4j::configured_threads.store(static_cast<int>(n));
    omp_set_num_threads(static_cast<int>(n));
    return SEQ4J_OK;
  });
}

int seq4j_get_threads(int64_t *n) {
  return guarded(__func__, [&] {
    if (n == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "n is NULL");
    *n = seq4j::threads();
    return SEQ4J_OK;
  });
}

int seq4j_set_deterministic(int32_t on) {
  seq4j::deterministic_mode.store(on != 0);
  return SEQ4J_OK;
}

int seq4j_get_deterministic(int32_t *on) {
  return guarded(__func__, [&] {
    if (on == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "on is NULL");
    *on = seq4j::deterministic() ? 1 : 0;
    return SEQ4J_OK;
  });
}

int seq4j_runtime_info(char *buf, int64_t capacity, int64_t *needed) {
  return guarded(__func__, [&] {
    seq4j::require_non_negative("capacity", capacity);
    seq4j::require_pointer("buf", buf, capacity);
    if (needed == nullptr) fail(SEQ4J_ERR_INVALID_ARGUMENT, "needed is NULL");
    seq4j::use_configured_threads();
    const dnnl_version_t *v = dnnl_version();
    std::string text;
    auto line = [&](const char *key, const std::string &value) {
      text += key;
      text += '=';
      text += value;
      text += '\n';
    };
    line("seq4j.version", SEQ4J_VERSION);
    line("seq4j.threads", std::to_string(seq4j::threads()));
    line("seq4j.deterministic", seq4j::deterministic() ? "1" : "0");
    line("onednn.version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                               std::to_string(v->patch) + " (" + v->hash + ")");
    line("onednn.cpu_runtime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "openmp" : "other");
    line("onednn.isa", seq4j::isa_name(dnnl_get_effective_cpu_isa()));
    line("openblas.config", openblas_get_config());
    line("openblas.core", openblas_get_corename());
    line("openblas.parallel", seq4j::openblas_parallel_name(openblas_get_parallel()));
    line("openblas.threads", std::to_string(openblas_get_num_threads()));
    const char *coretype = std::getenv("OPENBLAS_CORETYPE");
    line("openblas.coretype_env", coretype ? coretype : "");
    line("openmp.max_threads", std::to_string(omp_get_max_threads()));
    line("openmp.procs", std::to_string(omp_get_num_procs()));
    *needed = static_cast<int64_t>(text.size()) + 1;
    if (capacity > 0) {
      size_t n = std::min(static_cast<size_t>(capacity - 1), text.size());
      std::memcpy(buf, text.data(), n);
      buf[n] = '\0';
    }
    return SEQ4J_OK;
  });
}

}  // extern "C"
