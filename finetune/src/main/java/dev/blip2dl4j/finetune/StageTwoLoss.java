package dev.blip2dl4j.finetune;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.arrays.ResidentWeights;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;
import java.util.Map;

/**
 * BLIP-2's stage-two training model: the language-modelling loss of {@code Blip2ForConditionalGeneration}
 * (transformers 4.45, called with labels), with the image encoder and the language model frozen and the
 * Q-Former's query path, {@code query_tokens} and {@code language_projection} trained.
 *
 * <p>The frozen parts are bound to the model's weights as they are; the trained parameters are copies, so that
 * optimizer steps never write into the model's arrays. Which parameters train is decided by what the model reads: every parameter under {@code qformer.},
 * {@code query_tokens} or {@code language_projection.} that the query path uses. The Q-Former's text branch (only
 * in retrieval checkpoints) is never read, so it never trains.
 *
 * <p>The loss, as transformers computes it: OPT's logits of the text positions predict the next label
 * (position t predicts label t+1); T5's decoder reads the labels shifted right (start token, -100 read as
 * padding) and predicts them. Both take the mean cross-entropy over every label of the batch that is not
 * -100.
 *
 * <p>Run eagerly for both language-model families ({@link EagerStageTwo}), reading the frozen weights in their
 * storage type.
 */
public interface StageTwoLoss {

    /**
     * @param weights the model's; a step reads every frozen weight, so {@link ResidentWeights}
     *                over an artifact's make steps faster (process memory on huge pages instead of file pages)
     *                at no cost in resident memory (the mapped pages a step touches stay resident too)
     */
    static StageTwoLoss build(Blip2Config config, Weights weights) {
        if (config.kind() != ModelKind.CONDITIONAL_GENERATION) {
            throw new IllegalArgumentException("stage-two training needs a Blip2ForConditionalGeneration model, not "
                    + config.kind().architecture());
        }
        return new EagerStageTwo(config, weights);
    }

    /**
     * The trained parameters by name, in the order the model first reads them: the arrays the model reads, so
     * that updating them in place is what trains it.
     */
    Map<String, INDArray> parameters();

    /** The trained parameters' canonical names, in the order the model first reads them. */
    default List<String> trainableNames() {
        return List.copyOf(parameters().keySet());
    }

    /** The mean loss of the batch. */
    double loss(TrainingBatch batch);

    /**
     * @param loss      the batch's mean loss
     * @param gradients d loss / d parameter for every trained parameter, by name
     */
    record LossAndGradients(double loss, Map<String, INDArray> gradients) {
    }

    LossAndGradients gradients(TrainingBatch batch);
}
