package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import javax.imageio.ImageIO;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A PNG of a {@link MetricsLog}: training and validation loss over the steps above, validation VQA accuracy
 * and exact match below (when the run validated).
 */
public final class MetricsPlot {
    private static final int WIDTH = 900;
    private static final int HEIGHT = 380;
    private static final ObjectMapper JSON = new ObjectMapper();

    private MetricsPlot() {
    }

    /** Writes the plot of the log {@code metrics} to {@code png} (written whole, then renamed into place). */
    public static void write(Path metrics, OutputFile png) {
        Series trainLoss = new Series();
        Series validationLoss = new Series();
        Series accuracy = new Series();
        Series exactMatch = new Series();
        try {
            int number = 0;
            for (String line : Files.readAllLines(metrics, StandardCharsets.UTF_8)) {
                number++;
                if (line.isBlank()) {
                    continue;
                }
                JsonNode m = JSON.readTree(line);
                double step = m.path("step").asDouble();
                switch (m.path("kind").asText()) {
                    case "train" -> trainLoss.add(step, m.path("loss").asDouble());
                    case "validation" -> {
                        validationLoss.add(step, m.path("loss").asDouble());
                        accuracy.add(step, 100 * m.path("accuracy").asDouble());
                        exactMatch.add(step, 100 * m.path("exact_match").asDouble());
                    }
                    case "settings" -> {
                        // what the run was started with: nothing to draw
                    }
                    default -> throw new BadInputException(metrics, "line " + number + " is not a blip2 finetune metric");
                }
            }
        } catch (IOException e) {
            throw new BadInputException(metrics, "not a readable metrics log (" + e.getMessage() + ")", e);
        }
        if (trainLoss.x.isEmpty() && validationLoss.x.isEmpty()) {
            throw new BadInputException(metrics, "has no metrics to plot");
        }
        List<BufferedImage> panels = new ArrayList<>();
        XYChart loss = chart("Loss", "loss");
        trainLoss.addTo(loss, "training", false);
        validationLoss.addTo(loss, "validation", true);
        panels.add(BitmapEncoder.getBufferedImage(loss));
        if (!accuracy.x.isEmpty()) {
            XYChart scores = chart("Validation", "%");
            scores.getStyler().setYAxisMin(0.0).setYAxisMax(100.0);   // a flat 0% should look like 0%, not a mid-line
            accuracy.addTo(scores, "VQA accuracy", true);
            exactMatch.addTo(scores, "exact match", true);
            panels.add(BitmapEncoder.getBufferedImage(scores));
        }
        BufferedImage image = new BufferedImage(WIDTH, HEIGHT * panels.size(), BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        for (int i = 0; i < panels.size(); i++) {
            g.drawImage(panels.get(i), 0, i * HEIGHT, null);
        }
        g.dispose();
        Path partial = png.beginPartial();
        try {
            ImageIO.write(image, "png", partial.toFile());
            png.commit(partial);
        } catch (IOException e) {
            throw new BadInputException(png.path(), "cannot write the plot (" + e.getMessage() + ")", e);
        } finally {
            png.abandon(partial);
        }
    }

    private static XYChart chart(String title, String yTitle) {
        XYChart chart = new XYChartBuilder().width(WIDTH).height(HEIGHT).title(title).xAxisTitle("step")
                .yAxisTitle(yTitle).build();
        chart.getStyler().setChartBackgroundColor(Color.WHITE);
        return chart;
    }

    private static final class Series {
        final List<Double> x = new ArrayList<>();
        final List<Double> y = new ArrayList<>();

        void add(double step, double value) {
            x.add(step);
            y.add(value);
        }

        void addTo(XYChart chart, String name, boolean markers) {
            if (!x.isEmpty()) {
                XYSeries s = chart.addSeries(name, x, y);
                s.setMarker(markers ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
            }
        }
    }
}
