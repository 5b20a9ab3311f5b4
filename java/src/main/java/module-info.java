/**
 * seq4j: native-backed sequence models for the JVM. See the {@link org.seq4j} package for a
 * tutorial.
 */
module org.seq4j {
  exports org.seq4j;
  exports org.seq4j.nn;
  exports org.seq4j.train;
  exports org.seq4j.io;
  exports org.seq4j.data;
}
