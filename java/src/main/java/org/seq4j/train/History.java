package org.seq4j.train;

import java.util.List;

/**
 * What a {@link Trainer#fit} run did, epoch by epoch (indices from 0).
 *
 * @param trainLoss the mean training loss of each epoch (the mean of its batches' losses)
 * @param validationLoss the validation loss of each epoch (NaN without a validation set)
 * @param bestEpoch the epoch with the lowest monitored loss (validation loss, or training loss
 *     without a validation set)
 * @param bestLoss that loss
 * @param stoppedEarly whether early stopping ended the run before the last epoch
 * @param epochs every epoch's full record, metrics included
 */
public record History(List<Double> trainLoss, List<Double> validationLoss, int bestEpoch,
    double bestLoss, boolean stoppedEarly, List<Trainer.EpochRecord> epochs) {
  /** Copies the lists. */
  public History {
    trainLoss = List.copyOf(trainLoss);
    validationLoss = List.copyOf(validationLoss);
    epochs = List.copyOf(epochs);
  }

  /** How many epochs ran. */
  public int epochCount() {
    return trainLoss.size();
  }
}
