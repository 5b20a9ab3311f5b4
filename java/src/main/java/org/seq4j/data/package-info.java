/**
 * Data for training: {@link org.seq4j.data.Sequences} pads variable-length sequences into batches
 * with their lengths and key padding masks; {@link org.seq4j.data.MiniBatches} iterates a dataset
 * in seeded, shuffled mini-batches, an epoch per iteration.
 */
package org.seq4j.data;
