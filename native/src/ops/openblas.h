// OpenBLAS's cblas.h, includable on every platform seq4j builds for. OpenBLAS 0.3.31's
// openblas_config.h declares `typedef _Float16 hfloat16` for every GCC from 12 on, but GCC 12
// knows _Float16 in C++ only on x86-64; on AArch64 the same 16-bit float is __fp16. seq4j never
// uses hfloat16.
#pragma once

#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#define _Float16 __fp16
#include "cblas.h"
#undef _Float16
#else
#include "cblas.h"
#endif
