// The ISA switch (see cpu.h) and its C entry point, seq4j_select_kernels.
#include "core/cpu.h"

#include "core/error.h"
#include "seq4j.h"

namespace seq4j {
namespace {

#if SEQ4J_X86_64
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw");
}
#else
bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }
#endif

}  // namespace

bool cpu_has_avx512_bf16() {
#if SEQ4J_X86_64
  static const bool has = [] {
    __builtin_cpu_init();
    return cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
  }();
  return has;
#else
  return false;
#endif
}

Isa best_isa() {
  static const Isa best = cpu_has_avx512() ? Isa::kAvx512 : cpu_has_avx2() ? Isa::kAvx2 : Isa::kBaseline;
  return best;
}

namespace detail {
std::atomic<int32_t> active_isa{static_cast<int32_t>(best_isa())};
}  // namespace detail

}  // namespace seq4j

using seq4j::fail;
using seq4j::guarded;

extern "C" {

int seq4j_select_kernels(int32_t isa, int32_t *previous) {
  return guarded(__func__, [&] {
    using seq4j::Isa;
    const int32_t before = static_cast<int32_t>(seq4j::active_isa());
    Isa chosen;
    switch (isa) {
      case 0: chosen = seq4j::best_isa(); break;
      case 1: chosen = Isa::kBaseline; break;
      case 2:
        if (!seq4j::cpu_has_avx2()) fail(SEQ4J_ERR_UNSUPPORTED, "this CPU has no AVX2 and FMA");
        chosen = Isa::kAvx2;
        break;
      case 3:
        if (!seq4j::cpu_has_avx512())
          fail(SEQ4J_ERR_UNSUPPORTED, "this CPU has no AVX-512 (F, VL, DQ, BW)");
        chosen = Isa::kAvx512;
        break;
      default:
        fail(SEQ4J_ERR_INVALID_ARGUMENT,
             "isa must be 0 (best), 1 (baseline), 2 (AVX2) or 3 (AVX-512), got ", isa);
    }
    seq4j::detail::active_isa.store(static_cast<int32_t>(chosen));
    if (previous != nullptr) *previous = before;
    return SEQ4J_OK;
  });
}

}  // extern "C"
