// Tests of the C boundary itself: statuses, error text, no exception escaping, and both matmul
// backends against a naive double-precision product. The numerical suite lives in Java.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "seq4j.h"

namespace {

int failures = 0;

void check(bool ok, const std::string &what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

void test_invalid_arguments_return_status_and_message() {
  float x = 0;
  check(seq4j_matmul(&x, &x, &x, -1, 1, 1, 0, 0, 1, 0, SEQ4J_BACKEND_BLAS) ==
            SEQ4J_ERR_INVALID_ARGUMENT,
        "negative m gives INVALID_ARGUMENT");
  check(std::string(seq4j_last_error()).find("m must be >= 0, got -1") != std::string::npos,
        std::string("message names m, got: ") + seq4j_last_error());
  check(seq4j_matmul(nullptr, &x, &x, 1, 1, 1, 0, 0, 1, 0, SEQ4J_BACKEND_BLAS) ==
            SEQ4J_ERR_INVALID_ARGUMENT,
        "NULL c gives INVALID_ARGUMENT");
  check(seq4j_matmul(&x, &x, &x, 1, 1, 1, 0, 0, 1, 0, 99) == SEQ4J_ERR_INVALID_ARGUMENT,
        "unknown backend gives INVALID_ARGUMENT");
  check(seq4j_set_threads(0) == SEQ4J_ERR_INVALID_ARGUMENT, "zero threads rejected");
  check(seq4j_noop() == SEQ4J_OK, "noop is OK");
  int64_t threads = 0;
  check(seq4j_get_threads(&threads) == SEQ4J_OK && threads >= 1, "get threads");
  check(std::string(seq4j_last_error()).empty(), "a successful call clears the message");
}

void test_matmul_backends_match_double_reference() {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const int64_t shapes[][3] = {{1, 1, 1}, {3, 17, 63}, {63, 3, 17}, {130, 257, 65}};
  for (auto &shape : shapes) {
    const int64_t m = shape[0], n = shape[1], k = shape[2];
    for (int trans = 0; trans < 4; ++trans) {
      const bool ta = trans & 1, tb = trans & 2;
      std::vector<float> a(m * k), b(k * n);
      for (auto &v : a) v = uniform(rng);
      for (auto &v : b) v = uniform(rng);
      for (int backend : {SEQ4J_BACKEND_ONEDNN, SEQ4J_BACKEND_BLAS}) {
        std::vector<float> c(m * n, 1.0f);
        int status = seq4j_matmul(c.data(), a.data(), b.data(), m, n, k, ta, tb, 0.5f, 2.0f, backend);
        check(status == SEQ4J_OK, std::string("matmul status: ") + seq4j_last_error());
        double worst = 0;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < k; ++p)
              sum += double(ta ? a[p * m + i] : a[i * k + p]) * double(tb ? b[j * k + p] : b[p * n + j]);
            worst = std::fmax(worst, std::fabs(0.5 * sum + 2.0 - c[i * n + j]));
          }
        check(worst < 1e-4, "backend " + std::to_string(backend) + " shape " + std::to_string(m) +
                                "x" + std::to_string(n) + "x" + std::to_string(k) +
                                " error " + std::to_string(worst));
      }
    }
  }
}

void test_runtime_info_reports_libraries() {
  int64_t needed = 0;
  check(seq4j_runtime_info(nullptr, 0, &needed) == SEQ4J_OK && needed > 1, "size query");
  std::vector<char> text(static_cast<size_t>(needed));
  check(seq4j_runtime_info(text.data(), needed, &needed) == SEQ4J_OK, "runtime info");
  check(std::strstr(text.data(), "onednn.version=") != nullptr, "names oneDNN");
  check(std::strstr(text.data(), "openblas.core=") != nullptr, "names OpenBLAS");
}

}  // namespace

int main() {
  test_invalid_arguments_return_status_and_message();
  test_matmul_backends_match_double_reference();
  test_runtime_info_reports_libraries();
  std::printf("%s: %d failed\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
