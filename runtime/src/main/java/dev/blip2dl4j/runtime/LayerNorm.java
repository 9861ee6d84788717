package dev.blip2dl4j.runtime;

import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;

/** LayerNorm over the last axis, with PyTorch's biased variance and the config's epsilon. */
public record LayerNorm(INDArray weight, INDArray bias, double eps) {

    public static LayerNorm of(Weights weights, String prefix, double eps) {
        return new LayerNorm(weights.get(prefix + ".weight"), weights.get(prefix + ".bias"), eps);
    }

    /** {@code out = (x - mean) / sqrt(var + eps) * weight + bias}, row by row; out may be x. */
    public INDArray apply(INDArray x, INDArray out) {
        EagerLayers.layerNorm(x, weight, bias, eps, out);
        return out;
    }
}
