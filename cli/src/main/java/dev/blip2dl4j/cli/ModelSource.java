package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.plan.StoragePolicy;
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
 * What every {@code --model} shares: a name of the catalogue is pulled into the cache, in the storage types
 * {@code --dtype} (and {@code --vision-dtype}, {@code --lm-dtype}) ask for, as {@code blip2 pull} takes them; a
 * path that exists wins over a name, and its types are the ones it was converted to. Each command's option says what it takes ({@link ModelOption}, {@link ArtifactOption}).
 */
abstract class ModelSource {
    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Option(names = "--no-memory-check",
            description = "Load the model even if it needs more memory than this machine has.")
    boolean noMemoryCheck;

    @Mixin
    HubOptions hubOptions;

    @Mixin
    StorageOptions storage;

    /** What --model named. */
    abstract List<Path> paths();

    boolean isName() {
        List<Path> model = paths();
        if (model.size() != 1 || Files.exists(model.get(0))) {
            if (storage.given()) {
                throw new BadInputException(model.get(0), "is a file: its storage types are the ones it was converted "
                        + "to, and --dtype, --vision-dtype and --lm-dtype choose them for a model name only (convert "
                        + "a checkpoint in another type with blip2 convert --dtype TYPE)");
            }
            return false;
        }
        if (hub().catalogue().find(model.get(0).toString()).isEmpty()) {
            throw new BadInputException(model.get(0), "is neither a file nor a model name of the catalogue "
                    + "(`blip2 models` lists them)");
        }
        return true;
    }

    /** The storage types a model name is pulled in. */
    StoragePolicy storage() {
        return storage.policy();
    }

    Hub hub() {
        return hubOptions.hub();
    }

    MemoryCheck memory() {
        return noMemoryCheck ? MemoryCheck.OFF : MemoryCheck.system();
    }

    PullProgress progress() {
        return new PullProgress(command.commandLine().getErr(), false);
    }
}
