// The copies of the cell kernels (cell_kernels.inc), one per instruction set, and the table the
// ISA switch selects. On x86-64: AVX-512, AVX2 + FMA and the baseline; elsewhere only the
// baseline, the portable C++ that the compiler vectorizes for that architecture.
#include "rnn/cell_kernels.h"

#include <cstring>

#include "core/fast_exp.h"

namespace seq4j {

// One copy of the kernels per instruction set; the pragmas apply to everything in the include.
#if SEQ4J_X86_64
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")
namespace cell_avx512 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace cell_avx2 {
#include "rnn/cell_kernels.inc"
}  // namespace cell_avx2
#pragma GCC pop_options
#endif  // SEQ4J_X86_64

namespace cell_baseline {
#include "rnn/cell_kernels.inc"
}  // namespace cell_baseline

const CellKernels &kernels() {
  switch (active_isa()) {
#if SEQ4J_X86_64
    case Isa::kAvx512: return cell_avx512::kernels;
    case Isa::kAvx2: return cell_avx2::kernels;
#endif
    default: return cell_baseline::kernels;
  }
}

}  // namespace seq4j
