package dev.blip2dl4j.finetune;

import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The model's weights as training binds them: the stage-two parameters as copies (remembered, in the
 * order they are first read), everything else as it is.
 */
final class TrainableCopies implements Weights {
    private final Weights weights;
    private final Map<String, INDArray> copied = new LinkedHashMap<>();

    TrainableCopies(Weights weights) {
        this.weights = weights;
    }

    static boolean trains(String name) {
        return Blip2Parameters.trainedInStageTwo(name);
    }

    /** The copies made so far, by name, in the order they were first read. */
    Map<String, INDArray> copied() {
        return copied;
    }

    @Override
    public INDArray get(String name) {
        return trains(name) ? copied.computeIfAbsent(name, weights::copy) : weights.get(name);
    }

    /** The frozen weights in their storage types (the trained ones are float32: their copies). */
    @Override
    public StoredTensor stored(String name) {
        return trains(name) ? Weights.super.stored(name) : weights.stored(name);
    }

    @Override
    public boolean contains(String name) {
        return weights.contains(name);
    }
}
