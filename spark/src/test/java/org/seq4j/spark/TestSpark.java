package org.seq4j.spark;

import java.nio.file.Path;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.sql.SparkSession;
import org.seq4j.Seq4j;

/**
 * One Spark session for all the module's tests (starting one costs seconds): {@code local[2, 3]},
 * two task slots and up to three attempts per task, so that a failed barrier stage is retried.
 * Everything binds to the loopback address.
 */
final class TestSpark {
  private static SparkSession session;

  private TestSpark() {}

  static synchronized SparkSession session() {
    if (session == null) {
      // the tasks set seq4j's threads to spark.task.cpus; the tests' single-process references
      // run with the same count, as bit-for-bit equality needs
      Seq4j.setThreads(1);
      session = SparkSession.builder()
          .master("local[2, 3]")
          .appName("seq4j-spark-tests")
          .config("spark.driver.host", "127.0.0.1")
          .config("spark.driver.bindAddress", "127.0.0.1")
          .config("spark.ui.enabled", "false")
          .config("spark.sql.shuffle.partitions", "2")
          .config("spark.default.parallelism", "2")
          .config("spark.task.cpus", "1")
          .config("spark.local.dir", Path.of("target", "spark-local").toAbsolutePath().toString())
          .getOrCreate();
      session.sparkContext().setLogLevel("WARN");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> session.stop()));
    }
    return session;
  }

  static JavaSparkContext context() {
    return JavaSparkContext.fromSparkContext(session().sparkContext());
  }
}
