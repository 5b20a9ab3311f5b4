// Tests of the C boundary itself: statuses, error text, no exception escaping, both matmul
// backends against a naive double-precision product, and repeated recurrent backwards. The
// numerical suite lives in Java; the few kernel checks below (LSTM and GRU forward on both
// backends, attention forward and backward) are what a cross-built platform runs under qemu, where
// the Java suite cannot run. Keep them small: under qemu-aarch64 the whole file takes seconds.
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
  check(seq4j_rnn_layer_set_step_weights(nullptr, SEQ4J_STEP_WEIGHTS_BF16) ==
            SEQ4J_ERR_INVALID_ARGUMENT,
        "step weights of a NULL layer rejected");
  seq4j_rnn_layer_desc desc{SEQ4J_CELL_LSTM, 1, 3, 4, 0, 0, 1};
  seq4j_rnn_layer *layer = nullptr;
  check(seq4j_rnn_layer_create(&layer, &desc) == SEQ4J_OK, "an LSTM layer");
  check(seq4j_rnn_layer_set_step_weights(layer, 2) == SEQ4J_ERR_INVALID_ARGUMENT &&
            std::string(seq4j_last_error()).find("got 2") != std::string::npos,
        std::string("unknown step-weight storage named, got: ") + seq4j_last_error());
  check(seq4j_rnn_layer_set_step_weights(layer, SEQ4J_STEP_WEIGHTS_BF16) == SEQ4J_OK,
        "bf16 step weights accepted");
  seq4j_rnn_layer_destroy(layer);
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

