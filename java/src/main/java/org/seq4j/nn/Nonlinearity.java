package org.seq4j.nn;

import java.util.function.UnaryOperator;
import org.seq4j.Tensor;

/**
 * An elementwise function as a module, for {@link Sequential}: PyTorch's {@code nn.ReLU()}, {@code
 * nn.Tanh()}, {@code nn.Sigmoid()}, {@code nn.GELU()}, {@code nn.Softmax(dim)} and {@code
 * nn.LogSoftmax(dim)}. It has no parameters; its forward is the tensor op of the same name and
 * takes part in autograd as that op does.
 */
public final class Nonlinearity extends Module implements Layer {
  private final String name;
  private final UnaryOperator<Tensor> function;

  private Nonlinearity(String name, UnaryOperator<Tensor> function) {
    this.name = name;
    this.function = function;
  }

  /** {@code max(x, 0)}. */
  public static Nonlinearity relu() {
    return new Nonlinearity("ReLU()", Tensor::relu);
  }

  /** {@code tanh(x)}. */
  public static Nonlinearity tanh() {
    return new Nonlinearity("Tanh()", Tensor::tanh);
  }

  /** {@code 1 / (1 + exp(-x))}. */
  public static Nonlinearity sigmoid() {
    return new Nonlinearity("Sigmoid()", Tensor::sigmoid);
  }

  /** {@code x·Φ(x)} with the Gaussian CDF (PyTorch's default, exact GELU). */
  public static Nonlinearity gelu() {
    return new Nonlinearity("GELU()", Tensor::gelu);
  }

  /** The softmax over dimension {@code dim} (negative counts from the end). */
  public static Nonlinearity softmax(int dim) {
    return new Nonlinearity("Softmax(dim=" + dim + ")", x -> x.softmax(dim));
  }

  /** The log-softmax over dimension {@code dim} (negative counts from the end). */
  public static Nonlinearity logSoftmax(int dim) {
    return new Nonlinearity("LogSoftmax(dim=" + dim + ")", x -> x.logSoftmax(dim));
  }

  /** The function of {@code input}, in its arena. */
  @Override
  public Tensor forward(Tensor input) {
    if (input == null) {
      throw new NullPointerException("input");
    }
    return function.apply(input);
  }

  @Override
  public String toString() {
    return name;
  }
}
