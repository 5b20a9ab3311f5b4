package org.seq4j.spark;

import java.io.Serializable;
import java.util.List;
import org.seq4j.nn.Parameter;
import org.seq4j.train.Optimizer;

/**
 * Builds the optimizer of each training worker over its copy of the parameters, e.g. {@code ps ->
 * Adam.builder(ps).learningRate(1e-2).build()}. Every worker builds the same one and applies it
 * to the same all-reduced gradients, so the replicas stay identical.
 */
@FunctionalInterface
public interface OptimizerFactory extends Serializable {
  /** A new optimizer over {@code parameters}; the caller closes it. */
  Optimizer create(List<Parameter> parameters);
}
