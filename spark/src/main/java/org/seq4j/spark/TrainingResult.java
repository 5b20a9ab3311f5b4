package org.seq4j.spark;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.List;
import org.seq4j.nn.Module;

/**
 * What {@link DataParallelTrainer#fit} returns: the trained weights (rank 0's; every worker's
 * are the same bits) and what the run measured.
 *
 * @param weights the final state dict as safetensors bytes
 * @param losses the global mean training loss of every step (the mean over all B examples)
 * @param workers W
 * @param stageAttempt the stage attempt that finished (0 unless the barrier stage was retried)
 * @param firstStep the step the finishing attempt started from (0, or a checkpoint's step)
 * @param stepMillis each worker's mean wall time per step (forward, backward, all-reduce,
 *     optimizer), in rank order
 * @param allReduceMillis each worker's mean wall time of the all-reduce per step, in rank order
 * @param replicaHashes a hash of each worker's final parameters, in rank order (all equal when
 *     the replicas stayed identical)
 */
public record TrainingResult(byte[] weights, List<Float> losses, int workers, int stageAttempt,
    long firstStep, List<Double> stepMillis, List<Double> allReduceMillis,
    List<Integer> replicaHashes) implements Serializable {

  /** Loads the trained weights into {@code module} (strictly). */
  public void loadInto(Module module) {
    Weights.load(module, weights, Path.of(System.getProperty("java.io.tmpdir")));
  }
}
