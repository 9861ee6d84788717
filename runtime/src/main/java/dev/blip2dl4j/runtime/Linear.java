package dev.blip2dl4j.runtime;

import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A linear layer {@code y = x W^T + b} over its weight as stored ({@code [out, in]}, read in place,
 * never copied), writing into an output the caller owns.
 *
 * <p>Many rows go to one GEMM with the weight as the transposed operand. One row (a decode step of one
 * sequence) goes to a matrix-vector product instead: OpenBLAS runs a one-row GEMM at about a third of
 * the memory bandwidth a GEMV reaches (docs/DESIGN.md "Eager runtime and graphs").
 *
 * @param weight {@code [out, in]}
 * @param bias   {@code [out]}, or null
 */
public record Linear(INDArray weight, INDArray bias) {

    /** {@code <prefix>.weight}, and {@code <prefix>.bias} when the model has one. */
    public static Linear of(Weights weights, String prefix) {
        String bias = prefix + ".bias";
        return new Linear(weights.get(prefix + ".weight"), weights.contains(bias) ? weights.get(bias) : null);
    }

    /** {@code out [rows, out] = x [rows, in] W^T + b}; x may be a view of a wider array's columns. */
    public INDArray apply(INDArray x, INDArray out) {
        product(x, out, 0.0);
        return addBias(out);
    }

    /** {@code residual += x W^T + b}: the layer's output added onto the residual stream in place. */
    public INDArray addTo(INDArray x, INDArray residual) {
        product(x, residual, 1.0);
        return addBias(residual);
    }

    /**
     * {@code out = gelu(x W^T + b)} with GELU's exact erf form {@code 0.5 v (1 + erf(v / sqrt 2))} as
     * the graphs' {@code Layers.gelu} has it: ND4J's erf (exact to float precision), the rest in two passes that also add
     * the bias. {@code scratch} is a buffer of out's shape.
     */
    public INDArray applyGelu(INDArray x, INDArray out, INDArray scratch) {
        return applyGelu(x, out, scratch, null);
    }

    /** The same, keeping GELU's argument {@code x W^T + b} in {@code preActivation} (unless null) for a backward. */
    public INDArray applyGelu(INDArray x, INDArray out, INDArray scratch, INDArray preActivation) {
        product(x, out, 0.0);
        EagerLayers.biasAndScale(out, bias, scratch);
        if (preActivation != null) {
            preActivation.assign(out);
        }
        Nd4j.exec(new Erf(scratch, scratch));
        EagerLayers.geluFromErf(out, scratch);
        return out;
    }

    /** {@code out = x W^T + beta out}. */
    private void product(INDArray x, INDArray out, double beta) {
        if (x.size(0) == 1) {
            Blas.gemv(weight, x, out, beta);
        } else {
            Blas.gemm(x, false, weight, true, out, 1.0, beta);
        }
    }

    private INDArray addBias(INDArray out) {
        if (bias != null) {
            EagerLayers.addToEveryRow(out, bias);
        }
        return out;
    }
}
