package org.seq4j.spark;

import org.seq4j.Tensor;
import org.seq4j.nn.Layer;
import org.seq4j.nn.Linear;
import org.seq4j.nn.Lstm;
import org.seq4j.nn.Module;

/** The tests' model: an LSTM and a linear read-out of its last step, (T, N, C) to (N, 1). */
final class Forecaster extends Module implements Layer {
  final Lstm lstm;
  final Linear head;

  Forecaster(long features, long hidden, long seed) {
    lstm = register("lstm", Lstm.builder(features, hidden).seed(seed).build());
    head = register("head", new Linear(hidden, 1, true, seed + 1));
  }

  @Override
  public Tensor forward(Tensor x) {
    long steps = x.dim(0);
    Tensor out = lstm.forward(x).output();
    return head.forward(out.slice(steps - 1, steps).reshape(x.dim(1), out.dim(2)));
  }
}
