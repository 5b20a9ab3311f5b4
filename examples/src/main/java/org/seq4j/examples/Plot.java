package org.seq4j.examples;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.RenderingHints;
import java.awt.Shape;
import java.awt.Stroke;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * A small line chart written as PNG with Java2D: enough for loss curves and gradient norms.
 *
 * <p>What it does so that a plot reads at a glance:
 *
 * <ul>
 *   <li>the y-axis title is drawn rotated beside the y axis and the x-axis title under the x axis,
 *       the y title stating the scale ("log scale" or "linear scale");
 *   <li>the y scale is chosen from the data: logarithmic only where every plotted value is positive
 *       and the largest is at least 10 times the smallest ({@link #usesLogScale}), linear otherwise;
 *   <li>ticks fall on round numbers (steps of 1, 2, 2.5 or 5 times a power of ten; 1-2-5 or whole
 *       decades on a log scale) and are written without spurious digits;
 *   <li>each series has its own colour, dash pattern, line width and marker, the later ones thinner
 *       and drawn on top, so a series that coincides with an earlier one stays visible; the legend
 *       sits outside the plot area, so it never covers data.
 * </ul>
 *
 * <p>Points whose x or y is not finite (and, on a log scale, y values that are not positive) are
 * left out, breaking the line there.
 */
final class Plot {
  /** How the y axis is scaled. */
  enum Scale {
    /** Logarithmic where the positive data span at least a factor 10, linear otherwise. */
    AUTO,
    /** Always linear. */
    LINEAR,
    /** Logarithmic where every value is positive (linear otherwise, as a log axis cannot show it). */
    LOG
  }

  /** One tick: its position in data units and its label. */
  record Tick(double value, String label) {}

  /**
   * An axis: the data range it shows (the plotted range, in data units, not log units) and its ticks.
   */
  record Axis(double min, double max, boolean log, List<Tick> ticks) {}

  /** Okabe-Ito colours: distinct for most colour-vision deficiencies too. */
  static final Color[] COLORS = {
    new Color(0x0072B2), new Color(0xD55E00), new Color(0x009E73), new Color(0xCC79A7),
    new Color(0xE69F00), new Color(0x56B4E9), new Color(0x000000)
  };
  private static final float[][] DASHES = {
    null, {9f, 5f}, {0.1f, 5f}, {12f, 4f, 2f, 4f}, {5f, 3f}, {0.1f, 3.5f}
  };
  private static final float[] WIDTHS = {3.8f, 2.6f, 2.4f, 1.6f, 1.4f};
  private static final double[] MARKER_SIZES = {9, 8, 8.5, 8, 7.5};
  private static final int MAX_Y_INTERVALS = 8;
  private static final int MAX_X_INTERVALS = 10;
  private static final int WIDTH = 900;
  private static final int HEIGHT = 520;
  private static final Color TEXT = new Color(0x222222);
  private static final Color GRID = new Color(0xe4e4e4);
  private static final Font TITLE_FONT = new Font(Font.SANS_SERIF, Font.BOLD, 16);
  private static final Font AXIS_TITLE_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 14);
  private static final Font TICK_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 12);
  private static final Font LEGEND_FONT = new Font(Font.SANS_SERIF, Font.PLAIN, 13);

  private record Series(String name, double[] x, double[] y) {}

  private final String title;
  private final String xLabel;
  private final String yLabel;
  private final Scale scale;
  private final List<Series> series = new ArrayList<>();
  /** Where the last {@link #render} put the plot area (for tests). */
  private Rectangle plotArea;

  /**
   * A plot whose y scale is chosen from the data ({@link Scale#AUTO}).
   *
   * @param title the title above the plot
   * @param xLabel the x-axis title, drawn under the x axis
   * @param yLabel the y-axis title, drawn rotated beside the y axis
   */
  Plot(String title, String xLabel, String yLabel) {
    this(title, xLabel, yLabel, Scale.AUTO);
  }

  /**
   * A plot whose y axis may be logarithmic ({@code logY}: {@link Scale#AUTO}, so log only where the
   * data span at least a factor 10) or is linear ({@code !logY}: {@link Scale#LINEAR}).
   */
  Plot(String title, String xLabel, String yLabel, boolean logY) {
    this(title, xLabel, yLabel, logY ? Scale.AUTO : Scale.LINEAR);
  }

  /**
   * A plot with the given y-scale policy.
   *
   * @param scale how the y axis is scaled; see {@link Scale}
   */
  Plot(String title, String xLabel, String yLabel, Scale scale) {
    this.title = title;
    this.xLabel = xLabel;
    this.yLabel = yLabel;
    this.scale = scale;
  }

  /** Adds a series; drawn after (on top of) the ones added before, thinner and dashed. */
  Plot line(String name, double[] x, double[] y) {
    if (x.length != y.length) {
      throw new IllegalArgumentException(
          "series " + name + ": " + x.length + " x values, " + y.length + " y values");
    }
    series.add(new Series(name, x.clone(), y.clone()));
    return this;
  }

  /** Adds a series whose x values are 0, 1, 2, ... */
  Plot line(String name, double[] y) {
    double[] x = new double[y.length];
    for (int i = 0; i < x.length; i++) {
      x[i] = i;
    }
    return line(name, x, y);
  }

  // ---- Scale and ticks ------------------------------------------------------------------------

  /**
   * Whether a y axis over these values is logarithmic under {@code scale}: never for
   * {@link Scale#LINEAR}; for {@link Scale#LOG} where all finite values are positive; for
   * {@link Scale#AUTO} where, in addition, the largest is at least 10 times the smallest.
   */
  static boolean usesLogScale(Scale scale, double[] values) {
    if (scale == Scale.LINEAR) {
      return false;
    }
    double min = Double.POSITIVE_INFINITY;
    double max = Double.NEGATIVE_INFINITY;
    int count = 0;
    for (double v : values) {
      if (!Double.isFinite(v)) {
        continue;
      }
      if (v <= 0) {
        return false;
      }
      min = Math.min(min, v);
      max = Math.max(max, v);
      count++;
    }
    if (count == 0) {
      return false;
    }
    return scale == Scale.LOG || max >= 10 * min;
  }

  /** Whether this plot's y axis is logarithmic, given the series added so far. */
  boolean logScale() {
    return usesLogScale(scale, allY());
  }

  private static final BigDecimal[] MANTISSAS = {
    new BigDecimal("1"), new BigDecimal("2"), new BigDecimal("2.5"), new BigDecimal("5")
  };

  /**
   * Round ticks for a linear axis over {@code [min, max]}: the smallest step of 1, 2, 2.5 or 5 ×
   * 10^k giving at most {@code maxIntervals} intervals.
   *
   * @param integer whether only whole-number steps are allowed (an axis of epochs or steps)
   * @param pad whether the axis extends to the tick at or beyond each end of the data (else it
   *     spans the data exactly, ticks inside it)
   */
  static Axis linearAxis(double min, double max, int maxIntervals, boolean integer, boolean pad) {
    if (!(min <= max) || !Double.isFinite(min) || !Double.isFinite(max)) {
      throw new IllegalArgumentException("range [" + min + ", " + max + "]");
    }
    if (max == min) {
      double half = min == 0 ? 1 : Math.abs(min) * 0.1;
      if (integer) {
        half = Math.max(1, Math.ceil(half));
      }
      min -= half;
      max += half;
      pad = true;
    }
    double eps = 1e-9;
    int exponent = (int) Math.floor(Math.log10((max - min) / maxIntervals)) - 1;
    for (int e = exponent; ; e++) {
      for (BigDecimal mantissa : MANTISSAS) {
        BigDecimal step = mantissa.scaleByPowerOfTen(e);
        if (integer && (step.compareTo(BigDecimal.ONE) < 0 || step.stripTrailingZeros().scale() > 0)) {
          continue;
        }
        double s = step.doubleValue();
        long first = pad ? (long) Math.floor(min / s + eps) : (long) Math.ceil(min / s - eps);
        long last = pad ? (long) Math.ceil(max / s - eps) : (long) Math.floor(max / s + eps);
        long intervals = pad ? last - first : (long) Math.ceil((max - min) / s - eps);
        if (intervals > maxIntervals) {
          continue;
        }
        List<BigDecimal> values = new ArrayList<>();
        for (long k = first; k <= last; k++) {
          values.add(step.multiply(BigDecimal.valueOf(k)));
        }
        List<Tick> ticks = labels(values, step.doubleValue());
        double lo = pad ? first * s : min;
        double hi = pad ? last * s : max;
        return new Axis(lo, hi, false, ticks);
      }
    }
  }

  /**
   * Ticks for a log axis over {@code [min, max]} ({@code 0 < min <= max}): 1, 2, 5 × 10^k where the
   * data span at most 3 decades (the axis then running from the 1-2-5 value at or below the data to
   * the one at or above), otherwise whole decades (every second, third, ... decade past 8 of them).
   */
  static Axis logAxis(double min, double max) {
    if (!(min > 0) || !(max >= min) || !Double.isFinite(max)) {
      throw new IllegalArgumentException("log range [" + min + ", " + max + "]");
    }
    double eps = 1e-9;
    int lo = (int) Math.floor(Math.log10(min) + eps);
    int hi = (int) Math.ceil(Math.log10(max) - eps);
    if (hi == lo) {
      hi++;
    }
    if (hi - lo <= 3) {
      List<BigDecimal> values = new ArrayList<>();
      for (int e = lo; e <= hi; e++) {
        for (int m : new int[] {1, 2, 5}) {
          values.add(BigDecimal.valueOf(m).scaleByPowerOfTen(e));
        }
      }
      int first = 0;
      while (first + 1 < values.size() && values.get(first + 1).doubleValue() <= min * (1 + eps)) {
        first++;
      }
      int last = values.size() - 1;
      while (last - 1 > first && values.get(last - 1).doubleValue() >= max * (1 - eps)) {
        last--;
      }
      List<BigDecimal> kept = values.subList(first, last + 1);
      List<Tick> ticks = logLabels(kept);
      return new Axis(kept.get(0).doubleValue(), kept.get(kept.size() - 1).doubleValue(), true,
          ticks);
    }
    int every = (hi - lo + 7) / 8;
    lo = Math.floorDiv(lo, every) * every;
    hi = -Math.floorDiv(-hi, every) * every;
    List<BigDecimal> values = new ArrayList<>();
    for (int e = lo; e <= hi; e += every) {
      values.add(BigDecimal.ONE.scaleByPowerOfTen(e));
    }
    List<Tick> ticks = logLabels(values);
    return new Axis(Math.pow(10, lo), Math.pow(10, hi), true, ticks);
  }

  /**
   * Labels for exact tick values: plain decimals without trailing zeros, or {@code 2.5e-5} style
   * where the values are tiny ({@code smallest} under 10^-4) or large (10^6 and above).
   */
  private static List<Tick> labels(List<BigDecimal> values, double smallest) {
    double largest = 0;
    for (BigDecimal v : values) {
      largest = Math.max(largest, Math.abs(v.doubleValue()));
    }
    boolean scientific = Math.abs(smallest) < 1e-4 || largest >= 1e6;
    List<Tick> ticks = new ArrayList<>();
    for (BigDecimal v : values) {
      ticks.add(new Tick(v.doubleValue(), format(v, scientific)));
    }
    return ticks;
  }

  /** Labels for log ticks: plain from 0.001 to 100000, {@code 2e-5} style outside. */
  private static List<Tick> logLabels(List<BigDecimal> values) {
    List<Tick> ticks = new ArrayList<>();
    for (BigDecimal v : values) {
      double d = v.doubleValue();
      ticks.add(new Tick(d, format(v, d < 1e-3 || d >= 1e6)));
    }
    return ticks;
  }

  /** An exact decimal written without spurious digits: "0.25", "1e-5", "-2.5e6", "0". */
  static String format(BigDecimal value, boolean scientific) {
    if (value.signum() == 0) {
      return "0";
    }
    BigDecimal v = value.stripTrailingZeros();
    if (!scientific) {
      return v.toPlainString();
    }
    int exponent = v.precision() - v.scale() - 1;
    String mantissa = v.movePointLeft(exponent).stripTrailingZeros().toPlainString();
    return mantissa + "e" + exponent;
  }

  // ---- Rendering ------------------------------------------------------------------------------

  private double[] allY() {
    int n = 0;
    for (Series s : series) {
      n += s.y().length;
    }
    double[] all = new double[n];
    int i = 0;
    for (Series s : series) {
      System.arraycopy(s.y(), 0, all, i, s.y().length);
      i += s.y().length;
    }
    return all;
  }

  private boolean plotted(double x, double y, boolean log) {
    return Double.isFinite(x) && Double.isFinite(y) && (!log || y > 0);
  }

  /** Draws the plot into a new image. */
  BufferedImage render() {
    boolean log = logScale();
    double minX = Double.POSITIVE_INFINITY;
    double maxX = Double.NEGATIVE_INFINITY;
    double minY = Double.POSITIVE_INFINITY;
    double maxY = Double.NEGATIVE_INFINITY;
    boolean integerX = true;
    for (Series s : series) {
      for (int i = 0; i < s.x().length; i++) {
        if (!plotted(s.x()[i], s.y()[i], log)) {
          continue;
        }
        minX = Math.min(minX, s.x()[i]);
        maxX = Math.max(maxX, s.x()[i]);
        minY = Math.min(minY, s.y()[i]);
        maxY = Math.max(maxY, s.y()[i]);
        integerX &= s.x()[i] == Math.rint(s.x()[i]);
      }
    }
    if (minX > maxX) {
      minX = 0;
      maxX = 1;
      minY = log ? 1 : 0;
      maxY = log ? 10 : 1;
    }
    Axis xAxis = linearAxis(minX, maxX, MAX_X_INTERVALS, integerX, false);
    Axis yAxis = log ? logAxis(minY, maxY) : linearAxis(minY, maxY, MAX_Y_INTERVALS, false, true);

    BufferedImage image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = image.createGraphics();
    g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING,
        RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
    g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
    g.setColor(Color.WHITE);
    g.fillRect(0, 0, WIDTH, HEIGHT);

    // Layout: title lines on top; y title, tick labels, plot, legend from left to right.
    List<String> titleLines = wrap(title, g.getFontMetrics(TITLE_FONT), WIDTH - 40);
    FontMetrics titleMetrics = g.getFontMetrics(TITLE_FONT);
    FontMetrics axisMetrics = g.getFontMetrics(AXIS_TITLE_FONT);
    FontMetrics tickMetrics = g.getFontMetrics(TICK_FONT);
    FontMetrics legendMetrics = g.getFontMetrics(LEGEND_FONT);
    int tickLabelWidth = 0;
    for (Tick t : yAxis.ticks()) {
      tickLabelWidth = Math.max(tickLabelWidth, tickMetrics.stringWidth(t.label()));
    }
    int legendSample = 44;
    int legendWidth = 0;
    for (Series s : series) {
      legendWidth = Math.max(legendWidth, legendMetrics.stringWidth(s.name()));
    }
    legendWidth = series.isEmpty() ? 0 : legendWidth + legendSample + 10;
    int top = 14 + titleLines.size() * titleMetrics.getHeight() + 10;
    int left = 14 + axisMetrics.getHeight() + 10 + tickLabelWidth + 8;
    int right = series.isEmpty() ? 24 : Math.min(legendWidth + 36, WIDTH / 2);
    int bottom = 8 + tickMetrics.getHeight() + 10 + axisMetrics.getHeight() + 14;
    Rectangle area = new Rectangle(left, top, WIDTH - left - right, HEIGHT - top - bottom);
    plotArea = area;

    g.setColor(TEXT);
    g.setFont(TITLE_FONT);
    for (int i = 0; i < titleLines.size(); i++) {
      g.drawString(titleLines.get(i), 14, 14 + titleMetrics.getAscent()
          + i * titleMetrics.getHeight());
    }

    // Grid and ticks.
    g.setFont(TICK_FONT);
    g.setStroke(new BasicStroke(1f));
    for (Tick t : yAxis.ticks()) {
      int y = (int) Math.round(toY(t.value(), yAxis, area));
      g.setColor(GRID);
      g.drawLine(area.x + 1, y, area.x + area.width - 1, y);
      g.setColor(TEXT);
      g.drawLine(area.x - 5, y, area.x, y);
      g.drawString(t.label(), area.x - 8 - tickMetrics.stringWidth(t.label()),
          y + tickMetrics.getAscent() / 2 - 1);
    }
    for (Tick t : xAxis.ticks()) {
      int x = (int) Math.round(toX(t.value(), xAxis, area));
      g.setColor(GRID);
      g.drawLine(x, area.y + 1, x, area.y + area.height - 1);
      g.setColor(TEXT);
      g.drawLine(x, area.y + area.height, x, area.y + area.height + 5);
      g.drawString(t.label(), x - tickMetrics.stringWidth(t.label()) / 2,
          area.y + area.height + 8 + tickMetrics.getAscent());
    }
    g.setColor(TEXT);
    g.drawRect(area.x, area.y, area.width, area.height);

    // Axis titles: x under the x axis, y rotated beside the y axis; the y title states its scale.
    g.setFont(AXIS_TITLE_FONT);
    g.drawString(xLabel, area.x + (area.width - axisMetrics.stringWidth(xLabel)) / 2,
        area.y + area.height + 8 + tickMetrics.getHeight() + 10 + axisMetrics.getAscent());
    String yTitle = yLabel + (log ? "  (log scale)" : "  (linear scale)");
    AffineTransform saved = g.getTransform();
    g.translate(14 + axisMetrics.getAscent(),
        area.y + (area.height + axisMetrics.stringWidth(yTitle)) / 2.0);
    g.rotate(-Math.PI / 2);
    g.drawString(yTitle, 0, 0);
    g.setTransform(saved);

    // Series, in the order added: later ones thinner and dashed, on top.
    Shape clip = g.getClip();
    g.clip(new Rectangle(area.x - 4, area.y - 4, area.width + 9, area.height + 9));
    for (int s = 0; s < series.size(); s++) {
      Series line = series.get(s);
      g.setColor(COLORS[s % COLORS.length]);
      g.setStroke(stroke(s));
      Path2D.Double path = new Path2D.Double();
      boolean pen = false;
      for (int i = 0; i < line.x().length; i++) {
        if (!plotted(line.x()[i], line.y()[i], log)) {
          pen = false;
          continue;
        }
        double x = toX(line.x()[i], xAxis, area);
        double y = toY(line.y()[i], yAxis, area);
        if (pen) {
          path.lineTo(x, y);
        } else {
          path.moveTo(x, y);
          pen = true;
        }
      }
      g.draw(path);
      g.setStroke(new BasicStroke(1.5f));
      for (int i : markerIndices(line.x().length, s, series.size())) {
        if (plotted(line.x()[i], line.y()[i], log)) {
          drawMarker(g, s, toX(line.x()[i], xAxis, area), toY(line.y()[i], yAxis, area));
        }
      }
    }
    g.setClip(clip);

    // Legend, outside the plot area on the right.
    g.setFont(LEGEND_FONT);
    int rowHeight = Math.max(legendMetrics.getHeight() + 6, 22);
    int legendX = area.x + area.width + 16;
    for (int s = 0; s < series.size(); s++) {
      int y = area.y + 8 + rowHeight * s + rowHeight / 2;
      g.setColor(COLORS[s % COLORS.length]);
      g.setStroke(stroke(s));
      g.drawLine(legendX, y, legendX + legendSample - 8, y);
      g.setStroke(new BasicStroke(1.5f));
      drawMarker(g, s, legendX + (legendSample - 8) / 2.0, y);
      g.setColor(TEXT);
      g.drawString(fit(series.get(s).name(), legendMetrics, WIDTH - legendX - legendSample - 6),
          legendX + legendSample, y + legendMetrics.getAscent() / 2 - 1);
    }
    g.dispose();
    return image;
  }

  /** Writes the plot as PNG, creating the parent folders. */
  void write(Path file) throws IOException {
    BufferedImage image = render();
    Path parent = file.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    ImageIO.write(image, "png", file.toFile());
  }

  /** The plot area of the last {@link #render}, in pixels; null before the first. */
  Rectangle plotArea() {
    return plotArea == null ? null : new Rectangle(plotArea);
  }

  /** The line style of series {@code s}: solid and widest first, then thinner dashed ones. */
  static Stroke stroke(int s) {
    float width = WIDTHS[Math.min(s, WIDTHS.length - 1)];
    float[] dash = DASHES[s % DASHES.length];
    if (dash == null) {
      return new BasicStroke(width, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND);
    }
    // A near-zero dash with round caps draws round dots.
    int cap = dash[0] < 0.5f ? BasicStroke.CAP_ROUND : BasicStroke.CAP_BUTT;
    return new BasicStroke(width, cap, BasicStroke.JOIN_ROUND, 10f, dash, 0f);
  }

  private static double toX(double x, Axis axis, Rectangle area) {
    return area.x + (x - axis.min()) / (axis.max() - axis.min()) * area.width;
  }

  private static double toY(double y, Axis axis, Rectangle area) {
    double f = axis.log()
        ? (Math.log10(y) - Math.log10(axis.min())) / (Math.log10(axis.max()) - Math.log10(axis.min()))
        : (y - axis.min()) / (axis.max() - axis.min());
    return area.y + area.height - f * area.height;
  }

  /**
   * Which points of a series of {@code n} get a marker: about 12 evenly spaced ones (all of them
   * for a short single series), those of series {@code s} shifted by {@code s / seriesCount} of the
   * spacing, so no two series put a marker on the same point and markers of coinciding lines
   * interleave instead of covering each other.
   */
  static int[] markerIndices(int n, int s, int seriesCount) {
    int count = Math.max(1, seriesCount);
    double spacing = Math.max(count, (n - 1) / 12.0);
    double offset = spacing * (s % count) / count;
    List<Integer> indices = new ArrayList<>();
    for (double p = offset; p <= n - 1 + 1e-9; p += spacing) {
      int i = (int) Math.round(p);
      if (indices.isEmpty() || indices.get(indices.size() - 1) != i) {
        indices.add(i);
      }
    }
    return indices.stream().mapToInt(Integer::intValue).toArray();
  }

  private static void drawMarker(Graphics2D g, int s, double x, double y) {
    double size = MARKER_SIZES[Math.min(s, MARKER_SIZES.length - 1)];
    double h = size / 2;
    Shape shape = switch (s % 4) {
      case 0 -> new Ellipse2D.Double(x - h, y - h, size, size);
      case 1 -> new Rectangle2D.Double(x - h, y - h, size, size);
      case 2 -> polygon(new double[] {x, x + h * 1.15, x - h * 1.15},
          new double[] {y - h * 1.2, y + h * 0.9, y + h * 0.9});
      default -> polygon(new double[] {x, x + h * 1.2, x, x - h * 1.2},
          new double[] {y - h * 1.2, y, y + h * 1.2, y});
    };
    if (s % 2 == 0) {
      g.fill(shape);
    } else {
      Color color = g.getColor();
      g.setColor(Color.WHITE);
      g.fill(shape);
      g.setColor(color);
      g.draw(shape);
    }
  }

  private static Shape polygon(double[] xs, double[] ys) {
    Path2D.Double p = new Path2D.Double();
    p.moveTo(xs[0], ys[0]);
    for (int i = 1; i < xs.length; i++) {
      p.lineTo(xs[i], ys[i]);
    }
    p.closePath();
    return p;
  }

  /** Splits text at spaces into lines at most {@code width} pixels wide (a longer word stays whole). */
  private static List<String> wrap(String text, FontMetrics metrics, int width) {
    List<String> lines = new ArrayList<>();
    StringBuilder line = new StringBuilder();
    for (String word : text.split(" ")) {
      String candidate = line.isEmpty() ? word : line + " " + word;
      if (metrics.stringWidth(candidate) <= width || line.isEmpty()) {
        line.setLength(0);
        line.append(candidate);
      } else {
        lines.add(line.toString());
        line.setLength(0);
        line.append(word);
      }
    }
    lines.add(line.toString());
    return lines;
  }

  private static String fit(String text, FontMetrics metrics, int width) {
    if (metrics.stringWidth(text) <= width) {
      return text;
    }
    String cut = text;
    while (cut.length() > 1 && metrics.stringWidth(cut + "…") > width) {
      cut = cut.substring(0, cut.length() - 1);
    }
    return cut + "…";
  }
}
