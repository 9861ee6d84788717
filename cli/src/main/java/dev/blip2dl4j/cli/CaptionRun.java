package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.image.DecodedImage;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;

/**
 * Captions or answers a list of images in batches. An image that cannot be used gets its error and the
 * others still get their text; the exit code then says that something failed.
 */
final class CaptionRun {
    private CaptionRun() {
    }

    /** @return the exit code: 0, or {@link Blip2Exit#BAD_INPUT} if any image failed */
    static int run(Blip2 blip2, List<Path> images, Function<Blip2, String> prompt, GenerationConfig generation,
                   int batchSize, boolean json, PrintWriter out, PrintWriter err) {
        if (batchSize < 1 || batchSize > CaptionOutputOptions.MAX_BATCH) {
            throw new BadInputException("--batch-size must be from 1 to " + CaptionOutputOptions.MAX_BATCH + ", not " + batchSize);
        }
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ArrayNode results = mapper.createArrayNode();
        String text = prompt.apply(blip2);
        int failed = 0;
        List<Path> batch = new ArrayList<>();
        List<DecodedImage> decoded = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            Path image = images.get(i);
            try {
                decoded.add(blip2.loadImage(image));
                batch.add(image);
            } catch (BadInputException e) {
                failed++;
                report(results, out, err, json, image, e.getMessage());
            }
            if (!batch.isEmpty() && (batch.size() == batchSize || i == images.size() - 1)) {
                List<Caption> captions = blip2.caption(decoded, Collections.nCopies(decoded.size(), text), generation);
                for (int j = 0; j < batch.size(); j++) {
                    report(results, out, json, batch.get(j), text, captions.get(j), mapper);
                }
                batch.clear();
                decoded.clear();
            }
        }
        if (json) {
            out.println(results.toPrettyString());
        }
        out.flush();
        return failed == 0 ? 0 : Blip2Exit.BAD_INPUT;
    }

    private static void report(ArrayNode results, PrintWriter out, boolean json, Path image, String prompt,
                               Caption caption, ObjectMapper mapper) {
        if (!json) {
            out.println(image + ": " + caption.text());
            for (int k = 1; k < caption.sequences().size(); k++) {
                out.println("  " + (k + 1) + ". " + caption.sequences().get(k).text());
            }
            return;
        }
        ObjectNode r = results.addObject();
        r.put("image", image.toString());
        r.put("prompt", prompt);
        r.put("text", caption.text());
        ArrayNode sequences = r.putArray("sequences");
        for (Caption.Sequence s : caption.sequences()) {
            ObjectNode node = sequences.addObject();
            node.put("text", s.text());
            ArrayNode ids = node.putArray("ids");
            for (long id : s.ids()) {
                ids.add(id);
            }
            node.put("score", s.score());
        }
        r.set("timings_ms", mapper.valueToTree(caption.timings()));
    }

    private static void report(ArrayNode results, PrintWriter out, PrintWriter err, boolean json, Path image, String error) {
        if (json) {
            results.addObject().put("image", image.toString()).put("error", error);
        } else {
            err.println("error: " + error);
        }
    }
}
