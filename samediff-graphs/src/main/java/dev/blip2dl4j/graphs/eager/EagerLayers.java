package dev.blip2dl4j.graphs.eager;

import dev.blip2dl4j.graphs.Layers;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.floating.RSqrt;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Erf;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * The eager counterparts of {@link Layers}' building blocks: the same math in the same order, on
 * arrays, written into buffers the caller owns. Activations are {@code [rows, width]} as in the graphs;
 * attention works on {@code [batch, heads, seq, headDim]} views of them.
 */
final class EagerLayers {
    private EagerLayers() {
    }

    /** LayerNorm over the last axis (biased variance); {@code out} may be {@code x}. */
    static void layerNorm(INDArray x, INDArray weight, INDArray bias, double eps, INDArray out) {
        INDArray mean = x.mean(true, 1);
        out.assign(x).subiColumnVector(mean);
        INDArray scale = out.var(false, 1).addi(eps);
        Nd4j.exec(new RSqrt(scale, scale));
        out.muliColumnVector(scale.reshape(scale.length(), 1)).muliRowVector(weight).addiRowVector(bias);
    }

    /** T5's RMSNorm: no mean subtraction, no bias; {@code out} must not be {@code x}. */
    static void rmsNorm(INDArray x, INDArray weight, double eps, INDArray out) {
        INDArray scale = out.assign(x).muli(x).mean(true, 1).addi(eps);
        Nd4j.exec(new RSqrt(scale, scale));
        out.assign(x).muliColumnVector(scale).muliRowVector(weight);
    }

    /**
     * transformers' {@code ACT2FN[name]} applied to {@code x} in place: relu, gelu (the exact erf form),
     * gelu_new (tanh); the GELUs take a scratch buffer of x's shape from {@code work}.
     */
    static void activation(String name, INDArray x, Workspace work) {
        switch (name) {
            case "relu" -> Transforms.relu(x, false);
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

    /** {@code [batch * seq, heads * headDim]} seen as {@code [batch, heads, seq, headDim]} (a view, no copy). */
    static INDArray splitHeads(INDArray x, long batch, long seq, int heads, int headDim) {
        return x.reshape(batch, seq, heads, headDim).permute(0, 2, 1, 3);
    }

    /** {@code [batch, heads, seq, headDim]} copied into {@code out [batch * seq, heads * headDim]}. */
    static void mergeHeads(INDArray context, INDArray out) {
        out.reshape(context.size(0), context.size(2), context.size(1), context.size(3)).assign(context.permute(0, 2, 1, 3));
    }

    /**
     * {@code context = softmax(q k^T + additive) v} for {@code q [batch, heads, seqQ, headDim]},
     * {@code k, v [batch, heads, seqK, headDim]} (views, e.g. of a cache) and an additive mask
     * broadcastable to the scores {@code [batch, heads, seqQ, seqK]}; no scaling (callers scale q).
     */
    static void attention(INDArray q, INDArray k, INDArray v, INDArray additive, INDArray context) {
        INDArray scores = Nd4j.matmul(q, k, false, true, false);
        scores.addi(additive);
        Nd4j.exec(new SoftMax(scores, scores, 3));
        Nd4j.matmul(scores, v, context, false, false, false);
        scores.close();
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
}
