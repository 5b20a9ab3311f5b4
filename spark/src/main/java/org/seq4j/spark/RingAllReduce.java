package org.seq4j.spark;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.function.BooleanSupplier;

/**
 * A ring all-reduce between the W tasks of a barrier stage over TCP (java.nio), as in Baidu's and
 * Horovod's ring: the vector is cut into W chunks; in W-1 reduce-scatter steps each worker sends
 * one chunk to its successor and adds the chunk it receives from its predecessor, after which
 * worker r holds the complete sum of chunk (r+1) mod W; in W-1 all-gather steps those complete
 * chunks travel round the ring and are copied. Each worker sends and receives 2 (W-1)/W of the
 * vector, whatever W. The additions of a chunk happen in an order fixed by the ring, and every
 * worker ends with a copy of the same final chunk, so all workers hold bit-identical sums and a
 * run is reproducible.
 *
 * <p>Rendezvous: each worker listens on an ephemeral port of its executor's address (as Spark
 * reports it), the barrier's {@code allGather} exchanges {@code host:port}, each connects to its
 * successor and accepts its predecessor, and a handshake checks rank and stage attempt. Sends and
 * receives of a step run together on non-blocking channels (one selector), so large chunks cannot
 * deadlock on full socket buffers. Every wait gives up after the timeout, and when {@code
 * cancelled} says so (the task was killed), with an exception naming the peer.
 */
final class RingAllReduce implements GradientReducer {
  private final int rank;
  private final int workers;
  private final long timeoutNanos;
  private final BooleanSupplier cancelled;
  private final SocketChannel toNext;
  private final SocketChannel fromPrevious;
  private final Selector selector;
  private final String nextAddress;
  private final String previousAddress;
  private ByteBuffer send = ByteBuffer.allocateDirect(0);
  private ByteBuffer receive = ByteBuffer.allocateDirect(0);

  /**
   * Listens, exchanges addresses through {@code exchange} (the barrier's allGather: this worker's
   * {@code host:port} in, every worker's in rank order out) and connects the ring.
   */
  static RingAllReduce connect(int rank, int workers, String host, long tag,
      java.util.function.Function<String, String[]> exchange, Duration timeout,
      BooleanSupplier cancelled) throws IOException {
    ServerSocketChannel server = ServerSocketChannel.open();
    try {
      server.bind(new InetSocketAddress(host, 0), workers);
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      String[] addresses = exchange.apply(host + ":" + port);
      if (addresses.length != workers) {
        throw new IOException("ring: the rendezvous returned " + addresses.length
            + " addresses for " + workers + " workers");
      }
      if (workers == 1) {
        return new RingAllReduce(rank, workers, timeout, cancelled, null, null, null, "", "");
      }
      String next = addresses[(rank + 1) % workers];
      String previous = addresses[(rank + workers - 1) % workers];
      long deadline = System.nanoTime() + timeout.toNanos();
      SocketChannel out = SocketChannel.open();
      SocketChannel in = null;
      Selector selector = null;
      try {
        int colon = next.lastIndexOf(':');
        out.socket().setTcpNoDelay(true);
        out.connect(new InetSocketAddress(next.substring(0, colon),
            Integer.parseInt(next.substring(colon + 1))));
        ByteBuffer hello = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        hello.putInt(rank).putLong(tag).flip();
        while (hello.hasRemaining()) {
          out.write(hello);
        }
        server.configureBlocking(false);
        while ((in = server.accept()) == null) {
          waitABit(deadline, cancelled, "ring: worker " + rank + " waited for worker "
              + (rank + workers - 1) % workers + " (" + previous + ") to connect");
        }
        in.socket().setTcpNoDelay(true);
        in.configureBlocking(false);
        out.configureBlocking(false);
        selector = Selector.open();
        RingAllReduce ring = new RingAllReduce(rank, workers, timeout, cancelled, out, in,
            selector, next, previous);
        ByteBuffer got = ByteBuffer.allocateDirect(12).order(ByteOrder.LITTLE_ENDIAN);
        ring.exchange(ByteBuffer.allocateDirect(0), got, "handshake");
        got.flip();
        int peer = got.getInt();
        long peerTag = got.getLong();
        if (peer != (rank + workers - 1) % workers || peerTag != tag) {
          throw new IOException("ring: worker " + rank + " expected worker "
              + (rank + workers - 1) % workers + " of attempt " + tag + ", got worker " + peer
              + " of attempt " + peerTag);
        }
        return ring;
      } catch (IOException | RuntimeException e) {
        out.close();
        if (in != null) {
          in.close();
        }
        if (selector != null) {
          selector.close();
        }
        throw e;
      }
    } finally {
      server.close();
    }
  }

