package org.seq4j.internal;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The life cycle of an object that owns native memory and is called from many threads (a layer,
 * an optimizer): calls run concurrently, {@link #close} waits for the calls in flight and then
 * frees, and every call that starts after close began fails with {@link IllegalStateException}.
 *
 * <p>Why wait rather than fail fast: freeing memory that a running call reads would crash the JVM,
 * and the JDK's own answer (a shared arena refuses to close while a native call holds it) made
 * {@code close()} fail for as long as other threads kept calling, possibly for ever. Waiting ends:
 * a close that is waiting blocks new calls (the lock is not reader-preferring), so close succeeds
 * as soon as the calls that had started finish, and those new calls then see the object closed.
 *
 * <p>Calls are the read side of a {@link ReentrantReadWriteLock} (shared, reentrant: a call may
 * call the same object again); close is the write side. Closing from inside a call on the same
 * object, from the same thread, would wait for itself, so it is refused.
 */
public final class CallGuard {
  private final String name;
  private final String closedMessage;
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private volatile boolean closed;

  /**
   * @param name the object's type, for messages ("Linear")
   * @param kind what it is ("layer", "optimizer"): a call after close says "Linear: the layer is
   *     closed"
   */
  public CallGuard(String name, String kind) {
    this.name = name;
    this.closedMessage = name + ": the " + kind + " is closed";
  }

  /**
   * Starts a call; pair with {@link #exit()} in a {@code finally}.
   *
   * @throws IllegalStateException once the object is closed (or closing)
   */
  public void enter() {
    lock.readLock().lock();
    if (closed) {
      lock.readLock().unlock();
      throw new IllegalStateException(closedMessage);
    }
  }

  /** Ends a call that {@link #enter()} started. */
  public void exit() {
    lock.readLock().unlock();
  }

  /** Throws {@link IllegalStateException} when closed (a check without entering). */
  public void requireOpen() {
    if (closed) {
      throw new IllegalStateException(closedMessage);
    }
  }

  /** Whether {@link #close} has run. */
  public boolean isClosed() {
    return closed;
  }

  /**
   * Waits for the calls in flight, then runs {@code release} once; later closes do nothing.
   *
   * @throws IllegalStateException when called from inside a call on the same object
   */
  public void close(Runnable release) {
    if (lock.getReadHoldCount() > 0) {
      throw new IllegalStateException(name + ": close() was called from inside a call on it (by"
          + " the same thread); close it after the call returns");
    }
    lock.writeLock().lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      release.run();
    } finally {
      lock.writeLock().unlock();
    }
  }
}
