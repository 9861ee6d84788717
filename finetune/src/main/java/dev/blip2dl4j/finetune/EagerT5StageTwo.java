package dev.blip2dl4j.finetune;

import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.runtime.EagerQFormerBackward;
import dev.blip2dl4j.runtime.EagerT5;
import dev.blip2dl4j.runtime.EagerT5Loss;
import dev.blip2dl4j.runtime.Linear;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The stage-two loss with Flan-T5, run eagerly as {@link EagerOptStageTwo} runs OPT's: the Q-Former and projection
 * forward and backward ({@link EagerQFormerBackward}), the language model's loss and its gradient with respect to
 * the projected queries only ({@link EagerT5Loss}), the frozen weights read in their storage type.
 */
public final class EagerT5StageTwo implements StageTwoLoss {
    /** The trained parameters by name, in the order they are first read. */
    private final Map<String, INDArray> parameters;
    private final EagerQFormerBackward queryPath;
    private final EagerT5Loss languageModel;
    /** For the decoder's input: the labels shifted right. */
    private final T5Config t5;

    EagerT5StageTwo(Blip2Config config, Weights weights) {
        TrainableCopies copies = new TrainableCopies(weights);
        this.queryPath = new EagerQFormerBackward(new EagerQFormer(config.qformer(), copies),
                Linear.of(copies, Blip2Parameters.languageProjection()));
        this.t5 = (T5Config) config.text();
        this.languageModel = new EagerT5Loss(new EagerT5(t5, weights));
        this.parameters = copies.copied();
    }

    @Override
    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    @Override
    public double loss(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            return languageModel.loss(pass.projected(), batch.inputIds(), batch.attentionMask(),
                    T5.shiftRight(batch.labels(), t5), batch.labels());
        }
    }

    @Override
    public LossAndGradients gradients(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            EagerT5Loss.Result lm = languageModel.lossAndGradient(pass.projected(), batch.inputIds(),
                    batch.attentionMask(), T5.shiftRight(batch.labels(), t5), batch.labels());
            Map<INDArray, INDArray> byArray = queryPath.backward(pass, lm.gradient());
            lm.gradient().close();
            Map<String, INDArray> gradients = new LinkedHashMap<>();
            parameters.forEach((name, array) -> gradients.put(name, byArray.get(array)));
            return new LossAndGradients(lm.loss(), gradients);
        }
    }
}