  private RingAllReduce(int rank, int workers, Duration timeout, BooleanSupplier cancelled,
      SocketChannel toNext, SocketChannel fromPrevious, Selector selector, String nextAddress,
      String previousAddress) {
    this.rank = rank;
    this.workers = workers;
    this.timeoutNanos = timeout.toNanos();
    this.cancelled = cancelled;
    this.toNext = toNext;
    this.fromPrevious = fromPrevious;
    this.selector = selector;
    this.nextAddress = nextAddress;
    this.previousAddress = previousAddress;
  }

  private static void waitABit(long deadline, BooleanSupplier cancelled, String what)
      throws IOException {
    if (cancelled.getAsBoolean()) {
      throw new IOException(what + ": the task was cancelled");
    }
    if (System.nanoTime() > deadline) {
      throw new SocketTimeoutException(what + ": timed out");
    }
    try {
      Thread.sleep(2);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(what + ": interrupted", e);
    }
  }

  private int start(int chunk, int length) {
    return (int) ((long) chunk * length / workers);
  }

  @Override
  public void sum(float[] values) throws IOException {
    if (workers == 1) {
      return;
    }
    int n = values.length;
    int largest = 0;
    for (int c = 0; c < workers; c++) {
      largest = Math.max(largest, start(c + 1, n) - start(c, n));
    }
    if (send.capacity() < largest * Float.BYTES) {
      send = ByteBuffer.allocateDirect(largest * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
      receive = ByteBuffer.allocateDirect(largest * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    }
    // reduce-scatter: after step s, the chunk received holds the sum over s + 2 workers
    for (int s = 0; s < workers - 1; s++) {
      int out = Math.floorMod(rank - s, workers);
      int in = Math.floorMod(rank - s - 1, workers);
      step(values, out, in, "reduce-scatter step " + s);
      int from = start(in, n);
      for (int i = from, end = start(in + 1, n); i < end; i++) {
        values[i] += receive.getFloat((i - from) * Float.BYTES);
      }
    }
    // all-gather: the complete chunks go round, each copied as it is
    for (int s = 0; s < workers - 1; s++) {
      int out = Math.floorMod(rank + 1 - s, workers);
      int in = Math.floorMod(rank - s, workers);
      step(values, out, in, "all-gather step " + s);
      int from = start(in, n);
      for (int i = from, end = start(in + 1, n); i < end; i++) {
        values[i] = receive.getFloat((i - from) * Float.BYTES);
      }
    }
  }

  private void step(float[] values, int outChunk, int inChunk, String what) throws IOException {
    int n = values.length;
    send.clear();
    int from = start(outChunk, n);
    send.asFloatBuffer().put(values, from, start(outChunk + 1, n) - from);
    send.limit((start(outChunk + 1, n) - from) * Float.BYTES);
    receive.clear();
    receive.limit((start(inChunk + 1, n) - start(inChunk, n)) * Float.BYTES);
    exchange(send, receive, what);
  }

  /** Sends all of {@code out} to the successor while filling {@code in} from the predecessor. */
  private void exchange(ByteBuffer out, ByteBuffer in, String what) throws IOException {
    long deadline = System.nanoTime() + timeoutNanos;
    SelectionKey writeKey = toNext.register(selector, 0);
    SelectionKey readKey = fromPrevious.register(selector, 0);
    while (out.hasRemaining() || in.hasRemaining()) {
      if (out.hasRemaining() && toNext.write(out) < 0) {
        throw new IOException("unreachable");
      }
      if (in.hasRemaining() && fromPrevious.read(in) < 0) {
        throw new IOException("ring: worker " + rank + ", " + what + ": worker "
            + Math.floorMod(rank - 1, workers) + " (" + previousAddress
            + ") closed the connection (it failed or was killed)");
      }
      if (!out.hasRemaining() && !in.hasRemaining()) {
        break;
      }
      writeKey.interestOps(out.hasRemaining() ? SelectionKey.OP_WRITE : 0);
      readKey.interestOps(in.hasRemaining() ? SelectionKey.OP_READ : 0);
      selector.select(100);
      selector.selectedKeys().clear();
      if (cancelled.getAsBoolean()) {
        throw new IOException("ring: worker " + rank + ", " + what + ": the task was cancelled");
      }
      if (System.nanoTime() > deadline) {
        throw new SocketTimeoutException("ring: worker " + rank + ", " + what
            + ": no progress with worker " + Math.floorMod(rank - 1, workers) + " ("
            + previousAddress + ") or " + (rank + 1) % workers + " (" + nextAddress + ")");
      }
    }
    writeKey.interestOps(0);
    readKey.interestOps(0);
  }

  @Override
  public void close() throws IOException {
    try (var a = toNext; var b = fromPrevious; var c = selector) {
      // closes all three, even when one fails
    }
  }
}
