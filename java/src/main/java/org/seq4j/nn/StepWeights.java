package org.seq4j.nn;

/**
 * How a recurrent layer stores the weights it packs for the streaming {@link
 * RecurrentLayer#step step} and for small-batch inference (N &le; 8) on the {@link
 * org.seq4j.Backend#BLAS BLAS} backend. The parameters themselves stay float32, and training,
 * larger batches and the oneDNN backend always read them as they are.
 *
 * <p>At N = 1 a step streams every weight through the cores once (about 2 MiB at I = H = 256 for
 * an LSTM) and multiplies each by one input. {@link #BFLOAT16} rounds each weight to bfloat16
 * (round to nearest even: 8 significant bits, a relative error of at most 2<sup>-9</sup>), and
 * the inputs of the products ({@code [x; h]}) too, so that each product of two bfloat16 values is
 * exact in float32 and the products sum in float32, as AVX512_BF16's {@code vdpbf16ps} computes
 * them (used where the CPU has it; every other CPU computes the same products with float32
 * FMAs). The state stays float32. Against the float32 path the hidden state then drifts a little:
 * over 50 steps of an LSTM with I = H = 256, PyTorch's initialisation and inputs in [-1, 1], by
 * 8.7·10<sup>-4</sup> at most and 1.5·10<sup>-4</sup> on average (measured; {@code
 * StepWeightsTest} holds it below 5·10<sup>-3</sup> and 5·10<sup>-4</sup>). Whether that is
 * acceptable is the model's question, so it is opt-in.
 */
public enum StepWeights {
  /** The weights as they are (the default). */
  FLOAT32,
  /** Each weight rounded to bfloat16; float32 accumulation and state. */
  BFLOAT16
}
