package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.model.Labels;
import dev.blip2dl4j.finetune.StageTwoLoss;
import dev.blip2dl4j.finetune.AdamW;
import dev.blip2dl4j.finetune.TrainingBatch;
import dev.blip2dl4j.finetune.StageTwoTrainer;
import dev.blip2dl4j.finetune.WeightDecayGroups;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.arrays.ResidentWeights;
import dev.blip2dl4j.runtime.EagerVision;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * {@code blip2 bench --stages train_step}: one stage-two optimizer step as the PyTorch peer's {@code train_step}
 * times it: the frozen ViT on the image (eager, as fine-tuning runs it), the Q-Former, projection and LM
 * loss, the backward pass and one AdamW update (lr 1e-4, weight decay 0.05), on 16 random token ids of which
 * the first {@code --prompt-tokens} are the prompt, {@code --batch} times over (OPT: masked out of the labels; T5: the
 * encoder's input, the rest the decoder's labels).
 */
final class TrainStepBenchmark {
    static final String NAME = "train_step";
    /** The peer's {@code --train-tokens}. */
    static final int TOKENS = 16;

    private TrainStepBenchmark() {
    }

    /**
     * @param pixels the benchmark's random image {@code [1, 3, size, size]}
     * @return one step, what is timed
     */
    static Runnable prepare(Blip2Config config, ArtifactWeights weights, INDArray pixels,
                            StageBenchmark.Options options) {
        if (options.promptTokens() >= TOKENS) {
            throw new IllegalArgumentException("train_step needs fewer than " + TOKENS + " prompt tokens");
        }
        // as fine-tuning runs (Finetuner): the frozen weights copied into memory, as the peer holds them too
        ResidentWeights resident = new ResidentWeights(weights);
        EagerVision vision = new EagerVision(config.vision(), resident);
        StageTwoLoss stageTwo = StageTwoLoss.build(config, resident);
        StageTwoTrainer trainer = new StageTwoTrainer(stageTwo,
                AdamW.Settings.torchDefaults().withWeightDecay(0.05, WeightDecayGroups.ALL), 0);
        INDArray images = pixels.repeat(0, options.batch());
        return () -> trainer.step(List.of(batch(config, vision.forward(images).lastHiddenState(), options)), 1e-4);
    }

    /** What the stage's JSON line says besides the times. */
    static Map<String, Object> details(StageBenchmark.Options options) {
        return Map.of("tokens", TOKENS, "batch", options.batch());
    }

    private static TrainingBatch batch(Blip2Config config, INDArray imageEmbeds, StageBenchmark.Options options) {
        Random random = new Random(options.seed());
        long[] ids = new long[TOKENS];
        for (int i = 0; i < TOKENS; i++) {
            ids[i] = 4 + random.nextInt(config.text().vocabSize() - 4);
        }
        int prompt = options.promptTokens();
        INDArray all = Nd4j.createFromArray(ids).reshape(1, TOKENS).repeat(0, options.batch());
        if (config.text() instanceof OptConfig) {
            INDArray labels = all.dup();
            labels.get(NDArrayIndex.all(), NDArrayIndex.interval(0, prompt)).assign(Labels.IGNORE_INDEX);
            return new TrainingBatch(imageEmbeds, all, Nd4j.onesLike(all), labels);
        }
        INDArray encoder = all.get(NDArrayIndex.all(), NDArrayIndex.interval(0, prompt)).dup();
        return new TrainingBatch(imageEmbeds, encoder, Nd4j.onesLike(encoder),
                all.get(NDArrayIndex.all(), NDArrayIndex.interval(prompt, TOKENS)).dup());
    }
}
