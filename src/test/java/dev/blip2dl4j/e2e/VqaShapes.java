package dev.blip2dl4j.e2e;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A synthetic VQA set made by the fine-tuning tests: 32-pixel images (the tiny models' size) of one coloured
 * square, crimson or cyan, of random size and place, on a dark green ground, each with the question "what
 * color is the square?". The tiny fixture's language model is random, 12 dimensions wide: what the soft
 * prompt adds to its last position can steer its next token only among the few of its 50,272 tokens near
 * the one it says anyway ("pope", "seed"), and no colour name is among them. So each colour is named by a
 * word the tiny model can be taught to say ({@link #ANSWERS}, found by fine-tuning it on this set; with
 * more colours some of them stay out of reach): what the test shows is that the answer comes to follow
 * from the image, which only training the Q-Former and projection can do.
 */
final class VqaShapes {
    static final String QUESTION = "what color is the square?";
    static final List<Color> COLORS = List.of(new Color(200, 0, 40), Color.CYAN);
    static final List<String> ANSWERS = List.of("curated", "resides");

    /** One example: the image file and its answer. */
    record Example(Path image, String answer) {
    }

    private VqaShapes() {
    }

    /** {@code perColor} images of each colour in {@code dir}, named {@code prefix<colour><n>.png}, listed as JSONL. */
    static List<Example> write(Path dir, String prefix, int perColor, long seed) throws IOException {
        Random random = new Random(seed);
        List<Example> examples = new ArrayList<>();
        for (int i = 0; i < perColor; i++) {
            for (int c = 0; c < COLORS.size(); c++) {
                BufferedImage image = new BufferedImage(32, 32, BufferedImage.TYPE_INT_RGB);
                Graphics2D g = image.createGraphics();
                g.setColor(new Color(40, 90, 40));
                g.fillRect(0, 0, 32, 32);
                int size = 12 + random.nextInt(10);
                g.setColor(COLORS.get(c));
                g.fillRect(random.nextInt(32 - size), random.nextInt(32 - size), size, size);
                g.dispose();
                Path file = dir.resolve(prefix + c + "-" + i + ".png");
                ImageIO.write(image, "png", file.toFile());
                examples.add(new Example(file, ANSWERS.get(c)));
            }
        }
        return examples;
    }

    /** The examples as our JSONL, image paths relative to the file's folder. */
    static Path jsonl(Path file, List<Example> examples) throws IOException {
        StringBuilder lines = new StringBuilder();
        for (Example e : examples) {
            lines.append("{\"image\": \"").append(file.getParent().relativize(e.image())).append("\", \"question\": \"")
                    .append(QUESTION).append("\", \"answer\": \"").append(e.answer()).append("\"}\n");
        }
        return Files.writeString(file, lines);
    }
}
