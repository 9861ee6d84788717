package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Layers;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.nio.FloatBuffer;

/**
 * The eager counterparts of {@link Layers}' building blocks: the same math in the same order, on
 * arrays, written into buffers the caller owns. Activations are {@code [rows, width]} as in the graphs.
 *
 * <p>Two kinds of work. Products of many rows (GEMM, batched attention over a prompt) go to ND4J. The
 * per-row work around them (norms, biases, residuals, ReLU, and the attention of one new position over a
 * cache) runs as plain loops over the arrays' native memory: an ND4J op costs 20-100 µs of dispatch
 * whatever its size (measured: {@code addi} 31 µs, {@code mean} 80 µs on 2560 floats; the loop, 1-4 µs),
 * and a decode step of a 32-layer model would otherwise spend tens of milliseconds on ~1500 of them.
 * The loops accumulate sums in double, so they differ from the graph only by float rounding.
 */
final class EagerLayers {
    private EagerLayers() {
    }

    /** LayerNorm over the last axis of {@code x [rows, width]} (biased variance); {@code out} may be {@code x}. */
    static void layerNorm(INDArray x, INDArray weight, INDArray bias, double eps, INDArray out) {
        FloatBuffer in = floats(x);
        FloatBuffer w = floats(weight);
        FloatBuffer b = floats(bias);
        FloatBuffer o = floats(out);
        int width = (int) x.size(1);
        for (int base = 0; base < x.length(); base += width) {
            double sum = 0;
            for (int i = 0; i < width; i++) {
                sum += in.get(base + i);
            }
            float mean = (float) (sum / width);
            double squares = 0;
            for (int i = 0; i < width; i++) {
                float centred = in.get(base + i) - mean;
                squares += centred * centred;
            }
            float scale = (float) (1 / Math.sqrt((float) (squares / width) + eps));
            for (int i = 0; i < width; i++) {
                o.put(base + i, (in.get(base + i) - mean) * scale * w.get(i) + b.get(i));
            }
        }
    }

    /** T5's RMSNorm over the last axis: no mean subtraction, no bias; {@code out} may be {@code x}. */
    static void rmsNorm(INDArray x, INDArray weight, double eps, INDArray out) {
        FloatBuffer in = floats(x);
        FloatBuffer w = floats(weight);
        FloatBuffer o = floats(out);
        int width = (int) x.size(1);
        for (int base = 0; base < x.length(); base += width) {
            double squares = 0;
            for (int i = 0; i < width; i++) {
                float v = in.get(base + i);
                squares += v * v;
            }
            float scale = (float) (1 / Math.sqrt((float) (squares / width) + eps));
            for (int i = 0; i < width; i++) {
                o.put(base + i, in.get(base + i) * scale * w.get(i));
            }
        }
    }

    /** {@code x [rows, width] += row [width]} on every row (a bias). */
    static void addToEveryRow(INDArray x, INDArray row) {
        FloatBuffer o = floats(x);
        FloatBuffer r = floats(row);
        int width = (int) row.length();
        for (int base = 0; base < x.length(); base += width) {
            for (int i = 0; i < width; i++) {
                o.put(base + i, o.get(base + i) + r.get(i));
            }
        }
    }

