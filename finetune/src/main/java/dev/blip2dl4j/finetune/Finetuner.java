package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.finetune.data.BadRow;
import dev.blip2dl4j.finetune.data.BadRowPolicy;
import dev.blip2dl4j.finetune.data.BadRows;
import dev.blip2dl4j.finetune.data.SplitMix64;
import dev.blip2dl4j.finetune.data.VqaExample;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.finetune.eval.VqaEvaluation;
import dev.blip2dl4j.arrays.ResidentWeights;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.zoo.Blip2;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Stage-two fine-tuning on VQA examples, as LAVIS's runner trains: epochs over a seeded shuffle of the data,
 * micro-batches accumulated into AdamW steps ({@link StageTwoTrainer}), the learning rate of LAVIS's
 * warmup-cosine schedule at each step's last micro-batch, validation (loss, VQA accuracy and exact match of
 * generated answers) before training, every so many steps and at the end, and a {@link TrainingCheckpoint}
 * every so many steps and at the end.
 *
 * <p>A run is a function of its settings, data and base model: the data order of an epoch follows from the
 * seed and the epoch, augmentation from a generator whose state the checkpoint keeps, so a run resumed from a
 * checkpoint ends with the same weights, bit for bit, as one that was never stopped.
 */
public final class Finetuner {
    /** What a run tells as it goes: the command line's progress bar and metrics log. */
    public interface Listener {
        default void started(int firstStep, int totalSteps) {
        }

        default void stepped(StepRecord step) {
        }

        default void validating(int examples) {
        }

        /** Validation has answered {@code done} of its questions. */
        default void answered(int done) {
        }

        default void validated(ValidationRecord validation) {
        }

        default void checkpointed(Path file, int step) {
        }

        /** Something the user should know that does not stop the run: a damaged checkpoint passed over. */
        default void warned(String message) {
        }

        /** Tells each of {@code listeners} everything, in order. */
        static Listener all(Listener... listeners) {
            return new Listener() {
                @Override
                public void started(int firstStep, int totalSteps) {
                    for (Listener l : listeners) {
                        l.started(firstStep, totalSteps);
                    }
                }

                @Override
                public void stepped(StepRecord step) {
                    for (Listener l : listeners) {
                        l.stepped(step);
                    }
                }

                @Override
                public void validating(int examples) {
                    for (Listener l : listeners) {
                        l.validating(examples);
                    }
                }

                @Override
                public void answered(int done) {
                    for (Listener l : listeners) {
                        l.answered(done);
                    }
                }

                @Override
                public void validated(ValidationRecord validation) {
                    for (Listener l : listeners) {
                        l.validated(validation);
                    }
                }

                @Override
                public void checkpointed(Path file, int step) {
                    for (Listener l : listeners) {
                        l.checkpointed(file, step);
                    }
                }

                @Override
                public void warned(String message) {
                    for (Listener l : listeners) {
                        l.warned(message);
                    }
                }
            };
        }
    }

    /** One optimizer step: the mean loss of its micro-batches, the rate it used, the gradients' norm before clipping. */
    public record StepRecord(int step, int totalSteps, int epoch, double loss, double learningRate, double gradientNorm,
                             double seconds) {
    }

    /** Validation after {@code step} optimizer steps: the mean loss and the generated answers' scores. */
    public record ValidationRecord(int step, int epoch, double loss, VqaEvaluation evaluation) {
    }

    /** @param parameters the trained parameters (the training model's arrays) */
    public record Result(Map<String, INDArray> parameters, int steps, ValidationRecord lastValidation) {
    }

    /** Data kept after the image check, and the rows left out. */
    public record Prepared(List<VqaExample> examples, List<BadRow> skipped) {
    }

    /**
     * What the run started from: recorded in checkpoints, required unchanged by resume.
     *
     * @param data      SHA-256 of the data files by name
     * @param baseModel {@link FinetunedArtifact#baseModelId}
     */
    public record Provenance(Map<String, String> data, String baseModel) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Blip2 model;
    private final FinetuneSettings settings;
    private final Provenance provenance;
    /**
     * The frozen weights as training and validation read them: every step reads all of them, and in process memory
     * (huge pages) they are read faster than through the artifact's file mapping, for the same resident memory.
     */
    private final ResidentWeights weights;
    private final StageTwoLoss stageTwo;
    private final StageTwoTrainer trainer;
    private final ImageFeatures features;
    private final VqaPrompt prompt;
    private final VqaBatchEncoder encoder;

