package org.seq4j.internal;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.seq4j.internal.AbiLayouts.RecurrentWeight;

/**
 * The native side of one recurrent network: a {@code seq4j_rnn_layer} handle per stacked layer,
 * the {@code seq4j_rnn_weights} structs pointing at each layer's parameters and at their gradients,
 * and the two pointer arrays of the streaming step. Everything lives in the owner's arena: the
 * handles are destroyed when it closes, which cannot happen while a call uses them.
 *
 * <p>Tensors are passed as {@link MemorySegment}s; an absent one is {@link MemorySegment#NULL}.
 * Backends are {@code AbiConstants.BACKEND_*} codes.
 */
public final class RecurrentLayerHandles {
  private final int directions;
  private final MemorySegment[] handles;
  private final MemorySegment[] weights;
  private final MemorySegment[] gradients;
  /** The streaming step's arguments: every layer's handle, and its weights struct. */
  private final MemorySegment stepHandles;
  private final MemorySegment stepWeights;

  /**
   * Creates one handle per layer; layer 0 reads {@code inputSize} features, the others the
   * previous layer's {@code directions * (projSize > 0 ? projSize : hiddenSize)}.
   *
   * @param cell an {@code AbiConstants.CELL_*} code
   */
  public RecurrentLayerHandles(Arena arena, int cell, int numLayers, int directions,
      long inputSize, long hiddenSize, long projSize, boolean peephole, boolean bias) {
    this.directions = directions;
    this.handles = new MemorySegment[numLayers];
    this.weights = new MemorySegment[numLayers];
    this.gradients = new MemorySegment[numLayers];
    long outputSize = projSize > 0 ? projSize : hiddenSize;
    for (int layer = 0; layer < numLayers; layer++) {
      long layerInput = layer == 0 ? inputSize : directions * outputSize;
      try (Arena call = Arena.ofConfined()) {
        MemorySegment desc = AbiLayouts.rnnLayerDesc(call, cell, directions, layerInput,
            hiddenSize, projSize, peephole, bias);
        MemorySegment raw = NativeBindings.rnnLayerCreate(desc);
        // destroyed when the owner's arena closes, which cannot happen during a call using it
        handles[layer] = raw.reinterpret(arena, NativeBindings::rnnLayerDestroy);
      }
      weights[layer] = AbiLayouts.rnnWeights(arena, directions);
      gradients[layer] = AbiLayouts.rnnWeights(arena, directions);
    }
    this.stepHandles = AbiLayouts.pointers(arena, numLayers);
    this.stepWeights = AbiLayouts.pointers(arena, numLayers);
    for (int layer = 0; layer < numLayers; layer++) {
      AbiLayouts.setPointer(stepHandles, layer, handles[layer]);
      AbiLayouts.setPointer(stepWeights, layer, weights[layer]);
    }
  }

  /** Points one weight of one direction of one layer at its data and its gradient. */
  public void setWeight(int layer, int direction, RecurrentWeight weight, MemorySegment data,
      MemorySegment gradient) {
    AbiLayouts.setRnnWeight(weights[layer], direction, weight, data);
    AbiLayouts.setRnnWeight(gradients[layer], direction, weight, gradient);
  }

  /** {@code seq4j_rnn_layer_backend} of the first layer: the backend a call would run on. */
  public int backend(int requested, long steps, long batch, boolean training) {
    return NativeBindings.rnnLayerBackend(handles[0], requested, steps, batch, training);
  }

  /** {@code seq4j_rnn_layer_workspace_size} of one layer. */
  public long workspaceSize(int layer, int backend, MemorySegment lengths, long steps,
      long batch) {
    return NativeBindings.rnnLayerWorkspaceSize(handles[layer], backend, lengths, steps, batch);
  }

  /** {@code seq4j_rnn_layer_forward} of one layer; workspace NULL means inference. */
  public void forward(int layer, int backend, long weightsVersion, MemorySegment output,
      MemorySegment hN, MemorySegment cN, MemorySegment workspace, MemorySegment input,
      MemorySegment h0, MemorySegment c0, MemorySegment lengths, long steps, long batch) {
    NativeBindings.rnnLayerForward(handles[layer], backend, weights[layer], weightsVersion, output,
        hN, cN, workspace, workspace.byteSize(), input, h0, c0, lengths, steps, batch);
  }

  /**
   * {@code seq4j_rnn_layer_backward} of one layer: adds the parameter gradients into the buffers
   * given to {@link #setWeight}.
   */
  public void backward(int layer, int backend, MemorySegment gradInput, MemorySegment gradH0,
      MemorySegment gradC0, MemorySegment gradOutput, MemorySegment gradHN,
      MemorySegment gradCN, MemorySegment workspace, MemorySegment input, MemorySegment h0,
      MemorySegment c0, MemorySegment output, MemorySegment hN, MemorySegment cN,
      MemorySegment lengths, long steps, long batch) {
    NativeBindings.rnnLayerBackward(handles[layer], backend, weights[layer], gradients[layer],
        gradInput, gradH0, gradC0, gradOutput, gradHN, gradCN, workspace, workspace.byteSize(),
        input, h0, c0, output, hN, cN, lengths, steps, batch);
  }

  /** {@code seq4j_rnn_step} over every layer, in place on h and c (c NULL without cells). */
  public void step(long weightsVersion, MemorySegment h, MemorySegment c, MemorySegment input,
      long batch) {
    NativeBindings.rnnStep(stepHandles, stepWeights, weightsVersion, handles.length, h, c, input,
        batch);
  }

  /** {@code seq4j_rnn_layer_set_step_weights} of every layer (an {@code STEP_WEIGHTS_*} code). */
  public void setStepWeights(int storage) {
    for (MemorySegment handle : handles) {
      NativeBindings.rnnLayerSetStepWeights(handle, storage);
    }
  }

  /** 1 or 2. */
  public int directions() {
    return directions;
  }
}
