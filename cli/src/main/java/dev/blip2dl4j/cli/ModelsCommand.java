package dev.blip2dl4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.MemoryCheck;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import dev.blip2dl4j.zoo.hub.Hub;
import dev.blip2dl4j.zoo.hub.ModelCache;
import dev.blip2dl4j.zoo.hub.RemoteFile;
import dev.blip2dl4j.zoo.hub.RemoteSource;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "models", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"List the pretrained models known by name: what each does, what it downloads, the memory it "
                + "needs, and whether it is in the cache. Name models to see their files and what about them could "
                + "not be verified.",
                "",
                "Examples:",
                "  blip2 models",
                "  blip2 models blip2-opt-2.7b"})
final class ModelsCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "NAME", arity = "0..*", description = "Models to describe in full.")
    List<String> names;

    @Option(names = "--json", description = "Print JSON: every entry with its files, sizes, checksums and cache state.")
    boolean json;

    @Mixin
    HubOptions hubOptions;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() throws IOException {
        Hub hub = hubOptions.hub();
        List<CatalogueEntry> entries = names == null || names.isEmpty() ? hub.catalogue().models()
                : names.stream().map(hub.catalogue()::require).toList();
        PrintWriter out = spec.commandLine().getOut();
        MemoryCheck memory = MemoryCheck.system();
        if (json) {
            out.println(json(hub, entries));
        } else if (names == null || names.isEmpty()) {
            table(out, hub, entries, memory);
        } else {
            entries.forEach(entry -> describe(out, hub.cache(), entry, memory));
        }
        return Blip2Exit.OK;
    }

    private static void table(PrintWriter out, Hub hub, List<CatalogueEntry> entries, MemoryCheck memory) {
        ModelCache cache = hub.cache();
        out.printf("cache: %s; this machine has %s of memory%n%n", cache.root(), ByteSizes.format(memory.availableBytes()));
        int width = Math.max(4, entries.stream().mapToInt(e -> e.name().length()).max().orElse(4));
        String row = "%-" + width + "s  %-11s  %6s  %-9s  %-9s  %-9s  %-9s  %-7s  %s%n";
        out.printf(row, "NAME", "TASKS", "PARAMS", "DOWNLOAD", "MEM FP32", "MEM BF16", "MEM INT8", "SHA-256", "CACHE");
        for (CatalogueEntry e : entries) {
            long parameters = e.parameterCount();
            long required = e.files().stream().filter(f -> !f.optional()).count();
            long checked = e.files().stream().filter(f -> f.sha256() != null).count();
            boolean sizesKnown = e.files().stream().filter(f -> !f.optional()).allMatch(f -> f.displaySize() > 0);
            out.printf(row, e.name(), String.join(",", e.tasks()), String.format("%.2fB", parameters / 1e9),
                    download(e.downloadBytes(), sizesKnown), memory(e, DType.F32, memory), memory(e, DType.BF16, memory),
                    memory(e, DType.I8, memory), checked + "/" + required, cacheState(cache, e));
        }
        out.println();
        out.println("PARAMS in billions. DOWNLOAD: the publisher's files as the hub rounds their sizes (+: and files "
                + "of unknown size; ?: sizes unknown); they are deleted once converted. MEM: the weights stored in that "
                + "type (convert or pull --dtype; norms, tables and the Q-Former stay float32) plus a fifth; ! more "
                + "than this machine has. SHA-256: files with a checksum in the catalogue, of those required (the hub "
                + "shows one only for large files). CACHE: each pulled artifact's size and storage type. `blip2 models "
                + "NAME` shows an entry's files and what could not be verified.");
    }

    /** The memory the entry needs with its products in {@code type}, marked ! where it does not fit. */
    private static String memory(CatalogueEntry e, DType type, MemoryCheck memory) {
        long weights = e.weightBytes(StoragePolicy.of(type));
        return ByteSizes.format(MemoryCheck.estimate(weights)) + (memory.fits(weights) ? "" : "!");
    }

    /** Where the sizes are partly unknown: what is known and a +, or ? when that is next to nothing. */
    private static String download(long known, boolean complete) {
        if (complete) {
            return ByteSizes.format(known);
        }
        return known < 100_000_000 ? "?" : ByteSizes.format(known) + "+";
    }

    /** Each cached artifact's size and type (float32 first), or how much of a pull's download there is. */
    private static String cacheState(ModelCache cache, CatalogueEntry e) {
        Map<String, Path> artifacts = cache.artifacts(e);
        if (!artifacts.isEmpty()) {
            List<String> each = new ArrayList<>();
            artifacts.forEach((tag, file) -> each.add(ByteSizes.format(file.toFile().length()) + " " + tag));
            return "cached, " + String.join(", ", each);
        }
        long partial = cache.downloadedBytes(e);
        return partial > 0 ? "partly downloaded, " + ByteSizes.format(partial) : "not cached";
    }

    private static void describe(PrintWriter out, ModelCache cache, CatalogueEntry e, MemoryCheck memory) {
        long parameters = e.parameterCount();
        out.printf("%s: %s%n", e.name(), e.description());
        out.printf("  tasks: %s; %.2f billion parameters; needs about %s of memory in float32, %s in bfloat16, %s in "
                        + "int8 (this machine has %s)%n", String.join(", ", e.tasks()), parameters / 1e9,
                memory(e, DType.F32, memory), memory(e, DType.BF16, memory), memory(e, DType.I8, memory),
                ByteSizes.format(memory.availableBytes()));
        if (e.lavisType() != null) {
            out.printf("  converted as the LAVIS model type %s%n", e.lavisType());
        }
        out.printf("  cache: %s (%s)%n", cache.artifact(e), cacheState(cache, e));
        cache.artifacts(e).forEach((tag, file) -> out.printf("    %s: %s%n", tag, file));
        for (RemoteSource source : e.sources()) {
            out.printf("  %s%n", source);
            int width = source.files().stream().mapToInt(f -> f.path().length()).max().orElse(10);
            for (RemoteFile f : source.files()) {
                out.println(String.format("    %-" + width + "s  %9s  %s", f.path(),
                        f.displaySize() > 0 ? (f.size() == null ? "~" : "") + ByteSizes.format(f.displaySize()) : "?",
                        f.sha256() != null ? "sha256 " + f.sha256() : f.optional() ? "optional" : "").stripTrailing());
            }
        }
        if (!e.unverified().isEmpty()) {
            out.println("  not verified:");
            e.unverified().forEach(u -> out.printf("    - %s%n", u));
        }
        out.println();
    }

    private static String json(Hub hub, List<CatalogueEntry> entries) throws IOException {
        ObjectMapper mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ArrayNode array = mapper.createArrayNode();
        ModelCache cache = hub.cache();
        for (CatalogueEntry e : entries) {
            ObjectNode node = mapper.valueToTree(e);
            node.put("parameterCount", e.parameterCount());
            node.put("memoryBytes", MemoryCheck.estimate(e.weightBytes(StoragePolicy.FLOAT32)));
            ObjectNode perType = node.putObject("memoryBytesByDtype");
            for (DType type : List.of(DType.F32, DType.BF16, DType.F16, DType.I8)) {
                perType.put(type.userName(), MemoryCheck.estimate(e.weightBytes(StoragePolicy.of(type))));
            }
            node.put("downloadBytes", e.downloadBytes());
            node.put("cached", cache.isCached(e));
            node.put("artifact", cache.artifact(e).toString());
            node.put("artifactBytes", cache.artifactBytes(e));
            ObjectNode artifacts = node.putObject("artifacts");
            cache.artifacts(e).forEach((tag, file) -> artifacts.putObject(tag).put("path", file.toString())
                    .put("bytes", file.toFile().length()));
            node.put("downloadedBytes", cache.downloadedBytes(e));
            array.add(node);
        }
        return mapper.writeValueAsString(array);
    }
}