    /** {@code x += y}, elementwise (a residual). */
    static void add(INDArray x, INDArray y) {
        FloatBuffer o = floats(x);
        FloatBuffer in = floats(y);
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) + in.get(i));
        }
    }

    /** {@code x *= y}, elementwise (a gate). */
    static void multiply(INDArray x, INDArray y) {
        FloatBuffer o = floats(x);
        FloatBuffer in = floats(y);
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) * in.get(i));
        }
    }

    /** {@code x *= factor} in float, as the graphs' scalar multiply. */
    static void scale(INDArray x, double factor) {
        FloatBuffer o = floats(x);
        float f = (float) factor;
        for (int i = 0; i < x.length(); i++) {
            o.put(i, o.get(i) * f);
        }
    }

    /**
     * transformers' {@code ACT2FN[name]} applied to {@code x} in place: relu, gelu (the exact erf form),
     * gelu_new (tanh); the GELUs take a scratch buffer of x's shape from {@code work}.
     */
    static void activation(String name, INDArray x, Workspace work) {
        switch (name) {
            case "relu" -> {
                FloatBuffer o = floats(x);
                for (int i = 0; i < x.length(); i++) {
                    o.put(i, Math.max(o.get(i), 0f));
                }
            }
            case "gelu" -> {
                // 0.5 x (1 + erf(x / sqrt 2)); libnd4j's erf agrees with commons-math's to float rounding
                INDArray scratch = work.get("activation", x.shape());
                scratch.assign(x).muli(1 / Math.sqrt(2));
                Nd4j.exec(new Erf(scratch, scratch));
                x.muli(scratch.addi(1.0)).muli(0.5);
            }
            case "gelu_new" -> {
                INDArray scratch = work.get("activation", x.shape());
                scratch.assign(x).muli(x).muli(x).muli(0.044715).addi(x).muli(Math.sqrt(2 / Math.PI));
                Transforms.tanh(scratch, false);
                x.muli(scratch.addi(1.0)).muli(0.5);
            }
            default -> throw new IllegalArgumentException("unsupported activation function \"" + name
                    + "\"; supported: relu, gelu, gelu_new");
        }
    }

    /** Rows {@code rows[i]} of {@code table [n, width]} into row i of {@code out}, or added to it. */
    static void gatherRows(INDArray table, int[] rows, INDArray out, boolean add) {
        FloatBuffer t = floats(table);
        FloatBuffer o = floats(out);
        int width = (int) table.size(1);
        for (int r = 0; r < rows.length; r++) {
            int from = rows[r] * width;
            int to = r * width;
            if (add) {
                for (int i = 0; i < width; i++) {
                    o.put(to + i, o.get(to + i) + t.get(from + i));
                }
            } else {
                o.put(to, t, from, width);
            }
        }
    }

    /**
     * Multi-head attention of many queries, through ND4J's batched products:
     * {@code out [batch * seq, heads * headDim] = softmax(q k^T + additive) v}, heads merged, for the rows
     * {@code q [batch * seq, heads * headDim]} over the first {@code length} positions of {@code keys,
     * values [batch, heads, capacity, headDim]}, with an additive mask broadcastable to
     * {@code [batch, heads, seq, length]}; no scaling (callers scale q).
     */
    static void attention(INDArray q, int seq, INDArray keys, INDArray values, int length, INDArray additive,
                          INDArray out) {
        long batch = keys.size(0);
        int heads = (int) keys.size(1);
        int headDim = (int) keys.size(3);
        INDArray queries = q.reshape(batch, seq, heads, headDim).permute(0, 2, 1, 3);
        INDArray scores = Nd4j.matmul(queries, firstPositions(keys, length), false, true, false);
        scores.addi(additive);
        Nd4j.exec(new SoftMax(scores, scores, 3));
        INDArray context = Nd4j.matmul(scores, firstPositions(values, length), false, false, false);
        out.reshape(batch, seq, heads, headDim).assign(context.permute(0, 2, 1, 3));
        scores.close();
        context.close();
    }

    /**
     * The same for one query per row (a decode step), as a loop over the cache: the batched products
     * would cost more in dispatch than the arithmetic. {@code q, out [batch, heads * headDim]}.
     */
    static void attendOne(INDArray q, INDArray keys, INDArray values, int length, INDArray additive, INDArray out) {
        int batch = (int) keys.size(0);
        int heads = (int) keys.size(1);
        int capacity = (int) keys.size(2);
        int headDim = (int) keys.size(3);
        FloatBuffer qs = floats(q);
        FloatBuffer ks = floats(keys);
        FloatBuffer vs = floats(values);
        FloatBuffer masks = floats(additive);
        FloatBuffer o = floats(out);
        // the additive mask broadcasts over batch and heads where it has size 1
        int maskBatchStride = additive.size(0) == 1 ? 0 : (int) (additive.size(1) * length);
        int maskHeadStride = additive.size(1) == 1 ? 0 : length;

        float[] query = new float[headDim];
        float[] row = new float[headDim];
        double[] context = new double[headDim];
        double[] weights = new double[length];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int at = (b * heads + h) * headDim;
                qs.get(at, query);
                int cached = (b * heads + h) * capacity * headDim;
                int mask = b * maskBatchStride + h * maskHeadStride;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < length; j++) {
                    ks.get(cached + j * headDim, row);
                    double dot = 0;
                    for (int d = 0; d < headDim; d++) {
                        dot += query[d] * row[d];
                    }
                    weights[j] = (float) dot + masks.get(mask + j);
                    max = Math.max(max, weights[j]);
                }
                double sum = 0;
                for (int j = 0; j < length; j++) {
                    weights[j] = Math.exp(weights[j] - max);
                    sum += weights[j];
                }
                java.util.Arrays.fill(context, 0);
                for (int j = 0; j < length; j++) {
                    vs.get(cached + j * headDim, row);
                    double p = weights[j] / sum;
                    for (int d = 0; d < headDim; d++) {
                        context[d] += p * row[d];
                    }
                }
                for (int d = 0; d < headDim; d++) {
                    o.put(at + d, (float) context[d]);
                }
            }
        }
    }

    /**
     * The rows of a {@code [batch, seq]} mask as floats (1 = attend, 0 = padding), checked against the
     * batch size and sequence length the caller expects.
     */
    static float[][] maskRows(INDArray attentionMask, long batch, long seq) {
        if (attentionMask.rank() != 2 || attentionMask.size(0) != batch || attentionMask.size(1) != seq) {
            throw new IllegalArgumentException("attention mask of shape " + java.util.Arrays.toString(attentionMask.shape())
                    + " where [" + batch + ", " + seq + "] is expected");
        }
        return attentionMask.castTo(org.nd4j.linalg.api.buffer.DataType.FLOAT).toFloatMatrix();
    }

    /** What the graphs' padding mask adds for a key with mask value {@code m}: {@code (1 - m) * MASKED}. */
    static float padding(float m) {
        return (1 - m) * (float) Layers.MASKED;
    }

    /**
     * The native memory of a float array that owns its buffer from the start, in row-major order (work
     * buffers, caches, weights and reshapes of them), for the loops to index directly.
     */
    static FloatBuffer floats(INDArray array) {
        if (array.offset() != 0 || array.ordering() != 'c' || array.length() != array.data().length()
                || array.dataType() != org.nd4j.linalg.api.buffer.DataType.FLOAT) {
            throw new IllegalArgumentException("a whole row-major float array is needed here, not a view or copy of another"
                    + " type (offset " + array.offset() + ", order " + array.ordering() + ", " + array.dataType() + ")");
        }
        return array.data().asNioFloat();
    }

    private static INDArray firstPositions(INDArray cache, int length) {
        return cache.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, length), NDArrayIndex.all());
    }
}
