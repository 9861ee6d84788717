package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastSubOp;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMultiplication;
import org.nd4j.linalg.api.ops.impl.transforms.floating.RSqrt;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The eager counterparts of {@link Layers}' building blocks: the same math over the same weights, bound by the
 * same names, but written into buffers the caller owns. A SameDiff graph allocates a fresh output for every op,
 * and its matrix products reach about half of OpenBLAS's speed that way; {@code Nd4j.gemm} into a preallocated
 * output reaches all of it (DESIGN.md, "Graph vs eager").
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

        public long outputs() {
            return weight.size(0);
        }

        /** {@code out = x W^T + b}. */
        public INDArray apply(INDArray x, INDArray out) {
            return product(x, out, 0.0);
        }

        /** {@code residual += x W^T + b}: the layer's output added onto the residual stream in place. */
        public INDArray addTo(INDArray x, INDArray residual) {
            return product(x, residual, 1.0);
        }

        private INDArray product(INDArray x, INDArray out, double beta) {
            Nd4j.gemm(x, weight, out, false, true, 1.0, beta);
            return bias == null ? out : out.addiRowVector(bias);
        }
    }

    /** LayerNorm over the last axis, with PyTorch's biased variance and the config's epsilon. */
    public record LayerNorm(INDArray weight, INDArray bias, double eps) {

        public static LayerNorm of(Weights weights, String prefix, double eps) {
            return new LayerNorm(weights.get(prefix + ".weight"), weights.get(prefix + ".bias"), eps);
        }

        /** {@code out = (x - mean) / sqrt(var + eps) * weight + bias}, row by row; out may be x. */
        public INDArray apply(INDArray x, INDArray out) {
            try (INDArray mean = x.mean(1); INDArray invStd = x.var(false, 1)) {
                Nd4j.exec(new RSqrt(invStd.addi(eps), invStd));
                Nd4j.exec(new BroadcastSubOp(x, mean, out, 0));
                Nd4j.exec(new BroadcastMulOp(out, invStd, out, 0));
                return out.muliRowVector(weight).addiRowVector(bias);
            }
        }
    }

    /**
     * GELU in place, the exact erf form {@code 0.5 x (1 + erf(x / sqrt 2))} as {@link Layers#gelu} has it;
     * {@code scratch} is a buffer of x's shape.
     */
    public static INDArray gelu(INDArray x, INDArray scratch) {
        Nd4j.exec(new ScalarMultiplication(x, null, scratch, 1 / Math.sqrt(2)));
        Nd4j.exec(new Erf(scratch, scratch));
        return x.muli(scratch.addi(1.0)).muli(0.5);
    }
}
