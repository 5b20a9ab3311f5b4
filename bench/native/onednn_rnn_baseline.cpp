// The yardstick for seq4j's recurrent layers: oneDNN's own LSTM/GRU/RNN primitives called from
// C++ the way oneDNN's examples do (formats chosen by the primitive, weights reordered from the
// plain ldigo layout once per training step, workspace from the forward reused by the backward),
// on the shapes of DESIGN.md. Prints GFLOP/s of forward (inference) and forward+backward.
//
//   seq4j_onednn_rnn_baseline [lstm|lstm_peephole|gru|rnn] T N I H [repetitions]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl.hpp"

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

memory filled(const memory::desc &desc, const dnnl::engine &engine, std::mt19937 &rng) {
  memory m(desc, engine);
  std::uniform_real_distribution<float> uniform(-0.1f, 0.1f);
  float *data = static_cast<float *>(m.get_data_handle());
  for (size_t i = 0; i < desc.get_size() / sizeof(float); ++i) data[i] = uniform(rng);
  return m;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s lstm|lstm_peephole|gru|rnn T N I H [repetitions]\n", argv[0]);
    return 2;
  }
  const std::string cell = argv[1];
  const int64_t T = std::atoll(argv[2]), N = std::atoll(argv[3]), I = std::atoll(argv[4]),
                H = std::atoll(argv[5]);
  const int repetitions = argc > 6 ? std::atoi(argv[6]) : 10;
  const bool lstm = cell.rfind("lstm", 0) == 0, gru = cell == "gru", peephole = cell == "lstm_peephole";
  const int64_t G = lstm ? 4 : gru ? 3 : 1, Gb = gru ? 4 : G;
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  std::mt19937 rng(1);
  const auto dir = dnnl::rnn_direction::unidirectional_left2right;
  memory::desc src_layer({T, N, I}, dt::f32, tag::tnc), dst_layer({T, N, H}, dt::f32, tag::tnc);
  memory::desc iter({1, 1, N, H}, dt::f32, tag::ldnc);
  memory::desc w_layer_plain({1, 1, I, G, H}, dt::f32, tag::ldigo);
  memory::desc w_iter_plain({1, 1, H, G, H}, dt::f32, tag::ldigo);
  memory::desc w_any_layer({1, 1, I, G, H}, dt::f32, tag::any), w_any_iter({1, 1, H, G, H}, dt::f32, tag::any);
  memory::desc peep = peephole ? memory::desc({1, 1, 3, H}, dt::f32, tag::ldgo) : memory::desc();
  memory::desc bias({1, 1, Gb, H}, dt::f32, tag::ldgo);

  auto forward_pd = [&](dnnl::prop_kind prop) -> dnnl::primitive_desc {
    if (lstm)
      return dnnl::lstm_forward::primitive_desc(engine, prop, dir, src_layer, iter, iter, w_any_layer,
                                                w_any_iter, peep, memory::desc(), bias, dst_layer, iter, iter);
    if (gru)
      return dnnl::lbr_gru_forward::primitive_desc(engine, prop, dir, src_layer, iter, w_any_layer,
                                                   w_any_iter, bias, dst_layer, iter);
    return dnnl::vanilla_rnn_forward::primitive_desc(engine, prop, dnnl::algorithm::eltwise_tanh, dir,
                                                     src_layer, iter, w_any_layer, w_any_iter, bias,
                                                     dst_layer, iter);
  };
  auto inference = forward_pd(dnnl::prop_kind::forward_inference);
  auto training = forward_pd(dnnl::prop_kind::forward_training);
  dnnl::primitive_desc backward;
  if (lstm)
    backward = dnnl::lstm_backward::primitive_desc(
        engine, dnnl::prop_kind::backward, dir, src_layer, iter, iter, w_any_layer, w_any_iter, peep,
        memory::desc(), bias, dst_layer, iter, iter, src_layer, iter, iter, w_any_layer, w_any_iter,
        peep, memory::desc(), bias, dst_layer, iter, iter,
        dnnl::lstm_forward::primitive_desc(training.get()));
  else if (gru)
    backward = dnnl::lbr_gru_backward::primitive_desc(
        engine, dnnl::prop_kind::backward, dir, src_layer, iter, w_any_layer, w_any_iter, bias,
        dst_layer, iter, src_layer, iter, w_any_layer, w_any_iter, bias, dst_layer, iter,
        dnnl::lbr_gru_forward::primitive_desc(training.get()));
  else
    backward = dnnl::vanilla_rnn_backward::primitive_desc(
        engine, dnnl::prop_kind::backward, dnnl::algorithm::eltwise_tanh, dir, src_layer, iter,
        w_any_layer, w_any_iter, bias, dst_layer, iter, src_layer, iter, w_any_layer, w_any_iter,
        bias, dst_layer, iter, dnnl::vanilla_rnn_forward::primitive_desc(training.get()));

  memory x = filled(src_layer, engine, rng), y(dst_layer, engine), h0 = filled(iter, engine, rng),
         c0 = filled(iter, engine, rng), hn(iter, engine), cn(iter, engine);
  memory wl = filled(w_layer_plain, engine, rng), wi = filled(w_iter_plain, engine, rng),
         b = filled(bias, engine, rng), wp = peephole ? filled(peep, engine, rng) : memory();
  memory dy = filled(dst_layer, engine, rng), dx(src_layer, engine), dh0(iter, engine), dc0(iter, engine);
  memory dhn = filled(iter, engine, rng), dcn = filled(iter, engine, rng), db(bias, engine);
  memory dwp = peephole ? memory(peep, engine) : memory();
  auto reordered = [&](const dnnl::primitive_desc &pd, int arg, memory &plain) {
    memory out(pd.query_md(dnnl::query::exec_arg_md, arg), engine);
    dnnl::reorder(plain, out).execute(stream, plain, out);
    return out;
  };
  memory dwl(backward.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_LAYER), engine);
  memory dwi(backward.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_WEIGHTS_ITER), engine);
  memory workspace(training.query_md(dnnl::query::exec_arg_md, DNNL_ARG_WORKSPACE), engine);

  dnnl::primitive inference_primitive(inference), training_primitive(training),
      backward_primitive(backward);
  auto run = [&](bool train) {
    const auto &pd = train ? training : inference;
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC_LAYER, x}, {DNNL_ARG_SRC_ITER, h0},
        {DNNL_ARG_WEIGHTS_LAYER, reordered(pd, DNNL_ARG_WEIGHTS_LAYER, wl)},
        {DNNL_ARG_WEIGHTS_ITER, reordered(pd, DNNL_ARG_WEIGHTS_ITER, wi)},
        {DNNL_ARG_BIAS, b}, {DNNL_ARG_DST_LAYER, y}, {DNNL_ARG_DST_ITER, hn}};
    if (lstm) { args[DNNL_ARG_SRC_ITER_C] = c0; args[DNNL_ARG_DST_ITER_C] = cn; }
    if (peephole) args[DNNL_ARG_WEIGHTS_PEEPHOLE] = wp;
    if (train) args[DNNL_ARG_WORKSPACE] = workspace;
    (train ? training_primitive : inference_primitive).execute(stream, args);
    if (train) {
      std::memset(dwl.get_data_handle(), 0, dwl.get_desc().get_size());
      std::memset(dwi.get_data_handle(), 0, dwi.get_desc().get_size());
      std::memset(db.get_data_handle(), 0, bias.get_size());
      std::unordered_map<int, memory> bargs = args;
      bargs[DNNL_ARG_WEIGHTS_LAYER] = reordered(backward, DNNL_ARG_WEIGHTS_LAYER, wl);
      bargs[DNNL_ARG_WEIGHTS_ITER] = reordered(backward, DNNL_ARG_WEIGHTS_ITER, wi);
      bargs[DNNL_ARG_DIFF_DST_LAYER] = dy; bargs[DNNL_ARG_DIFF_DST_ITER] = dhn;
      bargs[DNNL_ARG_DIFF_SRC_LAYER] = dx; bargs[DNNL_ARG_DIFF_SRC_ITER] = dh0;
      bargs[DNNL_ARG_DIFF_WEIGHTS_LAYER] = dwl; bargs[DNNL_ARG_DIFF_WEIGHTS_ITER] = dwi;
      bargs[DNNL_ARG_DIFF_BIAS] = db;
      if (lstm) { bargs[DNNL_ARG_DIFF_DST_ITER_C] = dcn; bargs[DNNL_ARG_DIFF_SRC_ITER_C] = dc0; }
      if (peephole) bargs[DNNL_ARG_DIFF_WEIGHTS_PEEPHOLE] = dwp;
      backward_primitive.execute(stream, bargs);
    }
    stream.wait();
  };
  const double forward_flop = 2.0 * T * N * (I + H) * G * H;
  for (bool train : {false, true}) {
    run(train);  // warm-up: JIT, page faults
    double best = 1e30, total = 0;
    for (int r = 0; r < repetitions; ++r) {
      auto start = std::chrono::steady_clock::now();
      run(train);
      double s = seconds_since(start);
      best = std::min(best, s);
      total += s;
    }
    const double flop = train ? 3 * forward_flop : forward_flop;
    std::printf("%s T=%lld N=%lld I=%lld H=%lld %s: mean %.2f ms, best %.2f ms, %.1f GFLOP/s (mean)\n",
                cell.c_str(), (long long)T, (long long)N, (long long)I, (long long)H,
                train ? "forward+backward" : "forward", 1e3 * total / repetitions, 1e3 * best,
                flop / (total / repetitions) / 1e9);
  }
  return 0;
}
