// The one ISA switch of seq4j's own vector code. Every vector path consults it: the recurrent cell
// kernels and their panel products (rnn/cell_kernels.cpp), attention's tile kernels and packing
// (attention/attention.cpp). The best instruction set the CPU has is picked when the library
// loads; seq4j_select_kernels (below, in cpu.cpp) forces another one, so tests can run every copy
// the machine supports, the portable one included.
//
// x86-64 has three copies: the baseline (no AVX: the scalar fallback, the portable C++ that every
// other architecture compiles), AVX2 + FMA, and AVX-512 (F, VL, DQ, BW, with AVX2 + FMA). Each
// vector path has all three, attention's tile kernels, softmax and dS included (its AVX-512 copy
// runs only under AVX-512; forcing AVX2 runs the AVX2 copy). Every intrinsic, target attribute,
// `#pragma GCC target` and CPU probe sits behind SEQ4J_X86_64, so each kernel has a portable path.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define SEQ4J_X86_64 1
#else
#define SEQ4J_X86_64 0
#endif

namespace seq4j {

// The width of the packed weight and key panels: 16 floats, one 64-byte cache line (one AVX-512
// vector, two AVX2 vectors).
constexpr int kPanelWidth = 16;

// The copies, numbered as seq4j_select_kernels takes them (0 there means "the best").
enum class Isa : int32_t { kBaseline = 1, kAvx2 = 2, kAvx512 = 3 };

// The best copy this CPU runs (probed once).
Isa best_isa();

namespace detail {
extern std::atomic<int32_t> active_isa;
}  // namespace detail

// The copy in use. A relaxed load: cheap enough to ask once per row of a kernel.
inline Isa active_isa() {
  return static_cast<Isa>(detail::active_isa.load(std::memory_order_relaxed));
}

// Whether the CPU has AVX512_BF16 (vdpbf16ps) besides the AVX-512 copy's instructions; the
// AVX-512 copy of the bf16 step product uses it (rnn/cell_kernels.cpp).
bool cpu_has_avx512_bf16();

// Whether the AVX2 + FMA kernels may run (AVX2 or AVX-512 selected).
inline bool use_avx2() { return active_isa() >= Isa::kAvx2; }

}  // namespace seq4j
