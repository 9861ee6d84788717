package dev.blip2dl4j.runtime;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.Stream;

/**
 * What one forward pass of {@link EagerOpt} keeps for the backward pass of {@link EagerOptLoss}, as copies of the
 * work buffers the forward pass reuses from layer to layer: per layer its input, its scaled queries, the residual
 * projected queries (scaled), keys and values, the residual stream after attention and the MLP's activated inner
 * rows; the final norm's input; the additive attention mask. At full size (OPT-2.7b, 47 positions) about 140 MB.
 */
final class OptTape implements AutoCloseable {
    final INDArray[] inputs;
    final INDArray[] queries;
    final INDArray[] keys;
    final INDArray[] values;
    final INDArray[] attended;
    final INDArray[] activated;
    INDArray finalInput;
    INDArray additiveMask;

    OptTape(int layers) {
        inputs = new INDArray[layers];
        queries = new INDArray[layers];
        keys = new INDArray[layers];
        values = new INDArray[layers];
        attended = new INDArray[layers];
        activated = new INDArray[layers];
    }

    void start(INDArray additive) {
        additiveMask = additive;
    }

    void layerInput(int layer, INDArray x) {
        inputs[layer] = x.dup();
    }

    void projections(int layer, INDArray scaledQueries, INDArray k, INDArray v) {
        queries[layer] = scaledQueries.dup();
        keys[layer] = k.dup();
        values[layer] = v.dup();
    }

    void attentionOutput(int layer, INDArray x) {
        attended[layer] = x.dup();
    }

    void activated(int layer, INDArray inner) {
        activated[layer] = inner.dup();
    }

    void finalInput(INDArray x) {
        finalInput = x.dup();
    }

    /** Frees the copies now: the next step records its own. */
    @Override
    public void close() {
        Stream.of(inputs, queries, keys, values, attended, activated).flatMap(Arrays::stream).filter(Objects::nonNull)
                .forEach(INDArray::close);
        if (finalInput != null) {
            finalInput.close();
        }
    }
}
