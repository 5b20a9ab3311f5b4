package org.seq4j.examples;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/** A minimal line chart written as PNG with Java2D: enough for loss curves and gradient norms. */
final class Plot {
  private static final Color[] COLORS = {
    new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd)
  };

  private record Series(String name, double[] x, double[] y) {}

  private final String title;
  private final String xLabel;
  private final String yLabel;
  private final boolean logY;
  private final List<Series> series = new ArrayList<>();

  Plot(String title, String xLabel, String yLabel, boolean logY) {
    this.title = title;
    this.xLabel = xLabel;
    this.yLabel = yLabel;
    this.logY = logY;
  }

  Plot line(String name, double[] x, double[] y) {
    series.add(new Series(name, x, y));
    return this;
  }

  Plot line(String name, double[] y) {
    double[] x = new double[y.length];
    for (int i = 0; i < x.length; i++) {
      x[i] = i;
    }
    return line(name, x, y);
  }

  private double transform(double y) {
    return logY ? Math.log10(Math.max(y, 1e-30)) : y;
  }

  void write(Path file) throws IOException {
    int width = 900;
    int height = 500;
    int left = 80;
    int right = 170;
    int top = 40;
    int bottom = 60;
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, width, height);
    double minX = Double.MAX_VALUE;
    double maxX = -Double.MAX_VALUE;
    double minY = Double.MAX_VALUE;
    double maxY = -Double.MAX_VALUE;
    for (Series s : series) {
      for (int i = 0; i < s.x().length; i++) {
        minX = Math.min(minX, s.x()[i]);
        maxX = Math.max(maxX, s.x()[i]);
        minY = Math.min(minY, transform(s.y()[i]));
        maxY = Math.max(maxY, transform(s.y()[i]));
      }
    }
    if (maxX == minX) {
      maxX = minX + 1;
    }
    if (maxY == minY) {
      maxY = minY + 1;
    }
    int plotWidth = width - left - right;
    int plotHeight = height - top - bottom;
    g.setColor(Color.DARK_GRAY);
    g.drawRect(left, top, plotWidth, plotHeight);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    for (int k = 0; k <= 5; k++) {
      double value = minY + (maxY - minY) * k / 5;
      int y = top + plotHeight - (int) (plotHeight * k / 5.0);
      g.setColor(new Color(0xe0e0e0));
      g.drawLine(left + 1, y, left + plotWidth - 1, y);
      g.setColor(Color.DARK_GRAY);
      String label = String.format("%.3g", logY ? Math.pow(10, value) : value);
      g.drawString(label, 8, y + 4);
      double xValue = minX + (maxX - minX) * k / 5;
      int x = left + (int) (plotWidth * k / 5.0);
      g.drawString(String.format("%.0f", xValue), x - 8, top + plotHeight + 18);
    }
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
    g.drawString(title, left, 25);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
    g.drawString(xLabel, left + plotWidth / 2 - 40, height - 15);
    g.drawString(yLabel + (logY ? " (log scale)" : ""), left + plotWidth + 12, top + plotHeight + 18);
    g.setStroke(new BasicStroke(2f));
    for (int s = 0; s < series.size(); s++) {
      Series line = series.get(s);
      g.setColor(COLORS[s % COLORS.length]);
      for (int i = 1; i < line.x().length; i++) {
        int x0 = left + (int) ((line.x()[i - 1] - minX) / (maxX - minX) * plotWidth);
        int x1 = left + (int) ((line.x()[i] - minX) / (maxX - minX) * plotWidth);
        int y0 = top + plotHeight
            - (int) ((transform(line.y()[i - 1]) - minY) / (maxY - minY) * plotHeight);
        int y1 = top + plotHeight
            - (int) ((transform(line.y()[i]) - minY) / (maxY - minY) * plotHeight);
        g.drawLine(x0, y0, x1, y1);
      }
      g.fillRect(left + plotWidth + 12, top + 10 + 22 * s, 14, 4);
      g.setColor(Color.DARK_GRAY);
      g.drawString(line.name(), left + plotWidth + 32, top + 16 + 22 * s);
    }
    g.dispose();
    Files.createDirectories(file.toAbsolutePath().getParent());
    ImageIO.write(image, "png", file.toFile());
  }
}
