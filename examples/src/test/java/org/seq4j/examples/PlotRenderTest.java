package org.seq4j.examples;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Rectangle;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A rendering smoke test: the PNG is written, has its axis titles, and shows coinciding series. */
class PlotRenderTest {
  @TempDir Path dir;

  private static int dark(BufferedImage image, int x0, int y0, int x1, int y1) {
    int count = 0;
    for (int y = Math.max(0, y0); y < Math.min(image.getHeight(), y1); y++) {
      for (int x = Math.max(0, x0); x < Math.min(image.getWidth(), x1); x++) {
        Color c = new Color(image.getRGB(x, y));
        if (c.getRed() + c.getGreen() + c.getBlue() < 300) {
          count++;
        }
      }
    }
    return count;
  }

  private static int near(BufferedImage image, Rectangle area, Color color) {
    int count = 0;
    for (int y = area.y + 2; y < area.y + area.height - 1; y++) {
      for (int x = area.x + 2; x < area.x + area.width - 1; x++) {
        Color c = new Color(image.getRGB(x, y));
        int d = Math.abs(c.getRed() - color.getRed()) + Math.abs(c.getGreen() - color.getGreen())
            + Math.abs(c.getBlue() - color.getBlue());
        if (d < 60) {
          count++;
        }
      }
    }
    return count;
  }

  @Test
  void writesAPngWithAxisTitlesAndTwoVisibleCoincidingSeries() throws Exception {
    int n = 30;
    double[] before = new double[n];
    for (int i = 0; i < n; i++) {
      before[i] = 0.05 + 2.0 / (1 + i);
    }
    double[] after = before.clone(); // coincides: the second series is drawn on top of the first
    Plot plot = new Plot("Gradient norm before and after clipping", "epoch", "norm", true)
        .line("lstm before", before)
        .line("lstm after", after);
    Path file = Path.of("target", "test-plots", "coinciding.png"); // kept for a look
    Files.deleteIfExists(file);
    plot.write(file);
    assertTrue(Files.size(file) > 1000);
    BufferedImage image = ImageIO.read(file.toFile());
    assertEquals(900, image.getWidth());
    Rectangle area = plot.plotArea();
    assertTrue(plot.logScale(), "2.05 / 0.116: more than a decade");

    // The y title, rotated, left of the tick labels: dark pixels in a narrow column by the left edge.
    int yTitle = dark(image, 0, area.y + area.height / 4, 34, area.y + 3 * area.height / 4);
    assertTrue(yTitle > 100, "y-axis title pixels: " + yTitle);
    assertTrue(area.x > 34 + 20, "tick labels sit between the y title and the axis: " + area);
    // The x title, under the x tick labels, centred under the plot.
    int xTitle = dark(image, area.x + area.width / 3, area.y + area.height + 26,
        area.x + 2 * area.width / 3, image.getHeight());
    assertTrue(xTitle > 30, "x-axis title pixels: " + xTitle);
    // Nothing of the legend inside the plot area: the legend is to its right.
    int legend = dark(image, area.x + area.width + 10, area.y, image.getWidth(), area.y + 60);
    assertTrue(legend > 50, "legend pixels right of the plot: " + legend);

    // Both series visible although they coincide.
    int first = near(image, area, Plot.COLORS[0]);
    int second = near(image, area, Plot.COLORS[1]);
    assertTrue(first > 300, "first series pixels: " + first);
    assertTrue(second > 300, "second series pixels: " + second);
  }

  @Test
  void fourSeriesWithALongTitle() throws Exception {
    int n = 40;
    double[][] y = new double[4][n];
    for (int i = 0; i < n; i++) {
      y[0][i] = 3.0 * Math.exp(-i / 10.0) + 0.4;
      y[1][i] = Math.min(1, y[0][i]);
      y[2][i] = 0.6 + 0.2 * Math.sin(i / 4.0);
      y[3][i] = Math.min(1, y[2][i]);
    }
    Plot plot = new Plot("Global gradient norm before and after clipping at 1 (mean per epoch; equal"
        + " lines: no clipping)", "epoch", "norm", true)
        .line("lstm before", y[0]).line("lstm after", y[1])
        .line("simple-rnn before", y[2]).line("simple-rnn after", y[3]);
    Path file = Path.of("target", "test-plots", "four-series.png");
    plot.write(file);
    BufferedImage image = ImageIO.read(file.toFile());
    for (int s = 0; s < 4; s++) {
      assertTrue(near(image, plot.plotArea(), Plot.COLORS[s]) > 100, "series " + s);
    }
    assertTrue(!plot.logScale(), "0.4 .. 3.4: under a decade, linear");
  }

  @Test
  void markersOfDifferentSeriesNeverShareAPoint() {
    for (int n : new int[] {1, 2, 8, 14, 30, 100}) {
      for (int count = 1; count <= 4; count++) {
        java.util.Set<Integer> seen = new java.util.HashSet<>();
        for (int s = 0; s < count; s++) {
          int[] indices = Plot.markerIndices(n, s, count);
          for (int i : indices) {
            assertTrue(i >= 0 && i < n, n + " points: index " + i);
            assertTrue(seen.add(i), n + " points, " + count + " series: shared marker at " + i);
          }
          assertTrue(indices.length <= 14, n + " points: " + indices.length + " markers");
        }
        assertTrue(Plot.markerIndices(n, 0, count).length >= Math.min(n, 2) / count,
            n + " points, " + count + " series: series 0 has markers");
      }
    }
    assertEquals(8, Plot.markerIndices(8, 0, 1).length, "a short single series: every point");
  }

  @Test
  void narrowRangeIsLinearAndEmptyPlotStillRenders() throws Exception {
    Plot plot = new Plot("Loss", "epoch", "cross-entropy", true)
        .line("a", new double[] {2.1, 1.8, 1.7, 1.65})
        .line("b", new double[] {2.0, Double.NaN, 1.5, 1.4});
    BufferedImage image = plot.render();
    assertTrue(!plot.logScale());
    assertTrue(near(image, plot.plotArea(), Plot.COLORS[1]) > 50);
    new Plot("Empty", "x", "y").write(dir.resolve("empty.png"));
    assertTrue(Files.size(dir.resolve("empty.png")) > 100);
  }
}
