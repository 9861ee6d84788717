package dev.blip2dl4j.cli;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.finetune.FinetuneSettings;
import dev.blip2dl4j.finetune.FinetunedArtifact;
import dev.blip2dl4j.finetune.Finetuner;
import dev.blip2dl4j.finetune.MetricsLog;
import dev.blip2dl4j.finetune.MetricsPlot;
import dev.blip2dl4j.finetune.TrainingCheckpoint;
import dev.blip2dl4j.finetune.WeightDecayGroups;
import dev.blip2dl4j.finetune.data.BadRow;
import dev.blip2dl4j.finetune.data.DataSplit;
import dev.blip2dl4j.finetune.data.VqaDataset;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.zoo.Blip2;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "finetune", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tune a BLIP-2 captioning model on your own visual questions (stage two: the Q-Former, "
                + "query tokens and projection learn; the vision encoder and the language model stay frozen), and "
                + "write the result as a new artifact that every command loads.",
                "Data: JSONL, one {\"image\": \"path\", \"question\": \"...\", \"answer\": \"...\"} (or \"answers\": "
                        + "[...]) a line, image paths relative to the file or --image-root; LAVIS's VQA JSON; or the "
                        + "official VQAv2 questions with --train-annotations. Defaults are LAVIS's stage-two settings.",
                "",
                "Example: blip2 finetune --model blip2-opt-2.7b --train train.jsonl --val-split 0.1 -o tuned.b2z"})