    public Finetuner(Blip2 model, FinetuneSettings settings, Provenance provenance) {
        this.model = model;
        this.settings = settings;
        this.provenance = provenance;
        this.weights = new ResidentWeights(model.weights());
        this.stageTwo = StageTwoLoss.build(model.config(), weights);
        this.trainer = new StageTwoTrainer(stageTwo, settings.adamW(), settings.maxGradientNorm());
        this.features = new ImageFeatures(model, new EagerVision(model.config().vision(), weights));
        this.prompt = VqaPrompt.of(model, settings.template(), settings.maxQuestionWords());
        this.encoder = new VqaBatchEncoder(model.config(), model.tokenizer(), prompt);
    }

    public VqaPrompt prompt() {
        return prompt;
    }

    /**
     * Checks the training examples before the first step: each must fit the model ({@link
     * VqaBatchEncoder#trainingLengthProblem}) and its image must decode; those that do not are left out (or,
     * under {@link BadRowPolicy#FAIL}, the first stops the run). Encodes the images for the feature cache when
     * {@code cacheFeatures}.
     */
    public Prepared prepare(List<VqaExample> examples, BadRowPolicy policy, boolean cacheFeatures) {
        return prepare(examples, policy, cacheFeatures, false);
    }

    /**
     * As {@link #prepare} for validation examples, whose features are always cached and whose questions must
     * also leave room for the answers' new tokens ({@link VqaBatchEncoder#answerLengthProblem}).
     */
    public Prepared prepareValidation(List<VqaExample> examples, BadRowPolicy policy) {
        return prepare(examples, policy, true, true);
    }

    private Prepared prepare(List<VqaExample> examples, BadRowPolicy policy, boolean cacheFeatures, boolean answered) {
        BadRows bad = new BadRows(policy);
        List<VqaExample> fitting = new ArrayList<>();
        for (VqaExample e : examples) {
            String problem = encoder.trainingLengthProblem(e);
            if (problem == null && answered) {
                problem = encoder.answerLengthProblem(e, settings.evalMaxNewTokens());
            }
            if (problem == null) {
                fitting.add(e);
            } else {
                bad.report(e.file(), e.position(), problem);
            }
        }
        Map<Path, String> unusable = features.prepare(fitting.stream().map(VqaExample::image).toList(), cacheFeatures,
                settings.batchSize());
        List<VqaExample> kept = new ArrayList<>();
        for (VqaExample e : fitting) {
            String problem = unusable.get(e.image());
            if (problem == null) {
                kept.add(e);
            } else {
                bad.report(e.file(), e.position(), problem);
            }
        }
        return new Prepared(kept, bad.skipped());
    }

    /**
     * Trains on {@code train}, validating on {@code validation} (may be empty), checkpointing to
     * {@code checkpoint} ({@link TrainingCheckpoint#output}, checked before the first step); with {@code resume},
     * continues from it, or from the previous checkpoint when it is damaged.
     */
    public Result train(List<VqaExample> train, List<VqaExample> validation, OutputFile checkpoint, boolean resume,
                        Listener listener) {
        int microBatches = ceilDiv(train.size(), settings.batchSize());
        int stepsPerEpoch = ceilDiv(microBatches, settings.accumulation());
        int totalSteps = settings.epochs() * stepsPerEpoch;
        if (settings.maxSteps() > 0) {
            totalSteps = Math.min(totalSteps, settings.maxSteps());
        }
        LinearWarmupCosineSchedule schedule = new LinearWarmupCosineSchedule(settings.learningRate(),
                settings.minLearningRate(), settings.epochs(), settings.warmupSteps(), settings.warmupStartRate());

        int step = 0;
        int epoch = 0;
        int microBatch = 0;
        SplitMix64 random = new SplitMix64(settings.seed());
        if (resume) {
            TrainingCheckpoint.State state = restore(checkpoint.path(), listener);
            step = state.step();
            epoch = state.epoch();
            microBatch = state.microBatch();
            random = new SplitMix64(state.randomState());
        }
        listener.started(step, totalSteps);
        ValidationRecord last = null;
        if (step == 0 && !validation.isEmpty()) {
            last = validate(0, 0, validation, listener);
        }
        int[] order = null;
        int orderEpoch = -1;
        while (step < totalSteps) {
            long started = System.nanoTime();
            if (orderEpoch != epoch) {
                order = SplitMix64.permutation(train.size(), SplitMix64.derived(settings.seed(), epoch));
                orderEpoch = epoch;
            }
            int end = Math.min(microBatch + settings.accumulation(), microBatches);
            List<TrainingBatch> batches = new ArrayList<>();
            for (int b = microBatch; b < end; b++) {
                List<VqaExample> examples = new ArrayList<>();
                for (int i = b * settings.batchSize(); i < Math.min((b + 1) * settings.batchSize(), train.size()); i++) {
                    examples.add(train.get(order[i]));
                }
                batches.add(encoder.encode(examples, features.embeds(examples, settings.augment() ? random : null)));
            }
            StageTwoTrainer.Step result = trainer.step(batches, schedule.valueAt(end - 1, epoch));
            step++;
            int stepEpoch = epoch;
            microBatch = end;
            if (microBatch == microBatches) {
                epoch++;
                microBatch = 0;
            }
            listener.stepped(new StepRecord(step, totalSteps, stepEpoch, result.loss(), result.learningRate(),
                    result.gradientNorm(), (System.nanoTime() - started) / 1e9));
            boolean epochEnded = microBatch == 0;
            boolean due = settings.evaluateEvery() > 0 ? step % settings.evaluateEvery() == 0 : epochEnded;
            if (!validation.isEmpty() && (due || step == totalSteps)) {
                last = validate(step, stepEpoch, validation, listener);
            }
            if (step % settings.checkpointEvery() == 0 || step == totalSteps) {
                TrainingCheckpoint.write(checkpoint, model.config(), stageTwo.parameters(), trainer.optimizer().state(),
                        TrainingCheckpoint.state(step, epoch, microBatch, random.state(), trainer.optimizer().steps(),
                                settings.training(), provenance.data(), provenance.baseModel()));
                listener.checkpointed(checkpoint.path(), step);
            }
        }
        return new Result(stageTwo.parameters(), step, last);
    }

