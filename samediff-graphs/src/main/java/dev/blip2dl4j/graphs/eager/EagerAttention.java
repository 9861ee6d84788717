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
 * with its work buffers for one shape: {@code batch} sequences of {@code queryLength} queries reading
 * {@code keyLength} keys. Made once per forward pass and used by every layer of that shape.
 *
 * <p>Heads are split into contiguous {@code [batch * heads, length, headDim]} copies, so that both products
 * are one batched GEMM each; measured, that is faster than a GEMM per head over strided views.
 */
final class EagerAttention implements AutoCloseable {
    private static final MMulTranspose KEYS_TRANSPOSED = MMulTranspose.builder().transposeB(true).build();

    private final int batch;
    private final int heads;
    private final int headDim;
    private final int queryLength;
    private final int keyLength;
    private final INDArray q;
    private final INDArray k;
    private final INDArray v;
    private final INDArray scores;
    private final INDArray context;

    EagerAttention(int batch, int heads, int headDim, int queryLength, int keyLength) {
        this.batch = batch;
        this.heads = heads;
        this.headDim = headDim;
        this.queryLength = queryLength;
        this.keyLength = keyLength;
        long groups = (long) batch * heads;
        q = Nd4j.create(DataType.FLOAT, groups, queryLength, headDim);
        k = Nd4j.create(DataType.FLOAT, groups, keyLength, headDim);
        v = Nd4j.create(DataType.FLOAT, groups, keyLength, headDim);
        scores = Nd4j.create(DataType.FLOAT, groups, queryLength, keyLength);
        context = Nd4j.create(DataType.FLOAT, groups, queryLength, headDim);
    }

    /**
     * @param queries rows {@code [batch * queryLength, heads * headDim]}; like keys and values, it may be a
     *                column slice of a fused projection's output
     * @param keys    rows {@code [batch * keyLength, heads * headDim]}
     * @param values  rows {@code [batch * keyLength, heads * headDim]}
     * @param out     receives the heads merged back into rows {@code [batch * queryLength, heads * headDim]}
     */
    INDArray apply(INDArray queries, INDArray keys, INDArray values, double scale, INDArray out) {
        splitHeads(queries, queryLength, q);
        splitHeads(keys, keyLength, k);
        splitHeads(values, keyLength, v);
        Nd4j.exec(new Mmul(q, k, scores, scale, 0.0, KEYS_TRANSPOSED));
        Nd4j.exec(new SoftMax(scores, scores, 2));
        Nd4j.matmul(scores, v, context, false, false, false);
        out.reshape(batch, queryLength, heads, headDim)
                .assign(context.reshape(batch, heads, queryLength, headDim).permute(0, 2, 1, 3));
        return out;
    }

    /** {@code [batch * length, heads * headDim]} rows into {@code [batch * heads, length, headDim]}. */
    private void splitHeads(INDArray rows, int length, INDArray into) {
        into.reshape(batch, heads, length, headDim)
                .assign(rows.reshape(batch, length, heads, headDim).permute(0, 2, 1, 3));
    }

    @Override
    public void close() {
        q.close();
        k.close();
        v.close();
        scores.close();
        context.close();
    }
}
