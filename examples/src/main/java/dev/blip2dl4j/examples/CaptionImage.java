package dev.blip2dl4j.examples;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;

import java.nio.file.Path;

/**
 * Captions an image, then continues a prompt about it.
 *
 * <pre>examples/run CaptionImage fixtures/blip2-tiny-opt fixtures/common/merlion.png</pre>
 */
public final class CaptionImage {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: CaptionImage MODEL IMAGE   (MODEL: a .b2z artifact or a checkpoint folder)");
            System.exit(2);
        }
        try (Blip2 blip2 = Blip2.load(Path.of(args[0]))) {
            Path image = Path.of(args[1]);
            Caption caption = blip2.caption(image);
            System.out.println("caption: " + caption.text() + "  (" + caption.timings() + ")");
            Caption prompted = blip2.caption(image, "a photo of", blip2.generationDefaults().withBeams(3, 1));
            System.out.println("a photo of ... " + prompted.text());
        }
    }
}
