package org.seq4j.nn;

import java.util.concurrent.atomic.AtomicLong;
import org.seq4j.Shape;
import org.seq4j.Tensor;

/**
 * A trainable tensor of a layer, under its PyTorch name, with its gradient.
 *
 * <p>{@link #data()} and {@link #grad()} live as long as their layer. Backward passes <em>add</em>
 * into {@link #grad()}; call {@link #zeroGrad()} between steps. Layers convert their parameters
 * into internal layouts once and cache the result for inference: after writing into {@link
 * #data()} yourself (rather than through seq4j's optimizers or loaders), call {@link
 * #markChanged()} so the next inference call sees the new values. Training-mode calls always read
 * the current values.
 */
public final class Parameter {
  private final String name;
  private final Tensor data;
  private final Tensor grad;
  private final AtomicLong version; // shared with every renamed view of this parameter
  /** The module that registered it: kept reachable (not reclaimed) while the parameter is. */
  volatile Object owner;

  Parameter(String name, Tensor data, Tensor grad) {
    this(name, data, grad, new AtomicLong());
    data.requireGradInto(grad); // backward passes of the graph add into grad
  }

  private Parameter(String name, Tensor data, Tensor grad, AtomicLong version) {
    this.name = name;
    this.data = data;
    this.grad = grad;
    this.version = version;
  }



  /**
   * A parameter over tensors the caller owns (for models built from parts): {@code grad} must have
   * the shape of {@code data}, share no memory with it, and be writable (backward passes add into
   * it). {@code data} may be read-only for a frozen parameter used in inference; an optimizer
   * refuses it.
   */
  public static Parameter of(String name, Tensor data, Tensor grad) {
    java.util.Objects.requireNonNull(name, "name");
    java.util.Objects.requireNonNull(data, "data");
    java.util.Objects.requireNonNull(grad, "grad");
    if (!grad.shape().equals(data.shape())) {
      throw new IllegalArgumentException(
          "grad: expected shape " + data.shape() + " (the shape of data), got " + grad.shape());
    }
    org.seq4j.internal.Checks.usable(data.segment(), "data");
    org.seq4j.internal.Checks.writable(grad.segment(), "grad");
    org.seq4j.internal.Checks.disjoint(grad.segment(), "grad", data.segment(), "data");
    return new Parameter(name, data, grad);
  }

  /**
   * The same parameters under {@code prefix + name}, as PyTorch names the parameters of a
   * submodule: {@code prefixed("encoder.", layer.parameters())}. They share the tensors and the
   * change count with the originals, so an optimizer stepping the renamed ones is seen by the
   * layer's cached weights.
   */
  public static java.util.List<Parameter> prefixed(String prefix,
      java.util.List<Parameter> parameters) {
    java.util.List<Parameter> out = new java.util.ArrayList<>();
    for (Parameter p : parameters) {
      Parameter renamed = new Parameter(prefix + p.name, p.data, p.grad, p.version);
      renamed.owner = p.owner;
      out.add(renamed);
    }
    return out;
  }

  /** The PyTorch name, such as {@code weight_ih_l0} or {@code bias_hh_l1_reverse}. */
  public String name() {
    return name;
  }

  /** The values. */
  public Tensor data() {
    return data;
  }

  /** The accumulated gradient, same shape as {@link #data()}. */
  public Tensor grad() {
    return grad;
  }

  /** The shape. */
  public Shape shape() {
    return data.shape();
  }

  /** Sets the gradient to zero. */
  public void zeroGrad() {
    org.seq4j.internal.Checks.writable(grad.segment(), name, ".grad");
    grad.fill(0f);
  }

  /** Declares that {@link #data()} was modified, invalidating cached internal layouts. */
  public void markChanged() {
    version.incrementAndGet();
    data.markChanged();
  }

  /**
   * Whether backward passes compute this parameter's gradient (true unless frozen by {@link
   * #requiresGrad(boolean) requiresGrad(false)}).
   */
  public boolean requiresGrad() {
    return data.requiresGrad();
  }

  /**
   * Freezes ({@code false}) or unfreezes this parameter: a frozen one takes no part in the graph
   * and gets no gradient, as {@code param.requires_grad_(False)} in PyTorch. Returns this.
   */
  public Parameter requiresGrad(boolean on) {
    if (on) {
      data.requireGradInto(grad);
    } else {
      data.requiresGrad(false);
    }
    return this;
  }

  long version() {
    return version.get();
  }

  @Override
  public String toString() {
    return "Parameter[" + name + " " + data.shape() + "]";
  }
}
