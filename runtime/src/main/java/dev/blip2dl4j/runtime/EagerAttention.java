package dev.blip2dl4j.runtime;

import dev.blip2dl4j.compute.RowKernels;
import org.bytedeco.javacpp.FloatPointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;

import java.lang.ref.Reference;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * Multi-head attention, {@code softmax(q k^T * scale (+ additive)) v} as the graphs' {@code Layers.attention} computes it,
 * for sequences of {@code queryLength} queries each reading its own {@code keyLength} keys, with a scores buffer.
 *
 * <p>Queries, keys, values and the output are rows {@code [batch * length, heads * headDim]}, each head a block
 * of columns, as the projections give them. Each head's two products are BLAS calls that read and write those
 * column blocks in place (any row stride, so the q, k and v column ranges of a fused projection too): no
 * split or merge copies. Measured inside the models, that is as fast as ND4J's batched matmul on ViT-g's heads
 * and about twice as fast on the Q-Former's small ones.
 */
final class EagerAttention implements AutoCloseable {
    private final int heads;
    private final int headDim;
    private final int queryLength;
    private final int keyLength;
    private final INDArray scores;
    /** The backward pass's second scores-shaped buffer; allocated by the first backward pass. */
    private INDArray gradientScores;

    EagerAttention(int heads, int headDim, int queryLength, int keyLength) {
        this.heads = heads;
        this.headDim = headDim;
        this.queryLength = queryLength;
        this.keyLength = keyLength;
        scores = Nd4j.create(DataType.FLOAT, heads, queryLength, keyLength);
    }

    /**
     * @param queries rows {@code [batch * queryLength, heads * headDim]}; like keys, values and out, a 2-D array
     *                whose rows are contiguous (a column range of a wider array qualifies)
     * @param keys    rows {@code [batch * keyLength, heads * headDim]}
     * @param values  rows {@code [batch * keyLength, heads * headDim]}
     * @param out     receives the heads' outputs side by side, rows {@code [batch * queryLength, heads * headDim]}
     */
    INDArray apply(INDArray queries, INDArray keys, INDArray values, double scale, INDArray out) {
        return apply(queries, keys, values, scale, null, out);
    }

    /**
     * The same with {@code additive} added to the scores before the softmax: null, {@code [batch, 1, queryLength,
     * keyLength]} (the same for every head: a padding or causal mask) or {@code [batch, heads, queryLength,
     * keyLength]} (a bias per head: T5's relative positions with its padding).
     */
    INDArray apply(INDArray queries, INDArray keys, INDArray values, double scale, INDArray additive, INDArray out) {
        long batch = queries.size(0) / queryLength;
        requireShape(queries, batch * queryLength);
        requireShape(keys, batch * keyLength);
        requireShape(values, batch * keyLength);
        requireShape(out, batch * queryLength);
        long ldq = Blas.rowStride(queries);
        long ldk = Blas.rowStride(keys);
        long ldv = Blas.rowStride(values);
        long ldo = Blas.rowStride(out);
        FloatPointer firstQuery = Blas.pointer(queries);
        FloatPointer firstKey = Blas.pointer(keys);
        FloatPointer firstValue = Blas.pointer(values);
        FloatPointer firstOut = Blas.pointer(out);
        FloatPointer s = Blas.pointer(scores.reshape((long) heads * queryLength, keyLength));
        long scoresPerHead = (long) queryLength * keyLength;
        FloatBuffer p = additive == null ? null : EagerLayers.floats(scores);
        FloatBuffer mask = additive == null ? null : EagerLayers.floats(additive);
        for (long b = 0; b < batch; b++) {
            FloatPointer q = at(firstQuery, b * queryLength * ldq);
            FloatPointer k = at(firstKey, b * keyLength * ldk);
            FloatPointer v = at(firstValue, b * keyLength * ldv);
            FloatPointer o = at(firstOut, b * queryLength * ldo);
            for (int h = 0; h < heads; h++) {
                // scores_h = q_h k_h^T * scale
                Blas.gemm(false, true, queryLength, keyLength, headDim, scale, at(q, (long) h * headDim), ldq,
                        at(k, (long) h * headDim), ldk, 0.0, at(s, (long) h * scoresPerHead), keyLength);
            }
            if (mask != null) {
                addMask(p, mask, additive, (int) b);
            }
            softmax();
            for (int h = 0; h < heads; h++) {
                // out_h = p_h v_h
                Blas.gemm(false, false, queryLength, headDim, keyLength, 1.0, at(s, (long) h * scoresPerHead), keyLength,
                        at(v, (long) h * headDim), ldv, 0.0, at(o, (long) h * headDim), ldo);
            }
        }
        Reference.reachabilityFence(queries);
        Reference.reachabilityFence(keys);
        Reference.reachabilityFence(values);
        Reference.reachabilityFence(out);
        return out;
    }