// An empty product (k = 0) gives c = beta * c on every backend, beta = 0 without reading c.
void test_empty_product_on_every_backend() {
  for (int backend : {SEQ4J_BACKEND_AUTO, SEQ4J_BACKEND_ONEDNN, SEQ4J_BACKEND_BLAS}) {
    for (int trans = 0; trans < 4; ++trans) {
      std::vector<float> c(6, std::nanf(""));
      int status = seq4j_matmul(c.data(), nullptr, nullptr, 2, 3, 0, trans & 1, trans & 2, 1.0f,
                                0.0f, backend);
      check(status == SEQ4J_OK, std::string("k = 0 status: ") + seq4j_last_error());
      bool zeros = true;
      for (float v : c) zeros = zeros && v == 0.0f;
      check(zeros, "k = 0, beta = 0 gives zeros on backend " + std::to_string(backend));
      std::vector<float> d = {1, 2, 3, 4, 5, 6};
      status = seq4j_matmul(d.data(), nullptr, nullptr, 2, 3, 0, trans & 1, trans & 2, 1.0f, 0.5f,
                            backend);
      check(status == SEQ4J_OK && d[0] == 0.5f && d[5] == 3.0f,
            "k = 0 scales c by beta on backend " + std::to_string(backend));
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


double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<float> random_vector(std::mt19937 &rng, size_t n, float range = 1.0f) {
  std::uniform_real_distribution<float> uniform(-range, range);
  std::vector<float> v(n);
  for (auto &x : v) x = uniform(rng);
  return v;
}

double max_difference(const std::vector<float> &a, const std::vector<double> &b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double difference = std::fabs(double(a[i]) - b[i]);
    if (std::isnan(difference)) return INFINITY;
    if (difference > worst) worst = difference;
  }
  return worst;
}

// One unidirectional layer, PyTorch's equations and gate orders (LSTM i, f, g, o; GRU r, z, n with
// n = tanh(W_in x + b_in + r * (W_hn h + b_hn))), in double, loop by loop.
void recurrent_reference(int32_t cell, const std::vector<float> &x, const std::vector<float> &w_ih,
                         const std::vector<float> &w_hh, const std::vector<float> &b_ih,
                         const std::vector<float> &b_hh, int64_t t_len, int64_t n, int64_t in,
                         int64_t h, std::vector<double> &out, std::vector<double> &h_n,
                         std::vector<double> &c_n) {
  const int64_t gates = cell == SEQ4J_CELL_LSTM ? 4 : 3;
  std::vector<double> hs(n * h, 0.0), cs(n * h, 0.0), xg(gates * h), hg(gates * h);
  out.assign(t_len * n * h, 0.0);
  for (int64_t t = 0; t < t_len; ++t)
    for (int64_t b = 0; b < n; ++b) {
      for (int64_t g = 0; g < gates * h; ++g) {
        double sx = b_ih[g], sh = b_hh[g];
        for (int64_t i = 0; i < in; ++i) sx += double(w_ih[g * in + i]) * x[(t * n + b) * in + i];
        for (int64_t j = 0; j < h; ++j) sh += double(w_hh[g * h + j]) * hs[b * h + j];
        xg[g] = sx;
        hg[g] = sh;
      }
      for (int64_t j = 0; j < h; ++j) {
        double &hj = hs[b * h + j];
        if (cell == SEQ4J_CELL_LSTM) {
          const double i_gate = sigmoid(xg[j] + hg[j]), f_gate = sigmoid(xg[h + j] + hg[h + j]);
          const double g_gate = std::tanh(xg[2 * h + j] + hg[2 * h + j]);
          const double o_gate = sigmoid(xg[3 * h + j] + hg[3 * h + j]);
          double &cj = cs[b * h + j];
          cj = f_gate * cj + i_gate * g_gate;
          hj = o_gate * std::tanh(cj);
        } else {
          const double r = sigmoid(xg[j] + hg[j]), z = sigmoid(xg[h + j] + hg[h + j]);
          const double candidate = std::tanh(xg[2 * h + j] + r * hg[2 * h + j]);
          hj = (1 - z) * candidate + z * hj;
        }
      }
      for (int64_t j = 0; j < h; ++j) out[(t * n + b) * h + j] = hs[b * h + j];
    }
  h_n = hs;
  c_n = cs;
}

void test_recurrent_forward_matches_reference() {
  std::mt19937 rng(11);
  const int64_t t_len = 5, n = 3, in = 7, h = 9;
  for (int32_t cell : {SEQ4J_CELL_LSTM, SEQ4J_CELL_GRU}) {
    const int64_t gates = cell == SEQ4J_CELL_LSTM ? 4 : 3;
    const char *name = cell == SEQ4J_CELL_LSTM ? "LSTM" : "GRU";
    auto x = random_vector(rng, t_len * n * in);
    auto w_ih = random_vector(rng, gates * h * in, 0.4f), w_hh = random_vector(rng, gates * h * h, 0.4f);
    auto b_ih = random_vector(rng, gates * h, 0.2f), b_hh = random_vector(rng, gates * h, 0.2f);
    std::vector<double> out_ref, h_ref, c_ref;
    recurrent_reference(cell, x, w_ih, w_hh, b_ih, b_hh, t_len, n, in, h, out_ref, h_ref, c_ref);
    seq4j_rnn_layer_desc desc{};
    desc.cell = cell;
    desc.directions = 1;
    desc.input_size = in;
    desc.hidden_size = h;
    desc.bias = 1;
    seq4j_rnn_layer *layer = nullptr;
    check(seq4j_rnn_layer_create(&layer, &desc) == SEQ4J_OK,
          std::string(name) + " create: " + seq4j_last_error());
    if (layer == nullptr) continue;
    seq4j_rnn_weights weights{};
    weights.weight_ih = w_ih.data();
    weights.weight_hh = w_hh.data();
    weights.bias_ih = b_ih.data();
    weights.bias_hh = b_hh.data();
    for (int backend : {SEQ4J_BACKEND_ONEDNN, SEQ4J_BACKEND_BLAS}) {
      const std::string what = std::string(name) + " backend " + std::to_string(backend);
      std::vector<float> out(t_len * n * h, -7.0f), h_n(n * h, -7.0f), c_n(n * h, -7.0f);
      const int status = seq4j_rnn_layer_forward(
          layer, backend, &weights, 1, out.data(), h_n.data(),
          cell == SEQ4J_CELL_LSTM ? c_n.data() : nullptr, nullptr, 0, x.data(), nullptr, nullptr,
          nullptr, t_len, n);
      check(status == SEQ4J_OK, what + " forward: " + seq4j_last_error());
      const double out_error = max_difference(out, out_ref), h_error = max_difference(h_n, h_ref);
      check(out_error < 1e-4, what + " output error " + std::to_string(out_error));
      check(h_error < 1e-4, what + " h_n error " + std::to_string(h_error));
      if (cell == SEQ4J_CELL_LSTM) {
        const double c_error = max_difference(c_n, c_ref);
        check(c_error < 1e-4, what + " c_n error " + std::to_string(c_error));
      }
    }
    check(seq4j_rnn_layer_destroy(layer) == SEQ4J_OK, "destroy");
  }
}

// out = softmax(scale · q kᵀ, causal) v per (sample, query head), grouped-query heads, in double.
std::vector<double> attention_reference(const std::vector<double> &q, const std::vector<double> &k,
                                        const std::vector<double> &v, const seq4j_attention_desc &d) {
  std::vector<double> out(d.batch * d.query_heads * d.query_length * d.value_dim, 0.0);
  std::vector<double> p(d.kv_length);
  const int64_t group = d.query_heads / d.kv_heads;
  for (int64_t b = 0; b < d.batch; ++b)
    for (int64_t hq = 0; hq < d.query_heads; ++hq) {
      const int64_t hk = hq / group;
      for (int64_t i = 0; i < d.query_length; ++i) {
        const double *qi = &q[((b * d.query_heads + hq) * d.query_length + i) * d.head_dim];
        double max = -INFINITY, sum = 0;
        for (int64_t j = 0; j < d.kv_length; ++j) {
          p[j] = -INFINITY;
          if (d.causal && j > i) continue;
          const double *kj = &k[((b * d.kv_heads + hk) * d.kv_length + j) * d.head_dim];
          double s = 0;
          for (int64_t e = 0; e < d.head_dim; ++e) s += qi[e] * kj[e];
          p[j] = d.scale * s;
          if (p[j] > max) max = p[j];
        }
        for (int64_t j = 0; j < d.kv_length; ++j) {
          p[j] = std::exp(p[j] - max);
          sum += p[j];
        }
        double *o = &out[((b * d.query_heads + hq) * d.query_length + i) * d.value_dim];
        for (int64_t j = 0; j < d.kv_length; ++j)
          for (int64_t e = 0; e < d.value_dim; ++e)
            o[e] += p[j] / sum * v[((b * d.kv_heads + hk) * d.kv_length + j) * d.value_dim + e];
      }
    }
  return out;
}

double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

std::vector<double> widen(const std::vector<float> &x) { return std::vector<double>(x.begin(), x.end()); }

// Forward against the reference; backward against a central difference of the reference along one
// random direction of (q, k, v): d/de sum(d_out · out(x + e u)) = <dq, uq> + <dk, uk> + <dv, uv>.
void test_attention_matches_reference() {
  std::mt19937 rng(5);
  for (int32_t causal : {0, 1}) {
    seq4j_attention_desc d{};
    d.batch = 2;
    d.query_heads = 4;
    d.kv_heads = 2;
    d.query_length = causal ? 7 : 5;  // causal: every query sees key 0 at least
    d.kv_length = 7;
    d.head_dim = 8;
    d.value_dim = 6;
    d.scale = 1.0f / std::sqrt(8.0f);
    d.causal = causal;
    d.mask_kind = SEQ4J_MASK_NONE;
    const std::string what = std::string("attention causal=") + std::to_string(causal);
    auto q = random_vector(rng, d.batch * d.query_heads * d.query_length * d.head_dim);
    auto k = random_vector(rng, d.batch * d.kv_heads * d.kv_length * d.head_dim);
    auto v = random_vector(rng, d.batch * d.kv_heads * d.kv_length * d.value_dim);
    auto d_out = random_vector(rng, d.batch * d.query_heads * d.query_length * d.value_dim);
    std::vector<float> out(d_out.size()), lse(d.batch * d.query_heads * d.query_length);
    check(seq4j_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), nullptr,
                                  nullptr, &d) == SEQ4J_OK,
          what + " forward: " + seq4j_last_error());
    const double error = max_difference(out, attention_reference(widen(q), widen(k), widen(v), d));
    check(error < 2e-5, what + " forward error " + std::to_string(error));

    std::vector<float> dq(q.size()), dk(k.size()), dv(v.size());
    check(seq4j_attention_backward(dq.data(), dk.data(), dv.data(), d_out.data(), q.data(),
                                   k.data(), v.data(), out.data(), lse.data(), nullptr, nullptr,
                                   &d) == SEQ4J_OK,
          what + " backward: " + seq4j_last_error());
    const auto uq = widen(random_vector(rng, q.size())), uk = widen(random_vector(rng, k.size())),
               uv = widen(random_vector(rng, v.size()));
    const auto d_out_wide = widen(d_out);
    auto loss = [&](double e) {
      std::vector<double> qe = widen(q), ke = widen(k), ve = widen(v);
      for (size_t i = 0; i < qe.size(); ++i) qe[i] += e * uq[i];
      for (size_t i = 0; i < ke.size(); ++i) ke[i] += e * uk[i];
      for (size_t i = 0; i < ve.size(); ++i) ve[i] += e * uv[i];
      return dot(attention_reference(qe, ke, ve, d), d_out_wide);
    };
    const double eps = 1e-4, numeric = (loss(eps) - loss(-eps)) / (2 * eps);
    const double analytic = dot(widen(dq), uq) + dot(widen(dk), uk) + dot(widen(dv), uv);
    const double relative = std::fabs(analytic - numeric) / std::fmax(1e-6, std::fabs(numeric));
    check(relative < 1e-3, what + " backward: directional derivative " + std::to_string(analytic) +
                               ", central difference " + std::to_string(numeric));
  }
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
      if (backend == SEQ4J_BACKEND_ONEDNN) {
        // a workspace no training forward filled is refused (its header says how it was split)
        std::vector<float> grad_input(t * n * in);
        const int status = seq4j_rnn_layer_backward(
            layer, backend, weights.data(), gradients.data(), grad_input.data(), nullptr, nullptr,
            grad_output.data(), nullptr, nullptr, workspace.data(), bytes, x.data(), nullptr,
            nullptr, output.data(), h_n.data(), c_n.data(), nullptr, t, n);
        check(status == SEQ4J_ERR_INVALID_ARGUMENT &&
                  std::string(seq4j_last_error()).find("not filled by a training forward") !=
                      std::string::npos,
              name + " backward of an unfilled workspace: " + seq4j_last_error());
      }
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

// NaN in attention: a NaN query gives a NaN row (not the zero row of "every key masked"), a NaN
// key under a causal mask poisons every row of its head (NaN + -inf = NaN, as PyTorch adds its
// mask), a fully masked row stays zero with lse = +inf; on every kernel copy this CPU runs.
void test_attention_nan_propagates_on_every_copy() {
  for (int32_t isa : {1, 2, 3}) {
    if (seq4j_select_kernels(isa, nullptr) != SEQ4J_OK) continue;  // this CPU lacks the copy
    std::mt19937 rng(11);
    seq4j_attention_desc d{};
    d.batch = 1;
    d.query_heads = 1;
    d.kv_heads = 1;
    d.query_length = 70;
    d.kv_length = 140;
    d.head_dim = 16;
    d.value_dim = 16;
    d.scale = 0.25f;
    const std::string what = "attention NaN, isa " + std::to_string(isa);
    auto q = random_vector(rng, d.query_length * d.head_dim);
    auto k = random_vector(rng, d.kv_length * d.head_dim);
    auto v = random_vector(rng, d.kv_length * d.value_dim);
    std::vector<float> out(d.query_length * d.value_dim), lse(d.query_length);
    std::vector<float> padding(d.kv_length, 0.0f);
    q[3 * d.head_dim + 5] = std::nanf("");
    check(seq4j_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), nullptr,
                                  nullptr, &d) == SEQ4J_OK, what + ": " + seq4j_last_error());
    check(std::isnan(out[3 * d.value_dim]) && std::isnan(lse[3]), what + ": a NaN query's row is NaN");
    check(std::isfinite(out[4 * d.value_dim]), what + ": the other rows are not");
    std::fill(padding.begin(), padding.end(), 1.0f);  // every key ignored: fully masked rows
    check(seq4j_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), nullptr,
                                  padding.data(), &d) == SEQ4J_OK, what + ": " + seq4j_last_error());
    check(std::isnan(out[3 * d.value_dim]), what + ": NaN + -inf stays NaN");
    check(out[4 * d.value_dim] == 0.0f && std::isinf(lse[4]) && lse[4] > 0,
          what + ": a fully masked row is zero, lse +inf");
    q[3 * d.head_dim + 5] = 0.5f;
    k[130 * d.head_dim] = std::nanf("");
    d.causal = 1;
    check(seq4j_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), nullptr,
                                  nullptr, &d) == SEQ4J_OK, what + ": " + seq4j_last_error());
    bool all_nan = true;
    for (float x : out) all_nan = all_nan && std::isnan(x);
    check(all_nan, what + ": a NaN key above the causal diagonal poisons every row");
  }
  seq4j_select_kernels(0, nullptr);
}

}  // namespace

int main() {
  test_invalid_arguments_return_status_and_message();
  test_matmul_backends_match_double_reference();
  test_empty_product_on_every_backend();
  test_runtime_info_reports_libraries();
  test_recurrent_forward_matches_reference();
  test_attention_matches_reference();
  test_a_second_backward_equals_the_first();
  test_attention_nan_propagates_on_every_copy();
  std::printf("%s: %d failed\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
