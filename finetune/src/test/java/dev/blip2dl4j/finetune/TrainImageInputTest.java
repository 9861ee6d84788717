package dev.blip2dl4j.finetune;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The image encoder inside the training graph (as constants) or run once beforehand: the same loss and
 * gradients, no gradient reaching the encoder; and what each costs per step.
 */
class TrainImageInputTest {
    private static final int TIMED_STEPS = 5;

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void encoderInsideOrBeforehandTrainsTheSame(String model) {
        TrainFixture f = TrainFixture.load(model);
        StageTwoGraph withPixels = StageTwoGraph.build(f.config(), f.weights(), StageTwoGraph.ImageInput.PIXELS);
        StageTwoGraph withEmbeds = StageTwoGraph.build(f.config(), f.weights(), StageTwoGraph.ImageInput.EMBEDDINGS);
        assertEquals(withEmbeds.trainableNames(), withPixels.trainableNames());
        assertTrue(withPixels.trainableNames().stream().noneMatch(n -> n.startsWith("vision_model.")));
        TrainingBatch pixels = f.batch(StageTwoGraph.ImageInput.PIXELS);
        TrainingBatch embeds = f.batch(StageTwoGraph.ImageInput.EMBEDDINGS);

        StageTwoGraph.LossAndGradients a = withPixels.gradients(pixels);
        StageTwoGraph.LossAndGradients b = withEmbeds.gradients(embeds);
        assertEquals(a.loss(), b.loss(), 1e-6);
        for (Map.Entry<String, INDArray> g : a.gradients().entrySet()) {
            assertTrue(TrainFixture.maxAbsDiff(g.getValue(), b.gradients().get(g.getKey())) <= 1e-6, g.getKey());
        }
        System.out.printf("%s: ms per step with the encoder in the graph %.1f, with image embeddings fed %.1f%n",
                model, millisPerStep(withPixels, pixels), millisPerStep(withEmbeds, embeds));
    }

    /** The median of a few whole steps (gradients and AdamW) after the first. */
    private static double millisPerStep(StageTwoGraph graph, TrainingBatch batch) {
        StageTwoTrainer trainer = new StageTwoTrainer(graph, TrainStepTest.FIXTURE_ADAMW, 0);
        trainer.step(List.of(batch), TrainStepTest.LEARNING_RATE);
        double[] millis = new double[TIMED_STEPS];
        for (int i = 0; i < TIMED_STEPS; i++) {
            long start = System.nanoTime();
            trainer.step(List.of(batch), TrainStepTest.LEARNING_RATE);
            millis[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(millis);
        return millis[TIMED_STEPS / 2];
    }
}
