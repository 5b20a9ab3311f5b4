package org.seq4j.examples;

/** A one-line progress bar with the loss and the speed, redrawn in place. */
final class Progress {
  private final String label;
  private final int total;
  private final String unit;
  private final long start = System.nanoTime();

  Progress(String label, int total, String unit) {
    this.label = label;
    this.total = total;
    this.unit = unit;
  }

  void update(int done, double loss, long samples) {
    int width = 24;
    int filled = (int) ((long) width * done / total);
    double seconds = (System.nanoTime() - start) / 1e9;
    System.out.printf("\r  %-10s epoch %3d/%d [%s%s] loss %.4f  %,.0f %s/s ", label, done,
        total, "#".repeat(filled), ".".repeat(width - filled), loss, samples / seconds, unit);
    if (done == total) {
      System.out.println();
    }
    System.out.flush();
  }
}
