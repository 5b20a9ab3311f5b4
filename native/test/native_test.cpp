// Tests of the C boundary itself: statuses, error text, no exception escaping, both matmul
// backends against a naive double-precision product, and repeated recurrent backwards. The
// numerical suite lives in Java.
#include <algorithm>
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

// max |a[i] - factor * b[i]|, element by element (a plain loop: GCC 12 for AArch64 fails on this
// one as a vectorized fmax reduction at -O3).
double largest_difference(const std::vector<float> &a, const std::vector<float> &b, float factor) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double difference = std::fabs(double(a[i]) - double(factor * b[i]));
    if (difference > worst) worst = difference;
  }
  return worst;
}

// A second backward of the same training forward gives the same gradients on both backends,
// although oneDNN's backward overwrites part of its workspace (the backend recomputes it).
void test_a_second_backward_equals_the_first() {
  struct Case {
    int32_t cell, directions, peephole;
    int64_t hidden;
  };
  const Case cases[] = {{SEQ4J_CELL_LSTM, 1, 0, 6},  {SEQ4J_CELL_LSTM, 2, 1, 37},
                        {SEQ4J_CELL_GRU, 2, 0, 35},  {SEQ4J_CELL_RNN_TANH, 1, 0, 40},
                        {SEQ4J_CELL_LSTM, 1, 0, 64}};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-0.5f, 0.5f);
  auto random = [&](int64_t size) {
    std::vector<float> v(size);
    for (auto &x : v) x = uniform(rng);
    return v;
  };
  for (const Case &c : cases) {
    const int64_t t = 9, n = 12, in = 7, h = c.hidden, d = c.directions;
    const int64_t g = (c.cell == SEQ4J_CELL_LSTM ? 4 : c.cell == SEQ4J_CELL_GRU ? 3 : 1) * h;
    seq4j_rnn_layer_desc desc{c.cell, c.directions, in, h, 0, c.peephole, 1};
    seq4j_rnn_layer *layer = nullptr;
    check(seq4j_rnn_layer_create(&layer, &desc) == SEQ4J_OK, "create a layer");
    // parameters and their gradients, per direction: w_ih, w_hh, b_ih, b_hh, w_ci, w_cf, w_co
    const int64_t sizes[7] = {g * in, g * h, g, g, h, h, h};
    std::vector<std::vector<float>> params, grads;
    std::vector<seq4j_rnn_weights> weights(d), gradients(d);
    for (int64_t k = 0; k < d; ++k)
      for (int64_t p = 0; p < 7; ++p) {
        params.push_back(random(sizes[p]));
        grads.push_back(std::vector<float>(sizes[p], 0.0f));
      }
    for (int64_t k = 0; k < d; ++k) {
      auto at = [&](std::vector<std::vector<float>> &v, int64_t p) { return v[k * 7 + p].data(); };
      weights[k] = {at(params, 0), at(params, 1), at(params, 2), at(params, 3), nullptr,
                    c.peephole ? at(params, 4) : nullptr, c.peephole ? at(params, 5) : nullptr,
                    c.peephole ? at(params, 6) : nullptr};
      gradients[k] = {at(grads, 0), at(grads, 1), at(grads, 2), at(grads, 3), nullptr,
                      c.peephole ? at(grads, 4) : nullptr, c.peephole ? at(grads, 5) : nullptr,
                      c.peephole ? at(grads, 6) : nullptr};
    }
    std::vector<float> x = random(t * n * in), grad_output = random(t * n * d * h);
    for (int backend : {SEQ4J_BACKEND_ONEDNN, SEQ4J_BACKEND_BLAS}) {
      const std::string name = std::string(backend == SEQ4J_BACKEND_ONEDNN ? "oneDNN" : "BLAS") +
                               " cell " + std::to_string(c.cell) + " D=" + std::to_string(d);
      for (auto &grad : grads) std::fill(grad.begin(), grad.end(), 0.0f);
      int64_t bytes = 0;
      check(seq4j_rnn_layer_workspace_size(layer, backend, nullptr, t, n, &bytes) == SEQ4J_OK,
            name + " workspace size");
      std::vector<char> workspace(static_cast<size_t>(bytes));
      std::vector<float> output(t * n * d * h), h_n(d * n * h), c_n(d * n * h);
      check(seq4j_rnn_layer_forward(layer, backend, weights.data(), -1, output.data(), h_n.data(),
                                    c_n.data(), workspace.data(), bytes, x.data(), nullptr,
                                    nullptr, nullptr, t, n) == SEQ4J_OK,
            name + " training forward: " + seq4j_last_error());
      std::vector<float> first_input;
      std::vector<std::vector<float>> first_grads;
      for (int call = 0; call < 2; ++call) {
        std::vector<float> grad_input(t * n * in);
        check(seq4j_rnn_layer_backward(layer, backend, weights.data(), gradients.data(),
                                       grad_input.data(), nullptr, nullptr, grad_output.data(),
                                       nullptr, nullptr, workspace.data(), bytes, x.data(),
                                       nullptr, nullptr, output.data(), h_n.data(), c_n.data(),
                                       nullptr, t, n) == SEQ4J_OK,
              name + " backward: " + seq4j_last_error());
        if (call == 0) {
          first_input = grad_input;
          first_grads = grads;
          continue;
        }
        double worst = largest_difference(grad_input, first_input, 1.0f);
        for (size_t p = 0; p < grads.size(); ++p)
          worst = std::max(worst, largest_difference(grads[p], first_grads[p], 2.0f));
        check(worst < 1e-5, name + ": the second backward differs from the first by " +
                                std::to_string(worst));
      }
    }
    check(seq4j_rnn_layer_destroy(layer) == SEQ4J_OK, "destroy");
  }
}

}  // namespace

int main() {
  test_invalid_arguments_return_status_and_message();
  test_matmul_backends_match_double_reference();
  test_runtime_info_reports_libraries();
  test_a_second_backward_equals_the_first();
  std::printf("%s: %d failed\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
