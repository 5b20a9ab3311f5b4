package org.seq4j.peers;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * The chart of a run, in plain {@code java.awt} (headless, no dependency): one group of
 * horizontal bars per case, one bar per peer at its best setting, length in GFLOP/s on a log
 * scale (the cases span 0.1 to a few hundred), the GEMM peak as a dashed line, a noisy
 * measurement hatched, a peer without a result written as text.
 */
final class Chart {
  private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e),
      new Color(0x2ca02c)};

  private Chart() {}

  /** Writes the PNG. */
  static void write(Compare.Run run, Path file) throws IOException {
    System.setProperty("java.awt.headless", "true");
    List<Case> cases = new ArrayList<>(Report.cases(run));
    String[] peers = Compare.peerOrder();
    int bar = 11;
    int group = bar * peers.length + 12;
    int left = 300;
    int right = 40;
    int top = 70;
    int width = 1200;
    int height = top + group * cases.size() + 60;
    BufferedImage image = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING,
        RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, width, height);

    double max = 1;
    double min = 1e9;
    for (Compare.Row r : run.rows()) {
      if (r.status().equals("ok")) {
        max = Math.max(max, r.gflops());
        min = Math.min(min, r.gflops());
      }
    }
    double lo = Math.pow(10, Math.floor(Math.log10(Math.max(1e-3, Math.min(min, 1)))));
    double hi = Math.pow(10, Math.ceil(Math.log10(max)));
    int plot = width - left - right;
    java.util.function.DoubleToIntFunction x =
        v -> left + (int) Math.round(plot * (Math.log10(Math.max(v, lo)) - Math.log10(lo))
            / (Math.log10(hi) - Math.log10(lo)));

    g.setColor(Color.BLACK);
    g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
    g.drawString("seq4j, libtorch, DL4J: GFLOP/s per case (log scale), best setting of each; "
        + Compare.timestamp(run.start()), 10, 22);
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
    String machine = Report.machine(run).replaceAll(" \\([^)]*avx[^)]*\\)", "");
    g.drawString(machine, 10, 40);
    for (int p = 0; p < peers.length; p++) {
      g.setColor(COLORS[p]);
      g.fillRect(left + p * 110, 50, 12, 12);
      g.setColor(Color.BLACK);
      g.drawString(peers[p], left + p * 110 + 16, 61);
    }
    g.drawString("hatched: others took CPU during the measurement", left + 340, 61);

    // Decades.
    g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
    for (double v = lo; v <= hi * 1.001; v *= 10) {
      int px = x.applyAsInt(v);
      g.setColor(new Color(0xdddddd));
      g.drawLine(px, top - 4, px, top + group * cases.size());
      g.setColor(Color.DARK_GRAY);
      g.drawString(v >= 1 ? String.format(Locale.ROOT, "%.0f", v)
          : String.format(Locale.ROOT, "%s", v), px - 8, top + group * cases.size() + 16);
    }
    Compare.Row peak = Report.peak(run);
    if (peak != null) {
      int px = x.applyAsInt(peak.gflops());
      g.setColor(Color.RED);
      g.setStroke(new BasicStroke(1, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10,
          new float[] {5, 4}, 0));
      g.drawLine(px, top - 4, px, top + group * cases.size());
      g.setStroke(new BasicStroke(1));
      g.drawString(String.format(Locale.ROOT, "GEMM peak %.0f", peak.gflops()), px - 40,
          top + group * cases.size() + 32);
    }

    for (int k = 0; k < cases.size(); k++) {
      Case c = cases.get(k);
      int y0 = top + k * group;
      g.setColor(Color.BLACK);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
      g.drawString(c.id(), 8, y0 + group / 2 + 2);
      g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
      for (int p = 0; p < peers.length; p++) {
        int y = y0 + p * bar + 4;
        var row = Report.best(run, c, peers[p]).orElse(null);
        if (row == null) {
          continue;
        }
        if (!row.status().equals("ok")) {
          g.setColor(Color.GRAY);
          String text = row.status().equals("na") ? "n/a" : row.status();
          g.drawString(peers[p] + ": " + text, left + 4, y + bar - 2);
          continue;
        }
        int px = x.applyAsInt(row.gflops());
        g.setColor(COLORS[p]);
        g.fillRect(left, y, Math.max(1, px - left), bar - 2);
        if (Report.noisy(run, row)) {
          g.setColor(Color.WHITE);
          for (int h = left; h < px; h += 6) {
            g.drawLine(h, y + bar - 2, Math.min(px, h + 4), y);
          }
        }
        g.setColor(Color.BLACK);
        g.drawString(String.format(Locale.ROOT, "%s (%s)",
            row.gflops() >= 10 ? String.format(Locale.ROOT, "%.0f", row.gflops())
                : String.format(Locale.ROOT, "%.2f", row.gflops()), row.setting()),
            px + 4, y + bar - 2);
      }
    }
    g.dispose();
    ImageIO.write(image, "png", file.toFile());
  }
}
