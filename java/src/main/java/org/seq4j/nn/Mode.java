package org.seq4j.nn;

/** Whether a forward pass saves what its backward pass needs. */
public enum Mode {
  /** No context is saved; dropout is off. */
  INFERENCE,
  /** The result carries a context for {@code backward}; dropout is on. */
  TRAINING
}
