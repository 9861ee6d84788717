package dev.blip2dl4j.cli;


import dev.blip2dl4j.zoo.Blip2;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

@Command(name = "caption", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Caption images (or continue a prompt about them) with a BLIP-2 captioning model.",
                "",
                "Example: blip2 caption --model blip2-opt-2.7b.b2z photo.jpg 'album/*.jpg'"})
final class CaptionCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOption model;

    @Mixin
    ResidentOption resident;

    @Mixin
    ImageArguments images;

    @Option(names = "--prompt", defaultValue = "", paramLabel = "TEXT",
            description = "Text the caption continues, e.g. 'a photo of' (default: none).")
    String prompt;

    @Mixin
    GenerationOptions generation;

    @Mixin
    CaptionOutputOptions output;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        try (Blip2 blip2 = model.load().residentLanguageModel(resident.on)) {
            blip2.exifTranspose(!images.noExif).maxImagePixels(images.maxPixels);
            return CaptionRun.run(blip2, images.files(), b -> prompt, generation.apply(blip2.generationDefaults()),
                    output.batchSize, output.json, spec.commandLine().getOut(), spec.commandLine().getErr());
        }
    }
}
