package dev.blip2dl4j.runtime;

import dev.blip2dl4j.arrays.NdArrays;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.compute.RowKernels.Gelu;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A linear layer {@code y = x W^T + b} over its weight in its storage type ({@code [out, in]}: float32, bfloat16,
 * float16 or int8 with scales, read in place, never copied), writing into an output the caller owns. The products
 * run on the compute layer, which picks the kernels per call (one row: a matrix-vector product that streams the
 * weight; docs/DESIGN.md "Compute layer").
 *
 * @param stored the weight as the products read it
 * @param weight the same weight as a float32 array where it is stored as float32 (what training updates and keys its
 *               gradients by); null for the other types, which are only ever read through {@code stored}
 * @param bias   {@code [out]} float32, or null
 */
public record Linear(StoredTensor stored, INDArray weight, INDArray bias) {

    /** A float32 layer over these arrays. */
    public Linear(INDArray weight, INDArray bias) {
        this("a float32 linear layer", weight, bias);
    }

    private Linear(String name, INDArray weight, INDArray bias) {
        this(new StoredTensor(name, DType.F32, weight.shape(), NdArrays.bytes(weight), null, 0), weight, bias);
    }

    /** {@code <prefix>.weight} in its storage type, and {@code <prefix>.bias} when the model has one. */
    public static Linear of(Weights weights, String prefix) {
        String name = prefix + ".weight";
        String biasName = prefix + ".bias";
        INDArray bias = weights.contains(biasName) ? weights.get(biasName) : null;
        StoredTensor stored = weights.stored(name);
        return stored.dtype() == DType.F32 ? new Linear(name, weights.get(name), bias) : new Linear(stored, null, bias);
    }

    /** {@code [out, in]}. */
    public long[] shape() {
        return stored.shape();
    }

    /** {@code out [rows, out] = x [rows, in] W^T + b}; x may be a view of a wider array's columns. */
    public INDArray apply(INDArray x, INDArray out) {
        Blas.linear(x, stored, out, false);
        return addBias(out);
    }

    /** {@code residual += x W^T + b}: the layer's output added onto the residual stream in place. */
    public INDArray addTo(INDArray x, INDArray residual) {
        Blas.linear(x, stored, residual, true);
        return addBias(residual);
    }

    /**
     * {@code out = gelu(x W^T + b)} with GELU's exact erf form {@code 0.5 v (1 + erf(v / sqrt 2))} as the graphs'
     * {@code Layers.gelu} has it, the bias and GELU in one pass over the product ({@link EagerLayers#gelu});
     * {@code scratch} is a buffer of out's shape, used only where the native row kernels do not run.
     */
    public INDArray applyGelu(INDArray x, INDArray out, INDArray scratch) {
        return applyGelu(x, out, scratch, null);
    }

    /** The same, keeping GELU's argument {@code x W^T + b} in {@code preActivation} (unless null) for a backward. */
    public INDArray applyGelu(INDArray x, INDArray out, INDArray scratch, INDArray preActivation) {
        Blas.linear(x, stored, out, false);
        EagerLayers.gelu(Gelu.ERF, out, bias, preActivation, null, scratch);
        return out;
    }

    /**
     * {@code dInput = alpha dOutput W (+ dInput)}: the backward pass to the layer's input, reading the weight in its
     * storage type (a frozen low-precision weight is never widened whole).
     */
    public void backwardToInput(INDArray dOutput, INDArray dInput, double alpha, boolean accumulate) {
        Blas.linearBackward(dOutput, stored, dInput, alpha, accumulate);
    }

    private INDArray addBias(INDArray out) {
        if (bias != null) {
            EagerLayers.addToEveryRow(out, bias);
        }
        return out;
    }
}