    /**
     * The backward pass of {@link #apply} with the same arguments: from {@code dOut}, the gradient of its output, the
     * gradients of the queries, keys and values (written into {@code dQueries, dKeys, dValues}, shaped as their
     * arrays). The probabilities are recomputed as apply computes them; then per head {@code dP = dOut v^T},
     * {@code dV = P^T dOut}, {@code dS = P (dP - rowsum(dP P))}, {@code dQ = scale dS k}, {@code dK = scale dS^T q}.
     *
     * @param additiveMask null, or {@code [batch, heads, queryLength, keyLength]} added to the scores before the
     *                     softmax, as the forward pass that is differentiated added it (a causal or padding mask, T5's
     *                     relative position bias); a dimension of size 1 is the same for every batch row, head or
     *                     query
     */
    void backward(INDArray queries, INDArray keys, INDArray values, double scale, INDArray dOut, INDArray dQueries,
                  INDArray dKeys, INDArray dValues, INDArray additiveMask) {
        long batch = queries.size(0) / queryLength;
        for (INDArray rows : new INDArray[]{queries, dOut, dQueries}) {
            requireShape(rows, batch * queryLength);
        }
        for (INDArray rows : new INDArray[]{keys, values, dKeys, dValues}) {
            requireShape(rows, batch * keyLength);
        }
        if (gradientScores == null) {
            gradientScores = Nd4j.create(DataType.FLOAT, heads, queryLength, keyLength);
        }
        long ldq = Blas.rowStride(queries);
        long ldk = Blas.rowStride(keys);
        long ldv = Blas.rowStride(values);
        long ldo = Blas.rowStride(dOut);
        long lddq = Blas.rowStride(dQueries);
        long lddk = Blas.rowStride(dKeys);
        long lddv = Blas.rowStride(dValues);
        FloatPointer s = Blas.pointer(scores.reshape((long) heads * queryLength, keyLength));
        FloatPointer ds = Blas.pointer(gradientScores.reshape((long) heads * queryLength, keyLength));
        FloatBuffer p = EagerLayers.floats(scores);
        FloatBuffer dp = EagerLayers.floats(gradientScores);
        FloatBuffer mask = additiveMask == null ? null : EagerLayers.floats(additiveMask);
        int scoresPerHead = queryLength * keyLength;
        for (long b = 0; b < batch; b++) {
            FloatPointer q = at(Blas.pointer(queries), b * queryLength * ldq);
            FloatPointer k = at(Blas.pointer(keys), b * keyLength * ldk);
            FloatPointer v = at(Blas.pointer(values), b * keyLength * ldv);
            FloatPointer o = at(Blas.pointer(dOut), b * queryLength * ldo);
            FloatPointer dq = at(Blas.pointer(dQueries), b * queryLength * lddq);
            FloatPointer dk = at(Blas.pointer(dKeys), b * keyLength * lddk);
            FloatPointer dv = at(Blas.pointer(dValues), b * keyLength * lddv);
            for (int h = 0; h < heads; h++) {
                Blas.gemm(false, true, queryLength, keyLength, headDim, scale, at(q, (long) h * headDim), ldq,
                        at(k, (long) h * headDim), ldk, 0.0, at(s, (long) h * scoresPerHead), keyLength);
            }
            if (mask != null) {
                addMask(p, mask, additiveMask, (int) b);
            }
            softmax();
            for (int h = 0; h < heads; h++) {
                long column = (long) h * headDim;
                Blas.gemm(false, true, queryLength, keyLength, headDim, 1.0, at(o, column), ldo, at(v, column), ldv,
                        0.0, at(ds, (long) h * scoresPerHead), keyLength);
                Blas.gemm(true, false, keyLength, headDim, queryLength, 1.0, at(s, (long) h * scoresPerHead), keyLength,
                        at(o, column), ldo, 0.0, at(dv, column), lddv);
            }
            for (int row = 0; row < heads * queryLength; row++) {
                int from = row * keyLength;
                double dot = 0;
                for (int j = 0; j < keyLength; j++) {
                    dot += dp.get(from + j) * p.get(from + j);
                }
                for (int j = 0; j < keyLength; j++) {
                    dp.put(from + j, p.get(from + j) * (dp.get(from + j) - (float) dot));
                }
            }
            for (int h = 0; h < heads; h++) {
                long column = (long) h * headDim;
                Blas.gemm(false, false, queryLength, headDim, keyLength, scale, at(ds, (long) h * scoresPerHead), keyLength,
                        at(k, column), ldk, 0.0, at(dq, column), lddq);
                Blas.gemm(true, false, keyLength, headDim, queryLength, scale, at(ds, (long) h * scoresPerHead), keyLength,
                        at(q, column), ldq, 0.0, at(dk, column), lddk);
            }
        }
        for (INDArray kept : new INDArray[]{queries, keys, values, dOut, dQueries, dKeys, dValues}) {
            Reference.reachabilityFence(kept);
        }
    }

