/** A modular application that uses seq4j: it requires org.seq4j, and nothing for the natives. */
module org.seq4j.consumer {
  requires org.seq4j;
}
