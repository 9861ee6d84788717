package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.SourceFormat;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "convert", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Convert an original BLIP-2 checkpoint into a .b2z artifact, streaming, in bounded memory.",
                "",
                "A SOURCE is a folder or a file: a Hugging Face BLIP-2 folder (safetensors, sharded or not, "
                        + "or pytorch_model.bin), a LAVIS .pth, LAVIS's eva_vit_g.pth, or the Hugging Face folder "
                        + "of the language model (facebook/opt-*, google/flan-t5-*) that a LAVIS checkpoint "
                        + "needs. A folder holding several formats is read from its safetensors.",
                "",
                "Examples:",
                "  blip2 convert Salesforce-blip2-opt-2.7b/ -o blip2-opt-2.7b.b2z",
                "  blip2 convert Salesforce-blip2-opt-6.7b/ --dtype int8 --vision-dtype bfloat16 -o opt-6.7b-int8.b2z",
                "  blip2 convert blip2_pretrained_opt2.7b.pth eva_vit_g.pth facebook-opt-2.7b/ \\",
                "        --lavis-type pretrain_opt2.7b -o blip2-opt-2.7b.b2z"})
final class ConvertCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(paramLabel = "SOURCE", arity = "1..*", description = "Checkpoint folders or files.")
    List<Path> sources;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.b2z",
            description = "The artifact to write: never one of the sources, never an existing file without --overwrite.")
    Path output;

    @Option(names = "--overwrite", description = "Replace OUT.b2z if it exists (it is renamed into place only once complete).")
    boolean overwrite;

    @Option(names = "--format", paramLabel = "FORMAT", defaultValue = "auto",
            description = "auto, hf or lavis: the naming of the weights (default: ${DEFAULT-VALUE}, decided per file).")
    String format;

    @Mixin
    StorageOptions storage;

    @Option(names = "--config", paramLabel = "config.json",
            description = "The BLIP-2 config to use (a LAVIS checkpoint has none).")
    Path config;

    @Option(names = "--lavis-type", paramLabel = "TYPE",
            description = "Use the built-in config of a LAVIS model type, e.g. pretrain_opt2.7b, caption_coco_flant5xl, pretrain (the feature extractor).")
    String lavisType;

    @Option(names = "--vit-precision", paramLabel = "fp16|fp32",
            description = "Precision LAVIS ran eva_vit_g.pth's linear layers in (default: the LAVIS type's, fp16).")
    String vitPrecision;

    @Option(names = "--quiet", description = "No progress bar.")
    boolean quiet;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        Converter.Options options = new Converter.Options(sourceFormat(), storage.policy(), config, lavisType,
                vitPrecision, overwrite);
        PrintWriter out = spec.commandLine().getOut();
        Converter.Result result;
        try (ConversionBar progress = new ConversionBar(quiet)) {
            result = Converter.convert(sources, output, options, progress);
        }
        out.printf("wrote %s: %d tensors, %s, %.1f s (%.0f MB/s)%n", result.output(), result.manifest().tensors().size(),
                result.manifest().dtype(), result.elapsed().toMillis() / 1000.0,
                result.bytesRead() / 1e6 / Math.max(1e-3, result.elapsed().toMillis() / 1000.0));
        result.manifest().notes().forEach(n -> out.println("  " + n));
        result.warnings().forEach(w -> spec.commandLine().getErr().println("warning: " + w));
        return 0;
    }

    private SourceFormat sourceFormat() {
        try {
            return SourceFormat.valueOf(format.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(),
                    "--format must be auto, hf or lavis, not '" + format + "'");
        }
    }
}
