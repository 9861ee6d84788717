package dev.blip2dl4j.convert;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.LavisFacts;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.convert.plan.ConversionPlan;
import dev.blip2dl4j.convert.plan.ConversionPlanner;
import dev.blip2dl4j.convert.plan.RoledSource;
import dev.blip2dl4j.convert.plan.SourceRole;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.convert.plan.TensorStreamer;
import dev.blip2dl4j.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Converts an original BLIP-2 checkpoint (Hugging Face safetensors or .bin, single or sharded; LAVIS
 * .pth, alone or with eva_vit_g.pth and the language model's folder) into a {@code .b2z} artifact:
 * find and open the sources, resolve the config, plan every tensor and check it against the config,
 * then stream the weights into the artifact, which appears only once complete.
 */
public final class Converter {

    private Converter() {
    }

    /**
     * @param format       how to read the sources
     * @param storage      which type each tensor is stored in (float32 by default)
     * @param config       a BLIP-2 config.json to use instead of the checkpoint's (LAVIS has none)
     * @param lavisType    a LAVIS model type whose built-in config to use, e.g. pretrain_opt2.7b
     * @param vitPrecision "fp16" or "fp32": the precision LAVIS ran eva_vit_g.pth's linear layers in;
     *                     null takes the LAVIS config's (fp16 for every BLIP-2 model type)
     * @param overwrite    whether an existing output file (that is none of the inputs) may be replaced
     */
    public record Options(SourceFormat format, StoragePolicy storage, Path config, String lavisType,
                          String vitPrecision, boolean overwrite) {
        public static Options defaults() {
            return new Options(SourceFormat.AUTO, StoragePolicy.FLOAT32, null, null, null, false);
        }

        public Options withConfig(Path file) {
            return new Options(format, storage, file, lavisType, vitPrecision, overwrite);
        }

        /** Every product in {@code type} (see {@link StoragePolicy}). */
        public Options withDtype(DType type) {
            return withStorage(StoragePolicy.of(type));
        }

        public Options withStorage(StoragePolicy policy) {
            return new Options(format, policy, config, lavisType, vitPrecision, overwrite);
        }

        public Options withLavisType(String type) {
            return new Options(format, storage, config, type, vitPrecision, overwrite);
        }

        public Options withOverwrite(boolean replace) {
            return new Options(format, storage, config, lavisType, vitPrecision, replace);
        }
    }

    /** What a finished conversion wrote and noticed. */
    public record Result(Path output, Manifest manifest, List<String> warnings, long bytesRead, Duration elapsed) {
    }

    public static Result convert(List<Path> sources, Path output, Options options, ConversionProgress progress) {
        return convert(sources, output, options, progress, ArtifactWriter::create);
    }

    /**
     * As {@link #convert(List, Path, Options, ConversionProgress)}, writing through {@code openWriter}. The output
     * is checked first, before any source is read: never a source (nor inside a source folder), never a
     * non-regular file, and an existing file only with {@link Options#overwrite}.
     */
    public static Result convert(List<Path> sources, Path output, Options options, ConversionProgress progress,
                                 Function<OutputFile, ArtifactWriter> openWriter) {
        long started = System.nanoTime();
        List<Path> inputs = new ArrayList<>(sources);
        inputs.add(options.config());
        OutputFile out = OutputFile.check(output, inputs, options.overwrite());
        Planned planned = plan(sources, options);
        List<CheckpointSources.Found> found = planned.found();
        Blip2Config config = planned.config();
        ConversionPlan plan = planned.plan();
        ArtifactFiles files = ArtifactFiles.collect(found, config);

        long total = TensorStreamer.totalBytes(plan);
        progress.start(total);
        try (ArtifactWriter writer = openWriter.apply(out)) {
            files.contents().forEach(writer::addFile);
            TensorStreamer.Result streamed = TensorStreamer.stream(plan, writer, progress::advance);
            Manifest manifest = writer.commit(manifest(found, config, plan, files, streamed));
            progress.finish();
            return new Result(output, manifest, streamed.warnings(), total,
                    Duration.ofNanos(System.nanoTime() - started));
        }
    }

    /** A checkpoint opened and checked, with every tensor of the model planned. */
    public record Planned(List<CheckpointSources.Found> found, Blip2Config config, ConversionPlan plan) {
    }

    /**
     * Opens the sources, resolves the config and plans every tensor, checking names and shapes: all a
     * conversion does before it writes, and what using a checkpoint without converting it needs.
     */
    public static Planned plan(List<Path> sources, Options options) {
        List<CheckpointSources.Found> found = CheckpointSources.open(sources, options.format());
        Blip2Config config = resolveConfig(found, options);
        List<RoledSource> parts = found.stream().map(CheckpointSources.Found::part).toList();
        return new Planned(found, config,
                ConversionPlanner.plan(parts, config, options.storage(), vitInHalfPrecision(config, options)));
    }

    /**
     * The config: given with --config; else the Hugging Face BLIP-2 folder's own; else a LAVIS type's
     * built-in one (then a language model folder, if given, supplies the text config); else a BLIP-2
     * config.json beside the LAVIS checkpoint.
     */
    static Blip2Config resolveConfig(List<CheckpointSources.Found> found, Options options) {
        if (options.config() != null) {
            return Blip2Config.read(options.config());
        }
        Optional<CheckpointSources.Found> hf = found.stream()
                .filter(f -> f.modelType().equals(Optional.of("blip-2"))).findFirst();
        if (options.lavisType() != null) {
            Blip2Config config = Blip2Config.knownLavisType(options.lavisType());
            Optional<CheckpointSources.Found> llm = found.stream().filter(f -> f.part().role() == SourceRole.OPT
                    || f.part().role() == SourceRole.T5).findFirst();
            return llm.map(f -> config.withTextConfig(f.folder().resolve("config.json"))).orElse(config);
        }
        if (hf.isPresent()) {
            return Blip2Config.read(hf.get().folder().resolve("config.json"));
        }
        throw new BadInputException(found.get(0).part().source().files().get(0),
                "comes without a BLIP-2 config (LAVIS checkpoints carry none): give one with --config "
                        + "path/to/config.json, or name the LAVIS model type with --lavis-type (one of "
                        + String.join(", ", Blip2Config.KNOWN_LAVIS_TYPES) + ")");
    }

    private static boolean vitInHalfPrecision(Blip2Config config, Options options) {
        String precision = options.vitPrecision();
        if (precision == null) {
            LavisFacts lavis = config.lavis();
            precision = lavis == null ? "fp16" : lavis.vitPrecision();
        }
        return switch (precision) {
            case "fp16" -> true;
            case "fp32" -> false;
            default -> throw new BadInputException("--vit-precision must be fp16 or fp32, not '" + precision + "'");
        };
    }

    private static Manifest manifest(List<CheckpointSources.Found> found, Blip2Config config, ConversionPlan plan,
                                     ArtifactFiles files, TensorStreamer.Result streamed) {
        List<Manifest.SourceFile> sourceFiles = new ArrayList<>();
        for (Map.Entry<Path, String> file : streamed.fileSha256().entrySet()) {
            sourceFiles.add(new Manifest.SourceFile(file.getKey().getFileName().toString(), size(file.getKey()),
                    file.getValue()));
        }
        sourceFiles.addAll(files.sourceFiles());
        String format = String.join("+", found.stream().map(f -> f.part().role().names().format()).distinct().toList());
        List<String> notes = new ArrayList<>(plan.notes());
        if (!plan.storage().equals(StoragePolicy.FLOAT32)) {
            notes.add("stored: " + plan.storage().describe());
        }
        notes.addAll(files.notes());
        notes.addAll(streamed.warnings());
        return new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, config.kind().architecture(),
                config.kind() == ModelKind.CONDITIONAL_GENERATION ? config.text().modelType() : null,
                Version.TEXT, new Manifest.Source(format, sourceFiles), plan.storage().dtype().name(), List.of(), notes);
    }

    private static long size(Path file) {
        try {
            return Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
