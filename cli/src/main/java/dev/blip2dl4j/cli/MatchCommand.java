package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.image.DecodedImage;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "match", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Score how well texts describe images with a BLIP-2 retrieval model: the ITM head's "
                + "probability that they match, and the ITC head's similarity.",
                "",
                "Example: blip2 match --model blip2-itm-vit-g.b2z --text 'a dog on a beach' --text 'a city' photo.jpg"})
final class MatchCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOption model;

    @Mixin
    ImageArguments images;

    @Option(names = {"-t", "--text"}, required = true, paramLabel = "TEXT", description = "A text; repeat for several.")
    List<String> texts;

    @Option(names = "--json", description = "Print JSON.")
    boolean json;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        ArrayNode results = JsonNodeFactory.instance.arrayNode();
        int failed = 0;
        try (Blip2 blip2 = model.load()) {
            blip2.exifTranspose(!images.noExif).maxImagePixels(images.maxPixels);
            for (Path image : images.files()) {
                DecodedImage decoded;
                try {
                    decoded = blip2.loadImage(image);
                } catch (BadInputException e) {
                    failed++;
                    if (json) {
                        results.addObject().put("image", image.toString()).put("error", e.getMessage());
                    } else {
                        spec.commandLine().getErr().println("error: " + e.getMessage());
                    }
                    continue;
                }
                // every text about this image in one batch: the image encoded once
                List<Match> matches = blip2.match(Collections.nCopies(texts.size(), decoded), texts);
                for (int i = 0; i < texts.size(); i++) {
                    String text = texts.get(i);
                    Match m = matches.get(i);
                    if (json) {
                        results.addObject().put("image", image.toString()).put("text", text)
                                .put("itm_probability", m.itmProbability()).put("itc_score", m.itcScore());
                    } else {
                        out.printf("%s | %s: itm %.4f, itc %.4f%n", image, text, m.itmProbability(), m.itcScore());
                    }
                }
            }
        }
        if (json) {
            out.println(results.toPrettyString());
        }
        out.flush();
        return failed == 0 ? 0 : Blip2Exit.BAD_INPUT;
    }
}
