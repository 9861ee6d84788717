package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.zoo.MemoryCheck;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import dev.blip2dl4j.zoo.hub.Hub;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "pull", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fetch pretrained models by name into the cache: download the publisher's files (resuming "
                + "what an earlier pull left), check each against the catalogue's size and SHA-256, convert them into "
                + "one artifact and delete them. Afterwards `--model NAME` uses the artifact, offline too.",
                "",
                "Another process pulling the same model makes this one wait, then find it cached. HF_TOKEN is sent "
                        + "to the hub for gated repositories or mirrors that want one.",
                "",
                "--dtype converts the download straight into that storage type (one streaming pass); the cache "
                        + "keeps one artifact per model and type. A model that will not fit this machine's memory "
                        + "in the type asked is refused before any download, naming the type it fits in.",
                "",
                "Examples:",
                "  blip2 pull blip2-opt-2.7b",
                "  blip2 pull blip2-opt-6.7b --dtype int8",
                "  blip2 pull blip2-flan-t5-xxl --dtype int8 --vision-dtype bfloat16",
                "  blip2 pull blip2-flan-t5-xl --cache-dir /data/models --keep-source"})
final class PullCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "1..*", description = "Models from `blip2 models`.")
    List<String> names;

    @Option(names = "--keep-source", description = "Keep the downloaded files after converting them.")
    boolean keepSource;

    @Option(names = "--quiet", description = "No progress bars.")
    boolean quiet;

    @Mixin
    StorageOptions storage;

    @Option(names = "--no-memory-check",
            description = "Pull a model even if it needs more memory than this machine has (to copy it elsewhere).")
    boolean noMemoryCheck;

    @Mixin
    HubOptions hubOptions;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        Hub hub = hubOptions.hub();
        hub = new Hub(hub.catalogue(), hub.settings().withKeepSource(keepSource));
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        MemoryCheck memory = noMemoryCheck ? MemoryCheck.OFF : MemoryCheck.system();
        StoragePolicy policy = storage.policy();
        for (String name : names) {
            CatalogueEntry entry = hub.catalogue().require(name);
            memory.require(name, policy, entry::weightBytes, "choose a smaller model (`blip2 models` lists each "
                    + "one's memory per type)");
            boolean cached = hub.cache().isCached(entry, policy);
            Path artifact;
            try (PullProgress progress = new PullProgress(err, quiet)) {
                artifact = hub.pull(name, policy, progress);
            }
            out.printf("%s: %s%s (%s)%n", name, cached ? "already cached at " : "", artifact, ByteSizes.format(size(artifact)));
            out.flush();
        }
        return Blip2Exit.OK;
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
