package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Weights;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A linear layer {@code y = x W^T + b} over its weight as stored ({@code [out, in]}, read in place,
 * never copied), writing into an output the caller owns.
 *
 * <p>Many rows go to one GEMM with the weight as the transposed operand. One row (a decode step of one
 * sequence) goes to a matrix-vector product instead: OpenBLAS runs a one-row GEMM at about a third of
 * the memory bandwidth a GEMV reaches, and only a rank-1 operand takes libnd4j's {@code Mmul} to
 * cblas_sgemv (DESIGN.md "Graph vs eager"; every {@code [1, K]} form, {@code Nd4j.gemm} and
 * {@code level2().gemv} included, stays on the slow path).
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

    /** {@code out [rows, out] = x [rows, in] W^T + b}; {@code out} must be contiguous (it is written through views). */
    public void apply(INDArray x, INDArray out) {
        if (x.size(0) == 1) {
            Nd4j.exec(new Mmul(weight, x.reshape(x.size(1)), out.reshape(out.size(1)), MMulTranspose.allFalse()));
        } else {
            Nd4j.gemm(x, weight, out, false, true, 1.0, 0.0);
        }
        if (bias != null) {
            EagerLayers.addToEveryRow(out, bias);
        }
    }
}