    /** Restores the parameters and the optimizer from the checkpoint, after checking it belongs to this run. */
    private TrainingCheckpoint.State restore(Path latest, Listener listener) {
        TrainingCheckpoint.Loaded loaded = TrainingCheckpoint.readLatest(latest, stageTwo.trainableNames());
        Path checkpoint = loaded.file();
        TrainingCheckpoint.State state = loaded.state();
        List<String> changed = FinetuneSettings.differences(asRead(state.settings()), asRead(settings.training()));
        if (!changed.isEmpty()) {
            throw new BadInputException(checkpoint, "was made with other settings: " + String.join("; ", changed)
                    + ". Resume with the checkpoint's settings, or start afresh");
        }
        List<String> otherData = FinetuneSettings.differences(asRead(state.data()), asRead(provenance.data()));
        if (!otherData.isEmpty()) {
            throw new BadInputException(checkpoint, "was made with other data (SHA-256 of each file): "
                    + String.join("; ", otherData) + ". Resume with the checkpoint's data, or start afresh");
        }
        if (!state.baseModel().equals(provenance.baseModel())) {
            throw new BadInputException(checkpoint, "was made from another base model");
        }
        if (loaded.skipped() != null) {
            deleteDamaged(latest);
            listener.warned(loaded.skipped() + "; resuming from the previous checkpoint " + checkpoint + " (step "
                    + state.step() + ") instead, and the damaged one was deleted");
        }
        Map<String, INDArray> parameters = stageTwo.parameters();
        loaded.parameters().forEach((name, saved) -> parameters.get(name).assign(saved));
        trainer.optimizer().restore(loaded.optimizer());
        return state;
    }

    /**
     * Deletes a damaged latest checkpoint, so that the next checkpoint written does not keep it as the previous
     * one in place of the good one resumed from.
     */
    private static void deleteDamaged(Path latest) {
        try {
            Files.deleteIfExists(latest);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete the damaged checkpoint " + latest, e);
        }
    }

    /**
     * The settings as the checkpoint file holds them: written and read back, so that a seed of type long
     * compares equal to the integer JSON gives back.
     */
    private static JsonNode asRead(Map<String, ?> settings) {
        try {
            return JSON.readTree(JSON.writeValueAsString(settings));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private ValidationRecord validate(int step, int epoch, List<VqaExample> validation, Listener listener) {
        listener.validating(validation.size());
        double loss = 0;
        int batches = 0;
        for (int start = 0; start < validation.size(); start += settings.batchSize()) {
            List<VqaExample> examples = validation.subList(start, Math.min(start + settings.batchSize(), validation.size()));
            loss += stageTwo.loss(encoder.encode(examples, features.embeds(examples, null)));
            batches++;
        }
        VqaEvaluation evaluation;
        try (Blip2 tuned = model.withWeights(new TrainedWeights(weights, stageTwo.parameters()))) {
            evaluation = VqaEvaluation.run(tuned, validation, prompt,
                    VqaEvaluation.generation(model, settings.evalBeams(), settings.evalMaxNewTokens()),
                    settings.batchSize(), listener::answered);
        }
        ValidationRecord record = new ValidationRecord(step, epoch, loss / batches, evaluation);
        listener.validated(record);
        return record;
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
