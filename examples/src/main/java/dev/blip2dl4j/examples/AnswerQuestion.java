package dev.blip2dl4j.examples;

import dev.blip2dl4j.zoo.Blip2;

import java.nio.file.Path;

/**
 * Answers a question about an image (visual question answering).
 *
 * <pre>examples/run AnswerQuestion fixtures/blip2-tiny-t5 fixtures/common/merlion.png "which city is this?"</pre>
 */
public final class AnswerQuestion {
    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: AnswerQuestion MODEL IMAGE QUESTION");
            System.exit(2);
        }
        try (Blip2 blip2 = Blip2.load(Path.of(args[0]))) {
            System.out.println(blip2.questionPrompt(args[2]) + " " + blip2.answer(Path.of(args[1]), args[2]).text());
        }
    }
}