    /** Each row of the scores replaced by its softmax: one native pass where the row kernels run, else ND4J's op. */
    private void softmax() {
        long started = Blas.started();
        INDArray rows = scores.reshape((long) heads * queryLength, keyLength);
        if (RowKernels.available()) {
            RowKernels.softmax(Blas.matrix(rows));
        } else {
            Nd4j.exec(new SoftMax(scores, scores, 2));
        }
        Blas.timed("softmax", rows, started);
    }

    /**
     * Adds example {@code b}'s mask to the scores of every head; a mask dimension of size 1 (batch, head or query)
     * is the same for every example, head or query.
     */
    private void addMask(FloatBuffer scoresOfHeads, FloatBuffer mask, INDArray additive, int b) {
        int scoresPerHead = queryLength * keyLength;
        int queryStride = additive.size(2) == 1 ? 0 : keyLength;
        int headStride = additive.size(1) == 1 ? 0 : (int) additive.size(2) * keyLength;
        int batchStride = additive.size(0) == 1 ? 0 : (int) (additive.size(1) * additive.size(2)) * keyLength;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < queryLength; i++) {
                int from = b * batchStride + h * headStride + i * queryStride;
                int to = h * scoresPerHead + i * keyLength;
                for (int j = 0; j < keyLength; j++) {
                    scoresOfHeads.put(to + j, scoresOfHeads.get(to + j) + mask.get(from + j));
                }
            }
        }
    }

    private void requireShape(INDArray rows, long expectedRows) {
        if (rows.rank() != 2 || rows.size(0) != expectedRows || rows.size(1) != (long) heads * headDim) {
            throw new IllegalArgumentException("attention over sequences of " + queryLength + " queries and "
                    + keyLength + " keys, " + heads + " heads of " + headDim + ": expected [" + expectedRows + ", "
                    + (long) heads * headDim + "], got " + Arrays.toString(rows.shape()));
        }
    }

    /** {@code elements} further on than {@code from}. */
    private static FloatPointer at(FloatPointer from, long elements) {
        return new FloatPointer(from).position(from.position() + elements);
    }

    @Override
    public void close() {
        scores.close();
        if (gradientScores != null) {
            gradientScores.close();
        }
    }
}
