package org.seq4j.spark;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Base64;
import org.apache.spark.BarrierTaskContext;

/**
 * The simple, correct fallback: every worker sends its whole vector to every other through Spark's
 * own barrier {@code allGather} (strings, so Base64 of the little-endian floats, through the
 * driver), then adds them up in rank order 0, 1, ..., W-1, so all workers compute the same sums
 * with the same roundings. Its cost grows with W times the vector and passes through the driver.
 */
final class AllGatherReducer implements GradientReducer {
  private final BarrierTaskContext context;

  AllGatherReducer(BarrierTaskContext context) {
    this.context = context;
  }

  @Override
  public void sum(float[] values) {
    ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES)
        .order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    String[] all = context.allGather(Base64.getEncoder().encodeToString(bytes.array()));
    java.util.Arrays.fill(values, 0f);
    float[] other = new float[values.length];
    for (String message : all) {  // allGather orders the messages by partition id
      ByteBuffer.wrap(Base64.getDecoder().decode(message)).order(ByteOrder.LITTLE_ENDIAN)
          .asFloatBuffer().get(other);
      for (int i = 0; i < values.length; i++) {
        values[i] += other[i];
      }
    }
  }

  @Override
  public void close() {}
}
