package org.seq4j.nn;

import java.lang.foreign.Arena;
import java.util.List;
import org.seq4j.Tensor;
import org.seq4j.internal.AbiConstants;
import org.seq4j.internal.Checks;
import org.seq4j.internal.NativeBindings;
import org.seq4j.Autograd;

/** Elementwise activations with their derivatives, as PyTorch's {@code ReLU} and {@code GELU}. */
public enum Activation {
  /** {@code max(x, 0)}. */
  RELU(AbiConstants.ACTIVATION_RELU),
  /** {@code x·Φ(x)} with the Gaussian CDF Φ (PyTorch's default GELU). */
  GELU(AbiConstants.ACTIVATION_GELU),
  /** {@code 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))} (PyTorch's {@code approximate='tanh'}). */
  GELU_TANH(AbiConstants.ACTIVATION_GELU_TANH);

  private final int code;

  Activation(int code) {
    this.code = code;
  }

  /** {@code f(x)} in a new tensor in {@code arena}. */
  public Tensor forward(Arena arena, Tensor x) {
    if (x == null) {
      throw new NullPointerException("x");
    }
    Checks.usable(x.segment(), "x");
    Tensor out = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.activationForward(out.segment(), x.segment(), x.size(), code);
    Autograd.record(name() + ".forward", List.of(x), List.of(out), List.of(x),
        (scratch, gradients) -> new Tensor[] {
            gradients[0] == null ? null : backward(scratch, x, gradients[0])});
    return out;
  }

  /**
   * Whether f' can be read from f's output as well as from its input: for ReLU, y > 0 exactly
   * where x > 0 (NaN and -0 included), so a layer may keep only y for its backward.
   */
  boolean derivativeFromOutput() {
    return this == RELU;
  }

  /** f(x) written over x itself, recording nothing: for layers that keep only the output. */
  Tensor forwardInPlace(Tensor x) {
    Checks.usable(x.segment(), "x");
    NativeBindings.activationForward(x.segment(), x.segment(), x.size(), code);
    x.markChanged();
    return x;
  }

  /**
   * f(x) for a layer's forward, and the tensor its backward will read f' from: for ReLU the output
   * computed over x (x is not kept), else a new output beside x. Records nothing.
   */
  Tensor[] forwardForLayer(Arena arena, Tensor x) {
    if (derivativeFromOutput()) {
      Tensor y = forwardInPlace(x);
      return new Tensor[] {y, y};
    }
    Checks.usable(x.segment(), "x");
    Tensor y = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.activationForward(y.segment(), x.segment(), x.size(), code);
    return new Tensor[] {y, x};
  }

  /** {@code gradOutput · f'(x)} for the forward's input {@code x}. */
  public Tensor backward(Arena arena, Tensor x, Tensor gradOutput) {
    if (x == null) {
      throw new NullPointerException("x");
    }
    if (gradOutput == null) {
      throw new NullPointerException("gradOutput");
    }
    if (!gradOutput.shape().equals(x.shape())) {
      throw new IllegalArgumentException("gradOutput: expected shape " + x.shape()
          + " (the input's), got " + gradOutput.shape());
    }
    Checks.usable(x.segment(), "x");
    Checks.usable(gradOutput.segment(), "gradOutput");
    Tensor dx = Tensor.uninitialized(arena, x.shape().dims());
    NativeBindings.activationBackward(dx.segment(), gradOutput.segment(), x.segment(), x.size(),
        code);
    return dx;
  }
}
