package dev.blip2dl4j.examples;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;

import java.nio.file.Path;
import java.util.List;

/**
 * Converts a checkpoint with the language model in int8 and the image encoder in bfloat16, then captions with it:
 * the products read those types directly, so the model takes about a third of its float32 memory.
 *
 * <pre>examples/run CaptionInInt8 fixtures/blip2-tiny-opt tiny-opt-int8.b2z fixtures/common/merlion.png</pre>
 */
public final class CaptionInInt8 {
    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: CaptionInInt8 CHECKPOINT_FOLDER OUT.b2z IMAGE");
            System.exit(2);
        }
        StoragePolicy storage = StoragePolicy.of(DType.I8).withVision(DType.BF16);
        Converter.Result result = Converter.convert(List.of(Path.of(args[0])), Path.of(args[1]),
                Converter.Options.defaults().withStorage(storage), ConversionProgress.NONE);
        System.out.printf("converted in %d ms: %s%n", result.elapsed().toMillis(), String.join("; ",
                result.manifest().notes()));
        try (Blip2 blip2 = Blip2.load(Path.of(args[1]))) {
            Caption caption = blip2.caption(Path.of(args[2]));
            System.out.println("caption: " + caption.text() + "  (" + caption.timings() + ")");
        }
    }
}
