package dev.blip2dl4j.finetune;

import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.EagerOptLoss;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.runtime.EagerQFormerBackward;
import dev.blip2dl4j.runtime.EagerT5;
import dev.blip2dl4j.runtime.EagerT5Loss;
import dev.blip2dl4j.runtime.Linear;
import dev.blip2dl4j.runtime.PrefixLoss;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The stage-two loss run eagerly, without a graph, for both language-model families: the Q-Former and projection
 * forward and backward ({@link EagerQFormerBackward}) on trained copies, then the frozen language model's loss and
 * its gradient with respect to the projected queries only ({@link EagerOptLoss}, {@link EagerT5Loss}), its weights
 * read in their storage type: no gradient of a frozen weight, which a graph's matrix products compute anyway
 * (M2.1's {@code matmul_bp}; at full size the graph's OPT step took well over the PyTorch peer's time and the
 * Flan-T5 one 16x the eager one on the fixture, README "Benchmarks").
 */
final class EagerStageTwo implements StageTwoLoss {
    /** The frozen language model's part: its loss given the projected queries, with the gradient to them or not. */
    private interface FrozenLanguageModel {
        PrefixLoss run(INDArray projected, TrainingBatch batch, boolean gradient);
    }

    /** The trained parameters by name, in the order they are first read. */
    private final Map<String, INDArray> parameters;
    private final EagerQFormerBackward queryPath;
    private final FrozenLanguageModel languageModel;

    EagerStageTwo(Blip2Config config, Weights weights) {
        TrainableCopies copies = new TrainableCopies(weights);
        this.queryPath = new EagerQFormerBackward(new EagerQFormer(config.qformer(), copies),
                Linear.of(copies, Blip2Parameters.languageProjection()));
        this.parameters = copies.copied();
        this.languageModel = frozen(config, weights);
    }

    private static FrozenLanguageModel frozen(Blip2Config config, Weights weights) {
        if (config.text() instanceof OptConfig opt) {
            EagerOptLoss lm = new EagerOptLoss(new EagerOpt(opt, weights));
            return (projected, b, gradient) -> gradient
                    ? lm.lossAndGradient(projected, b.inputIds(), b.attentionMask(), b.labels())
                    : new PrefixLoss(lm.loss(projected, b.inputIds(), b.attentionMask(), b.labels()), null);
        }
        T5Config t5 = (T5Config) config.text();
        EagerT5Loss lm = new EagerT5Loss(new EagerT5(t5, weights));
        return (projected, b, gradient) -> { // the decoder reads the labels shifted right
            INDArray decoderInput = T5.shiftRight(b.labels(), t5);
            return gradient
                    ? lm.lossAndGradient(projected, b.inputIds(), b.attentionMask(), decoderInput, b.labels())
                    : new PrefixLoss(lm.loss(projected, b.inputIds(), b.attentionMask(), decoderInput, b.labels()), null);
        };
    }

    @Override
    public Map<String, INDArray> parameters() {
        return Collections.unmodifiableMap(parameters);
    }

    @Override
    public double loss(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            return languageModel.run(pass.projected(), batch, false).loss();
        }
    }

    @Override
    public LossAndGradients gradients(TrainingBatch batch) {
        try (EagerQFormerBackward.Pass pass = queryPath.forward(batch.image())) {
            PrefixLoss lm = languageModel.run(pass.projected(), batch, true);
            Map<INDArray, INDArray> byArray = queryPath.backward(pass, lm.gradient());
            lm.gradient().close();
            Map<String, INDArray> gradients = new LinkedHashMap<>();
            parameters.forEach((name, array) -> gradients.put(name, byArray.get(array)));
            return new LossAndGradients(lm.loss(), gradients);
        }
    }
}
