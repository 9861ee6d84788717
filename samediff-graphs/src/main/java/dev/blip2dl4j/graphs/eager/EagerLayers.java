package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The eager counterparts of {@link Layers}' building blocks: the same math over the same weights, bound by the
 * same names, but written into buffers the caller owns. A SameDiff graph allocates a fresh output for every op,
 * and its matrix products reach about half of OpenBLAS's speed that way; {@code Nd4j.gemm} into a preallocated
 * output reaches all of it (DESIGN.md, "Graph vs eager"), and calling BLAS directly ({@link Blas}) saves the
 * op dispatch as well. Element-wise work around the products runs in {@link RowKernels}.
 *
 * <p>Activations are {@code [rows, width]} with rows = batch x sequence, as in the graphs. Weights are read in
 * place (memory-mapped from an artifact) and never written.
 */
public final class EagerLayers {
    private EagerLayers() {
    }

    /** A linear layer: {@code weight [out, in]} (used transposed, never copied) and {@code bias [out]} or null. */
    public record Linear(INDArray weight, INDArray bias) {

        /** {@code prefix.weight} and, where the model has one, {@code prefix.bias}. */
        public static Linear of(Weights weights, String prefix) {
            String bias = prefix + ".bias";
            return new Linear(weights.get(prefix + ".weight"), weights.contains(bias) ? weights.get(bias) : null);
        }

        /** {@code out = x W^T + b}. */
        public INDArray apply(INDArray x, INDArray out) {
            Blas.gemm(x, false, weight, true, out, 1.0, 0.0);
            return addBias(out);
        }

        /** {@code residual += x W^T + b}: the layer's output added onto the residual stream in place. */
        public INDArray addTo(INDArray x, INDArray residual) {
            Blas.gemm(x, false, weight, true, residual, 1.0, 1.0);
            return addBias(residual);
        }

        /**
         * {@code out = gelu(x W^T + b)} with GELU's exact erf form {@code 0.5 v (1 + erf(v / sqrt 2))} as
         * {@link Layers#gelu} has it: ND4J's erf (exact to float precision), the rest in two passes that also add
         * the bias. {@code scratch} is a buffer of out's shape.
         */
        public INDArray applyGelu(INDArray x, INDArray out, INDArray scratch) {
            Blas.gemm(x, false, weight, true, out, 1.0, 0.0);
            RowKernels.biasAndScale(out, bias, scratch);
            Nd4j.exec(new Erf(scratch, scratch));
            RowKernels.geluFromErf(out, scratch);
            return out;
        }

        private INDArray addBias(INDArray out) {
            if (bias != null) {
                RowKernels.addToRows(out, bias);
            }
            return out;
        }
    }

    /** LayerNorm over the last axis, with PyTorch's biased variance and the config's epsilon. */
    public record LayerNorm(INDArray weight, INDArray bias, double eps) {

        public static LayerNorm of(Weights weights, String prefix, double eps) {
            return new LayerNorm(weights.get(prefix + ".weight"), weights.get(prefix + ".bias"), eps);
        }

        /** {@code out = (x - mean) / sqrt(var + eps) * weight + bias}, row by row; out may be x. */
        public INDArray apply(INDArray x, INDArray out) {
            RowKernels.layerNorm(x, weight, bias, eps, out);
            return out;
        }
    }
}