final class FinetuneCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    ArtifactOption model;

    @Mixin
    ResidentOption resident;

    @Option(names = "--train", required = true, paramLabel = "FILE", description = "The training data.")
    Path train;

    @Option(names = "--train-annotations", paramLabel = "FILE", description = "VQAv2 annotations for --train's questions.")
    Path trainAnnotations;

    @ArgGroup(exclusive = true)
    Validation validation = new Validation();

    static final class Validation {
        @Option(names = "--val", paramLabel = "FILE", description = "Validation data (default: none).")
        Path file;

        @Option(names = "--val-split", paramLabel = "F",
                description = "Hold out this fraction of the training images (whole images, seeded) for validation.")
        Double split;
    }

    @Option(names = "--val-annotations", paramLabel = "FILE", description = "VQAv2 annotations for --val's questions.")
    Path valAnnotations;

    @Mixin
    VqaDataOptions data;

    @Option(names = {"-o", "--output"}, required = true, paramLabel = "OUT.b2z",
            description = "The fine-tuned model: never an input, never an existing file without --resume or --overwrite.")
    Path output;

    @Option(names = "--overwrite", description = "Start afresh over a previous run's artifact, checkpoints, metrics "
            + "and plot (without it, or --resume, they are never replaced).")
    boolean overwrite;

    @Option(names = "--lr", defaultValue = "1e-4", paramLabel = "X", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double learningRate;

    @Option(names = "--min-lr", defaultValue = "1e-5", paramLabel = "X", description = "Where the cosine decay ends (default: ${DEFAULT-VALUE}).")
    double minLearningRate;

    @Option(names = "--warmup", defaultValue = "2000", paramLabel = "N",
            description = "Micro-batches of linear warmup in the first epoch; 0: none (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-lr", defaultValue = "1e-6", paramLabel = "X", description = "Where warmup starts (default: ${DEFAULT-VALUE}).")
    double warmupLearningRate;

    @Option(names = "--weight-decay", defaultValue = "0.05", paramLabel = "X", description = "AdamW's decoupled weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--decay-all", description = "Decay every trained parameter (default: not biases and norms, as LAVIS).")
    boolean decayAll;

    @Option(names = "--epochs", defaultValue = "10", paramLabel = "N", description = "Passes over the training data (default: ${DEFAULT-VALUE}).")
    int epochs;

    @Option(names = "--max-steps", defaultValue = "0", paramLabel = "N", description = "Stop after N optimizer steps (default: the epochs decide).")
    int maxSteps;

    @Option(names = "--batch-size", defaultValue = "4", paramLabel = "N", description = "Examples per micro-batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--grad-accum", defaultValue = "1", paramLabel = "N",
            description = "Micro-batches whose gradients make one optimizer step (default: ${DEFAULT-VALUE}).")
    int accumulation;

    @Option(names = "--clip", defaultValue = "0", paramLabel = "X", description = "Clip the global gradient norm to X (default: 0, never).")
    double clip;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "N",
            description = "Data order, augmentation and --val-split follow from it (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--no-augment", description = "Train on the images as they are (no random crop and flip); "
            + "their features are then computed once.")
    boolean noAugment;

    @Option(names = "--checkpoint-dir", paramLabel = "DIR", description = "Where checkpoints go (default: OUT.checkpoints/).")
    Path checkpointDir;

    @Option(names = "--checkpoint-every", defaultValue = "500", paramLabel = "N",
            description = "Optimizer steps between checkpoints; one is also written at the end (default: ${DEFAULT-VALUE}).")
    int checkpointEvery;

    @Option(names = "--resume", description = "Continue from the checkpoint (same model, data and settings): ends "
            + "with the same weights as a run never stopped.")
    boolean resume;

    @Option(names = "--eval-every", defaultValue = "0", paramLabel = "N", description = "Optimizer steps between validations (default: 0, every epoch).")
    int evalEvery;

    @Option(names = "--eval-beams", defaultValue = "5", paramLabel = "N", description = "Beams of validation's answers (default: ${DEFAULT-VALUE}).")
    int evalBeams;

    @Option(names = "--eval-max-new-tokens", defaultValue = "10", paramLabel = "N",
            description = "New tokens at most in validation's answers (default: ${DEFAULT-VALUE}).")
    int evalMaxNewTokens;

    @Option(names = "--metrics", paramLabel = "FILE", description = "The metrics log, JSON lines (default: OUT.metrics.jsonl).")
    Path metrics;

    @Option(names = "--plot", paramLabel = "FILE", description = "The PNG of loss and accuracy written at the end (default: OUT.metrics.png).")
    Path plot;

    @Mixin
    Blip2Command.Verbosity verbosity;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        FinetuneSettings settings = settings();
        Path checkpoint = (checkpointDir != null ? checkpointDir : sibling(".checkpoints")).resolve("checkpoint.ckpt");
        Path metricsFile = metrics != null ? metrics : sibling(".metrics.jsonl");
        Path plotFile = plot != null ? plot : sibling(".metrics.png");

        VqaDataset trainData = data.read(train, trainAnnotations);
        VqaDataset validationData = validation.file != null ? data.read(validation.file, valAnnotations) : null;
        List<VqaExample> trainExamples = trainData.examples();
        List<VqaExample> validationExamples = validationData != null ? validationData.examples() : List.of();
        if (validation.split != null) {
            DataSplit split = split(trainExamples);
            trainExamples = split.train();
            validationExamples = split.validation();
        }
        List<Manifest.SourceFile> files = new ArrayList<>(trainData.files());
        List<BadRow> skipped = new ArrayList<>(trainData.skipped());
        if (validationData != null) {
            files.addAll(validationData.files());
            skipped.addAll(validationData.skipped());
        }
        Map<String, String> dataHashes = new LinkedHashMap<>();
        files.forEach(f -> dataHashes.put(f.name(), f.sha256()));

        // every output is checked before the model is pulled or loaded, and so before the first step
        List<Path> inputs = inputs(trainExamples, validationExamples);
        boolean replace = resume || overwrite;
        String toReplace = "--resume continues the run that wrote it, --overwrite starts afresh over it";
        OutputFile artifactOut = OutputFile.check(output, inputs, replace, toReplace);
        OutputFile metricsOut = OutputFile.check(metricsFile, inputs, replace, toReplace);
        OutputFile plotOut = OutputFile.check(plotFile, inputs, replace, toReplace);
        createDirectories(checkpoint.getParent());
        OutputFile checkpointOut = TrainingCheckpoint.output(checkpoint, inputs, replace, toReplace);
        OutputFile.requireDistinct(List.of(artifactOut, metricsOut, plotOut, checkpointOut));

        Path artifactPath = model.artifact();
        try (Artifact base = Artifact.open(artifactPath);
             Blip2 blip2 = model.load(artifactPath).residentLanguageModel(resident.on)) {
            Finetuner.Provenance provenance = new Finetuner.Provenance(dataHashes, FinetunedArtifact.baseModelId(base));
            Finetuner finetuner = new Finetuner(blip2, settings, provenance);
            Finetuner.Prepared preparedTrain = finetuner.prepare(trainExamples, data.onBadRow, !settings.augment());
            Finetuner.Prepared preparedValidation = finetuner.prepareValidation(validationExamples, data.onBadRow);
            skipped.addAll(preparedTrain.skipped());
            skipped.addAll(preparedValidation.skipped());
            VqaDataOptions.reportSkipped(skipped, err);
            if (preparedTrain.examples().isEmpty()) {
                throw new BadInputException(train, "no training question is left to learn from");
            }
            err.printf("%d training questions, %d validation questions%n", preparedTrain.examples().size(),
                    preparedValidation.examples().size());

            Finetuner.Result result;
            long started = System.nanoTime();
            try (MetricsLog log = new MetricsLog(metricsOut, settings, provenance)) {
                result = finetuner.train(preparedTrain.examples(), preparedValidation.examples(), checkpointOut, resume,
                        Finetuner.Listener.all(new TrainingProgress(err), log));
            }
            double seconds = (System.nanoTime() - started) / 1e9;
            FinetunedArtifact.write(base, result.parameters(), artifactOut, files, List.of(String.format(Locale.ROOT,
                    "blip2 finetune: %d optimizer steps on %d questions; settings %s", result.steps(),
                    preparedTrain.examples().size(), settings.training())));
            MetricsPlot.write(metricsFile, plotOut);

            out.printf(Locale.ROOT, "trained %d steps in %s%n", result.steps(), TrainingProgress.duration(seconds));
            if (result.lastValidation() != null) {
                Finetuner.ValidationRecord v = result.lastValidation();
                out.printf(Locale.ROOT, "validation: VQA accuracy %.1f%%, exact match %.1f%%, loss %.4f%n",
                        100 * v.evaluation().accuracy(), 100 * v.evaluation().exactMatch(), v.loss());
            }
            out.printf("wrote %s (metrics %s, plot %s, checkpoint %s)%n", output, metricsFile, plotFile, checkpoint);
            out.flush();
        }
        return Blip2Exit.OK;
    }

    private FinetuneSettings settings() {
        try {
            // LAVIS's schedule gives the first micro-batch the warmup rate even with 0 warmup steps; no warmup
            // means starting at the peak, as LAVIS's own default (warmup_lr = init_lr) does
            double warmupStart = warmup == 0 ? learningRate : warmupLearningRate;
            return new FinetuneSettings(epochs, maxSteps, batchSize, accumulation, learningRate, minLearningRate, warmup,
                    warmupStart, weightDecay, decayAll ? WeightDecayGroups.ALL : WeightDecayGroups.LAVIS, clip, seed,
                    !noAugment, data.template, data.maxQuestionWords, checkpointEvery, evalEvery, evalBeams, evalMaxNewTokens);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
    }

    private DataSplit split(List<VqaExample> examples) {
        try {
            return DataSplit.of(examples, validation.split, seed);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), "--val-split: " + e.getMessage());
        }
    }

    /** What this run reads: the model (where it is a path), the data and annotation files, the images. */
    private List<Path> inputs(List<VqaExample> trainExamples, List<VqaExample> validationExamples) {
        List<Path> inputs = new ArrayList<>(model.paths());
        inputs.addAll(Arrays.asList(train, trainAnnotations, validation.file, valAnnotations));
        Stream.concat(trainExamples.stream(), validationExamples.stream()).map(VqaExample::image).distinct()
                .forEach(inputs::add);
        return inputs;
    }

    /** OUT.b2z's sibling with the given suffix in place of .b2z: tuned.b2z, tuned.metrics.jsonl. */
    private Path sibling(String suffix) {
        String name = output.getFileName().toString();
        String stem = name.endsWith(".b2z") ? name.substring(0, name.length() - 4) : name;
        return output.resolveSibling(stem + suffix);
    }

    private static void createDirectories(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new BadInputException(dir, "cannot create the checkpoint folder (" + e.getMessage() + ")", e);
        }
    }
}
