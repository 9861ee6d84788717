package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.diagnostics.bench.RandomCheckpoint;
import dev.blip2dl4j.zoo.hub.Catalogue;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;

@Command(name = "random-checkpoint", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a random checkpoint with a model's exact tensor names, shapes, dtype and sharding, in "
                + "the Hugging Face layout (safetensors shards cut at 10 GB in state_dict order, their index, "
                + "config.json, the tokenizer's files): full-size benchmarks without downloading the real weights.",
                "",
                "Values are N(0, 0.02), each tensor from its own generator seeded by --seed and its name; memory "
                        + "stays at one buffer whatever the size. The plan is checked against the shards the "
                        + "catalogue records for the model. Tokenizer files come from --tokenizer, else from "
                        + "fixtures/tokenizers/ of a clone (run from its root).",
                "",
                "Examples:",
                "  blip2 random-checkpoint --like blip2-opt-6.7b /data/random-opt-6.7b",
                "  blip2 random-checkpoint --like blip2-flan-t5-xxl --dry-run",
                "  blip2 random-checkpoint --config my-config.json --max-shard-size 2000000000 out/"})
final class RandomCheckpointCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    static final class Source {
        @Option(names = "--like", paramLabel = "NAME", required = true,
                description = "A catalogue model (`blip2 models`): its architecture, and its sharding as recorded.")
        String like;

        @Option(names = "--config", paramLabel = "config.json", required = true,
                description = "A BLIP-2 config of your own.")
        Path config;
    }

    @ArgGroup(multiplicity = "1")
    Source source;

    @Parameters(paramLabel = "OUT_DIR", arity = "0..1", description = "The folder to write (created if absent).")
    Path outDir;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "The values' seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--max-shard-size", paramLabel = "BYTES",
            description = "Cut shards at this many bytes (default: 10000000000, save_pretrained's 10GB).")
    Long maxShardBytes;

    @Option(names = "--layout", paramLabel = "SAVED|FROM_BIN", description = "SAVED: as save_pretrained writes "
            + "safetensors; FROM_BIN: as the hub's 2023 conversions from .bin files, cut counting the tied copies (and "
            + "holding OPT's output projection). Default: the one matching the catalogue's shards with --like, else SAVED.")
    RandomCheckpoint.Layout layout;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "A folder of tokenizer files to copy beside the weights.")
    Path tokenizer;

    @Option(names = "--overwrite", description = "Replace files of an earlier checkpoint in OUT_DIR.")
    boolean overwrite;

    @Option(names = "--dry-run", description = "Print the plan (shards, tensors, sizes) and write nothing.")
    boolean dryRun;

    @Option(names = "--catalogue", paramLabel = "FILE",
            description = "A catalogue of your own (default: $BLIP2_CATALOGUE, else the built-in one).")
    Path catalogue;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        long maxShard = maxShardBytes != null ? maxShardBytes : RandomCheckpoint.MAX_SHARD_BYTES;
        RandomCheckpoint.Plan plan;
        if (source.like != null) {
            CatalogueEntry entry = (catalogue != null ? Catalogue.read(catalogue) : Catalogue.fromEnvironment()).require(source.like);
            plan = maxShardBytes == null && layout == null ? RandomCheckpoint.like(entry)
                    : RandomCheckpoint.plan(RandomCheckpoint.like(entry).config(),
                    layout != null ? layout : RandomCheckpoint.like(entry).layout(), maxShard);
            Optional<String> mismatch = RandomCheckpoint.mismatch(plan, entry);
            mismatch.ifPresent(m -> err.println("warning: the plan differs from the catalogue's shards: " + m));
            out.printf("%s: the %s architecture%s%n", entry.name(), entry.architecture(),
                    mismatch.isEmpty() ? ", shards as the catalogue records them" : "");
        } else {
            plan = RandomCheckpoint.plan(Blip2Config.read(source.config),
                    layout != null ? layout : RandomCheckpoint.Layout.SAVED, maxShard);
        }
        for (RandomCheckpoint.Shard shard : plan.shards()) {
            out.printf("  %s  %d tensors  %d bytes (%s)%n", shard.file(), shard.tensors().size(), shard.bytes(),
                    ByteSizes.format(shard.bytes()));
        }
        out.printf("%d tensors, %d bytes (%s) of float32, %s layout%n", plan.tensorCount(), plan.bytes(),
                ByteSizes.format(plan.bytes()), plan.layout());
        out.flush();
        if (dryRun) {
            return Blip2Exit.OK;
        }
        if (outDir == null) {
            throw new BadInputException("give OUT_DIR, the folder to write the checkpoint to (or --dry-run)");
        }
        Path tokenizerDir = tokenizer != null ? tokenizer : cloneTokenizer(plan.config(), err);
        long started = System.nanoTime();
        RandomCheckpoint.Result result = RandomCheckpoint.write(plan, outDir, seed, tokenizerDir, overwrite, file -> {
            out.printf("wrote %s (%.0f s)%n", file, (System.nanoTime() - started) / 1e9);
            out.flush();
        });
        double seconds = (System.nanoTime() - started) / 1e9;
        out.printf("wrote %s: %d files, %s in %.0f s (%.0f MB/s)%n", result.dir(), result.files().size(),
                ByteSizes.format(result.bytes()), seconds, result.bytes() / 1e6 / Math.max(seconds, 1e-3));
        return Blip2Exit.OK;
    }

    /** The clone's tokenizer fixture of the model's family, or null (with a warning) where there is none. */
    private static Path cloneTokenizer(Blip2Config config, PrintWriter err) {
        String family = config.kind() == ModelKind.IMAGE_TEXT_RETRIEVAL ? "bert-base-uncased"
                : config.useDecoderOnlyLanguageModel() ? "opt" : "t5";
        Path dir = Path.of("fixtures", "tokenizers", family);
        if (Files.isDirectory(dir)) {
            return dir;
        }
        err.println("warning: no tokenizer written: " + dir + " is not here (run from a clone's root, or give --tokenizer)");
        return null;
    }
}
