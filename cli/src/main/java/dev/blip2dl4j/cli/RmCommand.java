package dev.blip2dl4j.cli;

import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import dev.blip2dl4j.zoo.hub.Hub;
import dev.blip2dl4j.zoo.hub.ModelCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "rm", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Remove pulled models from the cache: the artifacts (in every storage type) and any downloaded "
                + "or partly downloaded files; with --dtype (or --vision-dtype, --lm-dtype), only the artifact of that "
                + "type. Waits for a pull of the same model in another process to end first.",
                "",
                "Examples:",
                "  blip2 rm blip2-opt-6.7b",
                "  blip2 rm blip2-opt-6.7b --dtype int8"})
final class RmCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "1..*", description = "Models from `blip2 models`.")
    List<String> names;

    @Mixin
    StorageOptions storage;

    @Mixin
    HubOptions hubOptions;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        Hub hub = hubOptions.hub();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        for (String name : names) {
            CatalogueEntry entry = hub.catalogue().require(name);
            if (storage.given()) {
                Path artifact = hub.cache().artifact(entry, storage.policy());
                long bytes = Files.isRegularFile(artifact) ? artifact.toFile().length() : 0;
                if (hub.remove(name, storage.policy(), err::println)) {
                    out.printf("removed %s (%s freed)%n", artifact.getFileName(), ByteSizes.format(bytes));
                } else {
                    out.printf("%s is not in the cache as %s (%s)%n", name, ModelCache.tag(storage.policy()), artifact);
                }
                continue;
            }
            long bytes = hub.cache().artifactBytes(entry) + hub.cache().downloadedBytes(entry);
            if (hub.remove(name, err::println)) {
                out.printf("removed %s (%s freed)%n", name, ByteSizes.format(bytes));
            } else {
                out.printf("%s is not in the cache (%s)%n", name, hub.cache().root());
            }
        }
        return Blip2Exit.OK;
    }
}
