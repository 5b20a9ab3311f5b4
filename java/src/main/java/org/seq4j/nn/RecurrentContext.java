package org.seq4j.nn;

import java.lang.foreign.MemorySegment;
import org.seq4j.Tensor;

/**
 * What a training forward saved for its backward: each layer's input, output, states and the
 * backend's workspace. It lives in the arena the forward was given and may be used for any number of
 * backward calls while that arena is open.
 */
public final class RecurrentContext {
  final RecurrentLayer layer;
  final long steps;
  final long batch;
  final MemorySegment lengths;
  final Tensor[] inputs;
  final Tensor[] outputs;
  final Tensor[] initialHidden;
  final Tensor[] initialCell;
  final Tensor[] finalHidden;
  final Tensor[] finalCell;
  final MemorySegment[] workspaces;
  final long[] dropoutSeeds;
  /** The backend the forward ran on ({@code SEQ4J_BACKEND_*}); the backward runs on it too. */
  int backend;

  RecurrentContext(RecurrentLayer layer, long steps, long batch, MemorySegment lengths, int layers) {
    this.layer = layer;
    this.steps = steps;
    this.batch = batch;
    this.lengths = lengths;
    this.inputs = new Tensor[layers];
    this.outputs = new Tensor[layers];
    this.initialHidden = new Tensor[layers];
    this.initialCell = new Tensor[layers];
    this.finalHidden = new Tensor[layers];
    this.finalCell = new Tensor[layers];
    this.workspaces = new MemorySegment[layers];
    this.dropoutSeeds = new long[layers];
  }

  /** Whether the arena holding the saved tensors is still open. */
  public boolean isUsable() {
    return outputs[0].isUsable();
  }
}
