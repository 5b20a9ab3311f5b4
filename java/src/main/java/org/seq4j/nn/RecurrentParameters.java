package org.seq4j.nn;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.random.RandomGenerator;
import org.seq4j.Tensor;
import org.seq4j.internal.AbiLayouts.RecurrentWeight;
import org.seq4j.internal.RecurrentLayerHandles;

/**
 * A recurrent network's parameters under PyTorch's names ({@code weight_ih_l0}, {@code
 * bias_hh_l1_reverse}, ...), shapes and initialisation, and their wiring into the native weight
 * structs.
 */
final class RecurrentParameters {
  private RecurrentParameters() {}

  /** Every parameter in PyTorch's order, peepholes last within each direction. */
  static Map<String, Parameter> create(Arena arena, RecurrentConfig config) {
    Map<String, Parameter> created = new LinkedHashMap<>();
    long gateRows = config.cell().gates * config.hiddenSize();
    long outputSize = config.outputSize();
    // PyTorch's default: every parameter uniform in [-1/sqrt(hidden), 1/sqrt(hidden)].
    float bound = (float) (1.0 / Math.sqrt(config.hiddenSize()));
    RandomGenerator random = Seeds.generator(config.seed());
    for (int layer = 0; layer < config.numLayers(); layer++) {
      long layerInput = config.layerInputSize(layer);
      for (int direction = 0; direction < config.directions(); direction++) {
        String suffix = suffix(layer, direction);
        add(arena, created, "weight_ih" + suffix, random, bound, gateRows, layerInput);
        add(arena, created, "weight_hh" + suffix, random, bound, gateRows, outputSize);
        if (config.bias()) {
          add(arena, created, "bias_ih" + suffix, random, bound, gateRows);
          add(arena, created, "bias_hh" + suffix, random, bound, gateRows);
        }
        if (config.projSize() > 0) {
          add(arena, created, "weight_hr" + suffix, random, bound, config.projSize(),
              config.hiddenSize());
        }
        if (config.peephole()) {
          add(arena, created, "weight_ci" + suffix, random, bound, config.hiddenSize());
          add(arena, created, "weight_cf" + suffix, random, bound, config.hiddenSize());
          add(arena, created, "weight_co" + suffix, random, bound, config.hiddenSize());
        }
      }
    }
    return Collections.unmodifiableMap(created);
  }

  /** Points every weight struct of {@code handles} at the parameters and their gradients. */
  static void wire(RecurrentLayerHandles handles, RecurrentConfig config,
      Map<String, Parameter> parameters) {
    for (int layer = 0; layer < config.numLayers(); layer++) {
      for (int direction = 0; direction < config.directions(); direction++) {
        String suffix = suffix(layer, direction);
        for (RecurrentWeight weight : RecurrentWeight.values()) {
          Parameter parameter = parameters.get(weight.field() + suffix);
          MemorySegment data = parameter == null ? MemorySegment.NULL : parameter.data().segment();
          MemorySegment grad = parameter == null ? MemorySegment.NULL : parameter.grad().segment();
          handles.setWeight(layer, direction, weight, data, grad);
        }
      }
    }
  }

  private static String suffix(int layer, int direction) {
    return "_l" + layer + (direction == 1 ? "_reverse" : "");
  }

  private static void add(Arena arena, Map<String, Parameter> into, String name,
      RandomGenerator random, float bound, long... dims) {
    Tensor data = Tensor.zeros(arena, dims);
    for (long i = 0; i < data.size(); i++) {
      data.segment().setAtIndex(JAVA_FLOAT, i, (float) ((random.nextDouble() * 2 - 1) * bound));
    }
    into.put(name, new Parameter(name, data, Tensor.zeros(arena, dims)));
  }
}
