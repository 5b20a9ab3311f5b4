package org.seq4j.spark;

import java.io.Serializable;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Module;

/**
 * Builds the user's model on each JVM that needs it (the driver and every executor): a
 * serializable lambda or class, {@code () -> new Forecaster()}. The module it returns must also be
 * a {@link Layer}: its {@code forward(Tensor)} is the model's forward, given a time-major batch
 * {@code (T, N, C)} and returning {@code (N, K)} (or {@code (1, N, K)}) in the input's arena.
 *
 * <p>The factory fixes the architecture; the weights travel separately (broadcast safetensors
 * bytes), so it must build the same parameter names and shapes every time. Initial values do
 * not matter: they are overwritten.
 */
@FunctionalInterface
public interface ModelFactory extends Serializable {
  /** A new module of the model's architecture; the caller closes it. */
  Module create();
}
