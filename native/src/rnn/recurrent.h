// What the two implementations of the recurrent layers share: the sizes of a layer, the interface
// each backend implements (rnn_onednn.cpp: oneDNN's primitives; rnn_blas.cpp: OpenBLAS sgemm and
// seq4j's fused cell kernels; rnn_step.cpp: the BLAS backend's streaming step), and the argument
// checks both rely on (rnn.cpp, beside the C entry points).
#pragma once

#include <cstdint>
#include <memory>

#include "seq4j.h"

namespace seq4j {

struct RecurrentSizes {
  int cell;
  int64_t directions, input, hidden, output, proj, gates, bias_gates;
  bool peephole, bias;
  bool lstm() const { return cell == SEQ4J_CELL_LSTM; }
  bool gru() const { return cell == SEQ4J_CELL_GRU; }
  bool projection() const { return proj > 0; }
};

// One layer (one or two directions) on one backend. The arguments are those of the C functions of
// the same names in seq4j.h, already checked for NULL where the header says they must not be.
class RecurrentBackend {
 public:
  virtual ~RecurrentBackend() = default;
  virtual int64_t workspace_bytes(const int64_t *lengths, int64_t t, int64_t n) = 0;
  virtual void forward(const seq4j_rnn_weights *weights, int64_t version, float *output,
                       float *h_n, float *c_n, void *workspace, int64_t workspace_bytes,
                       const float *input, const float *h0, const float *c0,
                       const int64_t *lengths, int64_t t, int64_t n) = 0;
  virtual void backward(const seq4j_rnn_weights *weights, const seq4j_rnn_weights *grads,
                        float *grad_input, float *grad_h0, float *grad_c0,
                        const float *grad_output, const float *grad_h_n, const float *grad_c_n,
                        const void *workspace, int64_t workspace_bytes, const float *input,
                        const float *h0, const float *c0, const float *output, const float *h_n,
                        const float *c_n, const int64_t *lengths, int64_t t, int64_t n) = 0;
  // SEQ4J_STEP_WEIGHTS_*: how the weights packed for small-batch inference are stored (BLAS).
  virtual void set_step_weights(int32_t) {}
};

// A single step of one direction, the streaming path: h (N, Hout) and c (N, H) are read and
// overwritten in place. Only the BLAS backend has it.
class RecurrentStepper {
 public:
  virtual ~RecurrentStepper() = default;
  virtual void step(const seq4j_rnn_weights *weights, int64_t version, float *h, float *c,
                    const float *input, int64_t n) = 0;
  // SEQ4J_STEP_WEIGHTS_*: how the weights packed for the step are stored.
  virtual void set_step_weights(int32_t storage) = 0;
};

std::unique_ptr<RecurrentBackend> make_onednn_recurrent(const RecurrentSizes &sizes);
std::unique_ptr<RecurrentBackend> make_blas_recurrent(const RecurrentSizes &sizes);
std::unique_ptr<RecurrentStepper> make_recurrent_stepper(const RecurrentSizes &sizes);

// Fails with SEQ4J_ERR_INVALID_ARGUMENT unless every lengths[i] (when lengths is not NULL) is in
// [1, t].
void check_lengths(const int64_t *lengths, int64_t t, int64_t n);

// Fails unless a direction's pointer to a parameter (or its gradient) is set.
void require_weight(const char *name, int64_t direction, const float *pointer);

}  // namespace seq4j
