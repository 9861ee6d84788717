package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.MemoryCheck;
import dev.blip2dl4j.zoo.hub.Hub;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --model}: a model name from the catalogue (pulled into the cache on first use), an artifact, or an
 * original checkpoint (with --config / --lavis-type for LAVIS). A path that exists wins over a name.
 */
final class ModelOption {
    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Option(names = {"-m", "--model"}, required = true, paramLabel = "MODEL",
            description = "A model name (`blip2 models` lists them; pulled on first use), a .b2z artifact, or a "
                    + "checkpoint folder or file as `blip2 convert` takes them; repeat for a checkpoint in several "
                    + "parts (a LAVIS .pth, eva_vit_g.pth, the LLM folder).")
    List<Path> model;

    @Option(names = "--config", paramLabel = "config.json", description = "For a LAVIS checkpoint: its BLIP-2 config.")
    Path config;

    @Option(names = "--lavis-type", paramLabel = "TYPE", description = "For a LAVIS checkpoint: its model type.")
    String lavisType;

    @Option(names = "--no-memory-check",
            description = "Load the model even if it needs more memory than this machine has.")
    boolean noMemoryCheck;

    @Option(names = "--resident",
            description = "Copy the language model's weights into memory instead of reading them through the file "
                    + "mapping: faster decoding (about 1.7x on blip2-opt-2.7b), as much more memory as they take.")
    boolean resident;

    @Mixin
    HubOptions hubOptions;

    Blip2 load() {
        return open().residentLanguageModel(resident);
    }

    private Blip2 open() {
        if (isName()) {
            try (PullProgress progress = new PullProgress(command.commandLine().getErr(), false)) {
                return Blip2.pretrained(model.get(0).toString(), hub(), memory(), progress);
            }
        }
        return Blip2.load(model, Converter.Options.defaults().withConfig(config).withLavisType(lavisType), memory());
    }

    /**
     * The model as a .b2z file, for what needs the artifact itself (fine-tuning copies its frozen tensors): a
     * name is pulled into the cache; an original checkpoint is refused with the command that converts it.
     */
    Path artifact() {
        if (isName()) {
            try (PullProgress progress = new PullProgress(command.commandLine().getErr(), false)) {
                return hub().pull(model.get(0).toString(), progress);
            }
        }
        if (model.size() != 1 || !model.get(0).toString().endsWith(".b2z") || !Files.isRegularFile(model.get(0))) {
            throw new BadInputException(model.get(0), "is not a .b2z artifact: this command starts from an artifact "
                    + "or a model name. Convert the checkpoint first: blip2 convert " + model.get(0) + " -o model.b2z");
        }
        return model.get(0);
    }

    /** Loads the artifact {@link #artifact()} gave, with this option's memory check and --resident. */
    Blip2 load(Path artifact) {
        return Blip2.load(List.of(artifact), Converter.Options.defaults(), memory()).residentLanguageModel(resident);
    }

    private boolean isName() {
        if (model.size() != 1 || Files.exists(model.get(0))) {
            return false;
        }
        if (hub().catalogue().find(model.get(0).toString()).isEmpty()) {
            throw new BadInputException(model.get(0), "is neither a file nor a model name of the catalogue "
                    + "(`blip2 models` lists them)");
        }
        return true;
    }

    private Hub hub() {
        return hubOptions.hub();
    }

    private MemoryCheck memory() {
        return noMemoryCheck ? MemoryCheck.OFF : MemoryCheck.system();
    }
}
