package dev.blip2dl4j.examples;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Match;
import dev.blip2dl4j.zoo.image.DecodedImage;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Scores texts against an image with a retrieval model (ITM probability, ITC similarity), all texts in one batch,
 * and prints the shape of the image's features (the Q-Former's query outputs). Any storage type: an artifact
 * converted with {@code --dtype int8} runs the same way.
 *
 * <pre>examples/run MatchImageText fixtures/blip2-tiny-itm fixtures/common/merlion.png "a fountain" "a dog"</pre>
 */
public final class MatchImageText {
    public static void main(String[] args) {
        if (args.length < 3) {
            System.err.println("usage: MatchImageText MODEL IMAGE TEXT...");
            System.exit(2);
        }
        try (Blip2 blip2 = Blip2.load(Path.of(args[0]))) {
            DecodedImage image = blip2.loadImage(Path.of(args[1]));
            List<String> texts = Arrays.asList(Arrays.copyOfRange(args, 2, args.length));
            // the same image object for every text: it goes through the vision encoder once
            List<Match> matches = blip2.match(Collections.nCopies(texts.size(), image), texts);
            for (int i = 0; i < texts.size(); i++) {
                System.out.printf("%-40s itm %.3f  itc %.3f%n", texts.get(i), matches.get(i).itmProbability(),
                        matches.get(i).itcScore());
            }
            System.out.println("image features " + Arrays.toString(blip2.imageFeatures(List.of(image)).shape()));
        }
    }
}
