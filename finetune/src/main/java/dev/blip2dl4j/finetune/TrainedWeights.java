package dev.blip2dl4j.finetune;

import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Map;

/**
 * A model's weights with the trained parameters in place of the originals: what inference sees of a model
 * being fine-tuned (validation generates with it). The trained arrays are the ones training updates, not
 * copies, so a model built over these weights must be used while training waits.
 */
public record TrainedWeights(Weights base, Map<String, INDArray> trained) implements Weights {
    @Override
    public INDArray get(String name) {
        INDArray t = trained.get(name);
        return t != null ? t : base.get(name);
    }

    /** The frozen weights in their storage types; a trained one as its float32 array. */
    @Override
    public StoredTensor stored(String name) {
        return trained.containsKey(name) ? Weights.super.stored(name) : base.stored(name);
    }

    @Override
    public boolean contains(String name) {
        return trained.containsKey(name) || base.contains(name);
    }
}
