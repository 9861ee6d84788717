package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Layers;
import org.nd4j.linalg.api.blas.params.MMulTranspose;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Multi-head attention without a mask, {@code softmax(q k^T * scale) v} as {@link Layers#attention} computes it,
 * for one sequence of {@code queryLength} queries reading {@code keyLength} keys, with its scores buffer.
 *
 * <p>It works on feature-major ("transposed") activations: {@code q^T [heads * headDim, length]}, which the
 * projections give directly as {@code W x^T} (see {@link EagerLayers.Linear#applyTransposed}). In that layout each
 * head's rows are one contiguous block, so {@code [heads, headDim, length]} is a view and the heads need no
 * split or merge copies (measured: ~2.5 ms of a ViT-g block), and the context comes out as {@code c^T}, ready
 * for the output projection's transposed GEMM.
 */
final class EagerAttention implements AutoCloseable {
    private static final MMulTranspose QUERIES_TRANSPOSED = MMulTranspose.builder().transposeA(true).build();
    private static final MMulTranspose PROBABILITIES_TRANSPOSED = MMulTranspose.builder().transposeB(true).build();

    private final int heads;
    private final int headDim;
    private final int queryLength;
    private final int keyLength;
    private final INDArray scores;

    EagerAttention(int heads, int headDim, int queryLength, int keyLength) {
        this.heads = heads;
        this.headDim = headDim;
        this.queryLength = queryLength;
        this.keyLength = keyLength;
        scores = Nd4j.create(DataType.FLOAT, heads, queryLength, keyLength);
    }

    /**
     * @param queries  {@code q^T [heads * headDim, queryLength]}; like keys and values, contiguous (a row block of
     *                 a fused projection's output qualifies)
     * @param keys     {@code k^T [heads * headDim, keyLength]}
     * @param values   {@code v^T [heads * headDim, keyLength]}
     * @param contextT receives {@code c^T [heads * headDim, queryLength]}, the heads in the order of the features
     */
    INDArray apply(INDArray queries, INDArray keys, INDArray values, double scale, INDArray contextT) {
        // per head: scores = (q^T)^T k^T * scale, then c^T = v^T p^T
        Nd4j.exec(new Mmul(heads(queries, queryLength), heads(keys, keyLength), scores, scale, 0.0, QUERIES_TRANSPOSED));
        Nd4j.exec(new SoftMax(scores, scores, 2));
        Nd4j.exec(new Mmul(heads(values, keyLength), scores, heads(contextT, queryLength), 1.0, 0.0,
                PROBABILITIES_TRANSPOSED));
        return contextT;
    }

    private INDArray heads(INDArray featureMajor, int length) {
        return featureMajor.reshape(heads, headDim, length);
    }

    @Override
    public void close() {
        scores.close();
    }
}
