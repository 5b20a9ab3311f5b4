// Sums whose bits do not depend on the thread count. OpenMP's reduction(+) gives each thread a
// partial sum of its own share and adds the partials in whatever order the threads finish: the
// result changes with the thread count and, for floating point, even between runs. Here the terms
// are cut into chunks fixed by the length alone, each chunk is summed in a fixed order by one
// thread (8 interleaved partials, i % 8, which the compiler may keep in vector registers; an
// explicit order, so neither the data's alignment nor the vector width changes it), and the chunks'
// sums are added in order on the calling thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace seq4j {

// Σ term(i) for begin <= i < end in the fixed order described above.
template <class Term>
double fixed_order_chunk_sum(int64_t begin, int64_t end, Term &term) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = begin;
  for (; i + 8 <= end; i += 8)
    for (int l = 0; l < 8; ++l) lanes[l] += term(i + l);
  for (int l = 0; i < end; ++i, ++l) lanes[l] += term(i);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// Σ term(i) for i < n in double, chunk terms at a time (chunk >= 1); the chunks run in parallel
// when parallel is true. term may also write per-element outputs (a gradient).
template <class Term>
double fixed_order_sum(int64_t n, int64_t chunk, bool parallel, Term term) {
  const int64_t chunks = (n + chunk - 1) / chunk;
  if (chunks <= 1) return fixed_order_chunk_sum(0, n, term);
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * chunk;
    partial[static_cast<size_t>(c)] = fixed_order_chunk_sum(begin, std::min(n, begin + chunk), term);
  }
  double sum = 0;
  for (double p : partial) sum += p;
  return sum;
}

// The chunk of an elementwise sum: 4096 terms, whatever the thread count.
constexpr int64_t kSumChunk = 4096;

}  // namespace seq4j
