package dev.blip2dl4j.examples;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.config.Blip2Parameters;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Converts a BLIP-2 checkpoint into a .b2z artifact and reads it back.
 *
 * <pre>examples/run ConvertCheckpoint fixtures/blip2-tiny-opt tiny-opt.b2z</pre>
 */
public final class ConvertCheckpoint {
    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: ConvertCheckpoint CHECKPOINT_FOLDER OUT.b2z");
            System.exit(2);
        }
        Path checkpoint = Path.of(args[0]);
        Path output = Path.of(args[1]);

        Converter.Result result = Converter.convert(List.of(checkpoint), output, Converter.Options.defaults(),
                ConversionProgress.NONE);
        System.out.printf("converted %s in %d ms%n", checkpoint, result.elapsed().toMillis());

        try (Artifact artifact = Artifact.open(output)) {
            Manifest manifest = artifact.manifest();
            System.out.printf("%s%s: %d tensors%n", manifest.modelClass(),
                    manifest.languageModel() == null ? "" : " with " + manifest.languageModel(), manifest.tensors().size());
            Manifest.Tensor queries = artifact.tensor(Blip2Parameters.queryTokens()).orElseThrow();
            ByteBuffer values = artifact.map(queries.name()); // memory-mapped, no copy
            System.out.printf("%s %s: first value %f%n", queries.name(), Arrays.toString(queries.shape()),
                    values.getFloat(0));
        }
    }
}
