package dev.blip2dl4j.examples;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Match;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Scores texts against an image with a retrieval model (ITM probability, ITC similarity).
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
            for (String text : Arrays.copyOfRange(args, 2, args.length)) {
                Match m = blip2.match(Path.of(args[1]), text);
                System.out.printf("%-40s itm %.3f  itc %.3f%n", text, m.itmProbability(), m.itcScore());
            }
        }
    }
}
