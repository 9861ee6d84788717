package dev.blip2dl4j.finetune;

import dev.blip2dl4j.model.Labels;
import dev.blip2dl4j.testing.Closeness;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Batches larger than one: padding, the mean over a batch's tokens, gradient accumulation. */
class TrainBatchingTest {
    /**
     * Two micro-batches of the example accumulate to the gradients of one batch holding it twice (within
     * the fixtures' tolerances: a batch of two rounds its sums differently).
     */
    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void accumulatingHalvesEqualsTheWholeBatch(String model) {
        TrainFixture f = TrainFixture.load(model);
        StageTwoLoss stageTwo = StageTwoLoss.build(f.config(), f.weights());
        TrainingBatch one = f.batch();
        TrainingBatch twice = new TrainingBatch(Nd4j.concat(0, one.image(), one.image()),
                Nd4j.concat(0, one.inputIds(), one.inputIds()), Nd4j.concat(0, one.attentionMask(), one.attentionMask()),
                Nd4j.concat(0, one.labels(), one.labels()));
        StageTwoLoss.LossAndGradients whole = stageTwo.gradients(twice);
        StageTwoLoss.LossAndGradients accumulated = new StageTwoTrainer(stageTwo, TrainStepTest.FIXTURE_ADAMW, 0)
                .accumulate(List.of(one, one));
        assertEquals(whole.loss(), accumulated.loss(), Closeness.LOSS_TOLERANCE);
        for (Map.Entry<String, INDArray> g : whole.gradients().entrySet()) {
            Closeness.assertWithinReference(g.getKey(), g.getValue(), accumulated.gradients().get(g.getKey()));
        }
    }

    /**
     * A batch of the example and a shorter one padded on the right (mask 0, labels -100): its loss is the
     * mean over all 3 + 1 (OPT) or 4 + 2 (T5) labelled tokens, as transformers' CrossEntropyLoss takes it,
     * whatever the rows' lengths; each row's tokens score as they do alone.
     */
    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void paddedBatchTakesTheMeanOverItsTokens(String model) {
        TrainFixture f = TrainFixture.load(model);
        StageTwoLoss stageTwo = StageTwoLoss.build(f.config(), f.weights());
        TrainingBatch full = f.batch();
        long seq = full.inputIds().size(1);
        TrainingBatch shorter;
        int fullTokens;
        int shorterTokens;
        if (model.equals("opt")) {
            // the prompt and the answer's first token: one labelled token after the shift
            shorter = new TrainingBatch(full.image(), prefix(full.inputIds(), seq - 2), prefix(full.attentionMask(), seq - 2),
                    prefix(full.labels(), seq - 2));
            fullTokens = 3;
            shorterTokens = 1;
        } else {
            // a shorter prompt, and the answer's first token then the end of the sequence
            INDArray prompt = Nd4j.concat(1, prefix(full.inputIds(), seq - 3), Nd4j.createFromArray(new long[][]{{1}}));
            shorter = new TrainingBatch(full.image(), prompt, Nd4j.onesLike(prompt),
                    Nd4j.createFromArray(new long[][]{{full.labels().getLong(0, 0), 1}}));
            fullTokens = 4;
            shorterTokens = 2;
        }
        long pad = model.equals("opt") ? 1 : 0;
        TrainingBatch batch = new TrainingBatch(Nd4j.concat(0, full.image(), shorter.image()),
                Nd4j.concat(0, full.inputIds(), padRight(shorter.inputIds(), seq, pad)),
                Nd4j.concat(0, full.attentionMask(), padRight(shorter.attentionMask(), seq, 0)),
                Nd4j.concat(0, full.labels(), padRight(shorter.labels(), full.labels().size(1), Labels.IGNORE_INDEX)));

        double expected = (stageTwo.loss(full) * fullTokens + stageTwo.loss(shorter) * shorterTokens) / (fullTokens + shorterTokens);
        assertEquals(expected, stageTwo.loss(batch), Closeness.LOSS_TOLERANCE);
    }

    private static INDArray prefix(INDArray rows, long length) {
        return rows.get(NDArrayIndex.all(), NDArrayIndex.interval(0, length)).dup();
    }

    private static INDArray padRight(INDArray rows, long length, long value) {
        INDArray padded = Nd4j.valueArrayOf(new long[]{rows.size(0), length}, value, rows.dataType());
        padded.get(NDArrayIndex.all(), NDArrayIndex.interval(0, rows.size(1))).assign(rows);
        return padded;
    }
}
