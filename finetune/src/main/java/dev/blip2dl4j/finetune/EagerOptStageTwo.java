package dev.blip2dl4j.finetune;

import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.EagerOptLoss;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.runtime.EagerQFormerBackward;
import dev.blip2dl4j.runtime.Linear;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The stage-two loss with OPT (BLIP-2's OPT-2.7b and 6.7b), run eagerly, without a graph: the Q-Former and
 * projection forward and backward ({@link EagerQFormerBackward}), the language model's loss and its gradient with
 * respect to the projected queries only ({@link EagerOptLoss}): no gradient of the frozen weights, which a graph's
 * matrix products compute anyway (M2.1's {@code matmul_bp}; at full size the graph's step took well over the PyTorch
 * peer's time, README "Benchmarks").
 */
public final class EagerOptStageTwo implements StageTwoLoss {
    /** The trained parameters by name, in the order they are first read. */
    private final Map<String, INDArray> parameters;
    private final EagerQFormerBackward queryPath;
    private final EagerOptLoss languageModel;

    EagerOptStageTwo(Blip2Config config, Weights weights) {
        TrainableCopies copies = new TrainableCopies(weights);
        this.queryPath = new EagerQFormerBackward(new EagerQFormer(config.qformer(), copies),
                Linear.of(copies, Blip2Parameters.languageProjection()));
        this.languageModel = new EagerOptLoss(new EagerOpt((OptConfig) config.text(), weights));
        this.parameters = copies.copied();
    }

    @Override
    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    @Override
    public double loss(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            return languageModel.loss(pass.projected(), batch.inputIds(), batch.attentionMask(), batch.labels());
        }
    }

    @Override
    public LossAndGradients gradients(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            EagerOptLoss.Result lm = languageModel.lossAndGradient(pass.projected(), batch.inputIds(),
                    batch.attentionMask(), batch.labels());
            Map<INDArray, INDArray> byArray = queryPath.backward(pass, lm.gradient());
            lm.gradient().close();
            Map<String, INDArray> gradients = new LinkedHashMap<>();
            parameters.forEach((name, array) -> gradients.put(name, byArray.get(array)));
            return new LossAndGradients(lm.loss(), gradients);
        }
    }
}
