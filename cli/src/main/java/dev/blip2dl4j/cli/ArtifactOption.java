package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.zoo.Blip2;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --model} for what needs the artifact itself (fine-tuning copies its frozen tensors): a model name,
 * pulled into the cache, or a .b2z file; an original checkpoint is refused with the command that converts it.
 */
final class ArtifactOption extends ModelSource {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
            description = "A model name (`blip2 models` lists them; pulled on first use) or a .b2z artifact. A "
                    + "checkpoint is converted first: blip2 convert CHECKPOINT -o model.b2z.")
    Path model;

    @Override
    List<Path> paths() {
        return List.of(model);
    }

    /** The model as a .b2z file. */
    Path artifact() {
        if (isName()) {
            try (PullProgress progress = progress()) {
                return hub().pull(model.toString(), storage(), progress);
            }
        }
        if (!model.toString().endsWith(".b2z") || !Files.isRegularFile(model)) {
            throw new BadInputException(model, "is not a .b2z artifact: this command starts from an artifact "
                    + "or a model name. Convert the checkpoint first: blip2 convert " + model + " -o model.b2z");
        }
        return model;
    }

    /** Loads the artifact {@link #artifact()} gave, with this option's memory check. */
    Blip2 load(Path artifact) {
        return Blip2.load(List.of(artifact), Converter.Options.defaults(), memory());
    }
}
