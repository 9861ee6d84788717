package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.diagnostics.bench.RandomCheckpoint;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.hub.Catalogue;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.Callable;

@Command(name = "random-checkpoint", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Write a random checkpoint with a model's exact tensor names, shapes and sharding, in float32 or half "
                + "precision, in "
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
                "  blip2 random-checkpoint --like blip2-opt-6.7b --dtype float16 /data/random-opt-6.7b-fp16",
                "  blip2 random-checkpoint --like blip2-flan-t5-xxl --dtype int8 /data/random-flan-t5-xxl-int8.b2z",
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

    @Parameters(paramLabel = "OUT", arity = "0..1", description = "The folder to write the checkpoint to (created if "
            + "absent), or a .b2z file: the artifact converting that checkpoint with --dtype would give, written "
            + "straight from the random values (no checkpoint on disk).")
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

    /**
     * A checkpoint: --dtype float32, float16 or bfloat16, the type of every tensor (half precision as many uploads
     * are: the float32 values rounded, the shards cut where float32's are, each half the size). An artifact: the
     * storage types, as convert takes them.
     */
    @Mixin
    StorageOptions storage;

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
        boolean artifact = outDir != null && outDir.toString().endsWith(".b2z");
        StoragePolicy policy = storage.policy();
        DType type = artifact ? null : checkpointType(policy);
        // the plan is float32's; a half-precision checkpoint's shards are cut at the same tensors, each half the size
        int elementBytes = artifact ? Float.BYTES : type.size();
        for (RandomCheckpoint.Shard shard : plan.shards()) {
            long bytes = shard.bytes() / Float.BYTES * elementBytes;
            out.printf("  %s  %d tensors  %d bytes (%s)%n", shard.file(), shard.tensors().size(), bytes,
                    ByteSizes.format(bytes));
        }
        if (!artifact) {
            long bytes = plan.bytes() / Float.BYTES * type.size();
            out.printf("%d tensors, %d bytes (%s) of %s, %s layout%n", plan.tensorCount(), bytes, ByteSizes.format(bytes),
                    type.userName(), plan.layout());
        }
        out.flush();
        if (dryRun) {
            return Blip2Exit.OK;
        }
        if (outDir == null) {
            throw new BadInputException("give OUT, the folder to write the checkpoint to or a .b2z artifact (or --dry-run)");
        }
        Path tokenizerDir = tokenizer != null ? tokenizer : cloneTokenizer(plan.config(), err);
        long started = System.nanoTime();
        if (artifact) {
            RandomCheckpoint.Result result = RandomCheckpoint.writeArtifact(plan, outDir, seed, policy, tokenizerDir,
                    overwrite);
            double seconds = (System.nanoTime() - started) / 1e9;
            out.printf("wrote %s: %s of tensors (%s) in %.0f s%n", result.dir(), ByteSizes.format(result.bytes()),
                    policy.describe(), seconds);
            return Blip2Exit.OK;
        }
        RandomCheckpoint.Result result = RandomCheckpoint.write(plan, outDir, seed, type, tokenizerDir, overwrite, file -> {
            out.printf("wrote %s (%.0f s)%n", file, (System.nanoTime() - started) / 1e9);
            out.flush();
        });
        double seconds = (System.nanoTime() - started) / 1e9;
        out.printf("wrote %s: %d files, %s in %.0f s (%.0f MB/s)%n", result.dir(), result.files().size(),
                ByteSizes.format(result.bytes()), seconds, result.bytes() / 1e6 / Math.max(seconds, 1e-3));
        return Blip2Exit.OK;
    }

    /** A checkpoint has one type, a floating-point one: anything else is a usage error (exit 2). */
    private DType checkpointType(StoragePolicy policy) {
        DType type = policy.dtype();
        if (type == DType.I8 || policy.vision() != type || policy.languageModel() != type) {
            throw new ParameterException(spec.commandLine(), "a checkpoint's tensors all have one type, float32, "
                    + "float16 or bfloat16 (--dtype); int8 and --vision-dtype, --lm-dtype are for a .b2z artifact");
        }
        return type;
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
