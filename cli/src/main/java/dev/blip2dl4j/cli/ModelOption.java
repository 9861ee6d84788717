package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.zoo.Blip2;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/**
 * {@code --model}: a model name from the catalogue (pulled into the cache on first use), an artifact, or an
 * original checkpoint (with --config / --lavis-type for LAVIS).
 */
final class ModelOption extends ModelSource {
    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
            description = "A model name (`blip2 models` lists them; pulled on first use), a .b2z artifact, or a "
                    + "checkpoint folder or file as `blip2 convert` takes them; repeat for a checkpoint in several "
                    + "parts (a LAVIS .pth, eva_vit_g.pth, the LLM folder).")
    List<Path> model;

    @Option(names = "--config", paramLabel = "config.json", description = "For a LAVIS checkpoint: its BLIP-2 config.")
    Path config;

    @Option(names = "--lavis-type", paramLabel = "TYPE", description = "For a LAVIS checkpoint: its model type.")
    String lavisType;

    @Override
    List<Path> paths() {
        return model;
    }

    Blip2 load() {
        if (isName()) {
            try (PullProgress progress = progress()) {
                return Blip2.pretrained(model.get(0).toString(), storage(), hub(), memory(), progress);
            }
        }
        return Blip2.load(model, Converter.Options.defaults().withConfig(config).withLavisType(lavisType), memory());
    }
}
