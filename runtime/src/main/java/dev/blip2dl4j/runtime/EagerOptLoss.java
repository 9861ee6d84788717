package dev.blip2dl4j.runtime;

import dev.blip2dl4j.model.Labels;
import dev.blip2dl4j.config.OptConfig;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * BLIP-2's language-modelling loss through a frozen OPT and its gradient with respect to the prefix the language
 * model reads in front of the text (the projected Q-Former queries), eagerly: all that stage-two training needs from
 * the language model, whose own weights never train. The backward pass computes no weight gradient at all, only
 * the input gradient through every layer, which costs about what the forward pass does (one product per weight,
 * {@code dX = dY W}); a SameDiff graph of the same loss computes both operands' gradients of every product
 * (M2.1's {@code matmul_bp}) and holds far more memory.
 *
 * <p>The loss is transformers' for {@code Blip2ForConditionalGeneration} with OPT: text position t predicts label
 * t + 1, and the mean is taken over the labels that are not -100 ({@code CrossEntropyLoss(ignore_index=-100)}). The
 * forward pass is {@link EagerOpt}'s, recording an {@link OptTape}; the lm_head runs on the scored positions only.
 */
public final class EagerOptLoss {
    private final EagerOpt model;
    private final OptConfig config;
    private final Workspace work = new Workspace();

    public EagerOptLoss(EagerOpt model) {
        OptConfig config = model.config();
        if (!config.doLayerNormBefore() || config.hasEmbeddingProjections() || !"relu".equals(config.activationFunction())) {
            throw new IllegalArgumentException("training through an OPT language model needs pre-LN layers with ReLU"
                    + " and no embedding projections (as BLIP-2's OPT-2.7b and 6.7b have); this one has"
                    + " do_layer_norm_before=" + config.doLayerNormBefore() + ", activation_function="
                    + config.activationFunction() + ", word_embed_proj_dim=" + config.wordEmbedProjDim()
                    + " for hidden_size=" + config.hiddenSize());
        }
        this.model = model;
        this.config = config;
    }

    /** The loss alone (a forward pass, nothing recorded). Arguments as for {@link #lossAndGradient}. */
    public double loss(INDArray prefix, INDArray inputIds, INDArray attentionMask, INDArray labels) {
        return run(prefix, inputIds, attentionMask, labels, false).loss();
    }

    /**
     * @param prefix        {@code [batch, prefix, width]}: what the model reads before the text, always attended
     * @param inputIds      {@code [batch, seq]}, integers: the text (prompt and answer)
     * @param attentionMask {@code [batch, seq]}, 1 = token, 0 = padding
     * @param labels        {@code [batch, seq]}, integers aligned with the ids, {@link Labels#IGNORE_INDEX} where a token is
     *                      not learned (prompt, padding)
     */
    public PrefixLoss lossAndGradient(INDArray prefix, INDArray inputIds, INDArray attentionMask, INDArray labels) {
        return run(prefix, inputIds, attentionMask, labels, true);
    }

    private PrefixLoss run(INDArray prefix, INDArray inputIds, INDArray attentionMask, INDArray labels, boolean backward) {
        int width = config.hiddenSize();
        if (prefix.rank() != 3 || prefix.size(2) != width) {
            throw new IllegalArgumentException("prefix of shape " + Arrays.toString(prefix.shape())
                    + " where [batch, prefix, " + width + "] is expected");
        }
        int batch = (int) prefix.size(0);
        int prefixLength = (int) prefix.size(1);
        long[] textShape = inputIds.shape();
        if (textShape.length != 2 || textShape[0] != batch || textShape[1] < 2
                || !Arrays.equals(textShape, attentionMask.shape()) || !Arrays.equals(textShape, labels.shape())) {
            throw new IllegalArgumentException("ids, attention mask and labels must all be [" + batch
                    + ", seq >= 2]; got " + Arrays.toString(textShape) + ", " + Arrays.toString(attentionMask.shape())
                    + " and " + Arrays.toString(labels.shape()));
        }
        // the last text position predicts no label and, attention being causal, no other position reads it: not run
        int text = (int) textShape[1] - 1;
        int seq = prefixLength + text;
        long[][] label = labels.castTo(DataType.INT64).toLongMatrix();
        // position prefix + t predicts label t + 1; the prefix predicts nothing
        long[] targets = new long[batch * seq];
        Arrays.fill(targets, Labels.IGNORE_INDEX);
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < text; t++) {
                targets[b * seq + prefixLength + t] = label[b][t + 1];
            }
        }
        int[] scored = IntStream.range(0, targets.length).filter(i -> targets[i] != Labels.IGNORE_INDEX).toArray();
        if (scored.length == 0) {
            throw new IllegalArgumentException("no label to learn from: every label after the first is " + Labels.IGNORE_INDEX);
        }
        long[][] ids = Arrays.stream(inputIds.castTo(DataType.INT64).toLongMatrix())
                .map(row -> Arrays.copyOf(row, text)).toArray(long[][]::new);
        INDArray embeds = PromptInputs.embeddings(prefix, model.embedTokens(), ids);
        INDArray mask = PromptInputs.attentionMask(prefixLength,
                attentionMask.get(NDArrayIndex.all(), NDArrayIndex.interval(0, text)));
        KvCache cache = model.newCache(seq);
        try (OptTape tape = backward ? new OptTape(config.numHiddenLayers()) : null;
             EagerAttention attention = backward ? new EagerAttention(config.numAttentionHeads(), config.headDim(), seq,
                     seq) : null) {
            INDArray hidden = model.lastHiddenState(cache, embeds.reshape((long) batch * seq, width), batch, seq, mask,
                    tape);
            INDArray scoredHidden = work.get("scored", scored.length, width);
            EagerLayers.gatherRows(hidden, scored, scoredHidden, false);
            INDArray logits = work.get("logits", scored.length, config.vocabSize());
            model.head().apply(scoredHidden, logits);
            long[] scoredTargets = Arrays.stream(scored).mapToLong(i -> targets[i]).toArray();
            double loss = crossEntropy(logits, scoredTargets, backward);
            if (!backward) {
                return new PrefixLoss(loss, null);
            }
            // logits now hold d loss / d logits; the head's input gradient goes back to the scored rows
            model.head().backwardToInput(logits, scoredHidden, 1.0, false);
            INDArray dHidden = Nd4j.zeros(DataType.FLOAT, (long) batch * seq, width);
            scatterRows(scoredHidden, scored, dHidden);
            INDArray gradient = Nd4j.zeros(DataType.FLOAT, (long) batch * seq, width);
            LayerNorm finalNorm = model.finalNorm();
            if (finalNorm != null) {
                EagerLayers.layerNormBackward(tape.finalInput, finalNorm.weight(), finalNorm.eps(), dHidden, gradient,
                        null, null);
            } else {
                gradient.assign(dHidden);
            }
            dHidden.close();
            for (int i = config.numHiddenLayers() - 1; i >= 0; i--) {
                layerBackward(i, tape, attention, gradient);
            }
            INDArray prefixGradient = gradient.reshape(batch, seq, width)
                    .get(NDArrayIndex.all(), NDArrayIndex.interval(0, prefixLength), NDArrayIndex.all()).dup('c');
            gradient.close();
            return new PrefixLoss(loss, prefixGradient);
        } finally {
            cache.close();
            embeds.close();
        }
    }

    /**
     * The mean over rows of {@code -log softmax(logits)[target]}, accumulated in double; with {@code gradient},
     * {@code logits} is overwritten with the mean's gradient {@code (softmax - onehot(target)) / rows}.
     */
    static double crossEntropy(INDArray logits, long[] targets, boolean gradient) {
        int rows = targets.length;
        int vocab = (int) logits.size(1);
        FloatBuffer z = EagerLayers.floats(logits);
        double total = 0;
        for (int r = 0; r < rows; r++) {
            if (targets[r] < 0 || targets[r] >= vocab) {
                throw new IllegalArgumentException("target " + targets[r] + " is outside the vocabulary of " + vocab);
            }
            int at = r * vocab;
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < vocab; j++) {
                max = Math.max(max, z.get(at + j));
            }
            double sum = 0;
            for (int j = 0; j < vocab; j++) {
                sum += Math.exp(z.get(at + j) - max);
            }
            double logSum = Math.log(sum);
            total -= z.get(at + (int) targets[r]) - max - logSum;
            if (gradient) {
                for (int j = 0; j < vocab; j++) {
                    double p = Math.exp(z.get(at + j) - max - logSum);
                    z.put(at + j, (float) ((p - (j == targets[r] ? 1 : 0)) / rows));
                }
            }
        }
        return total / rows;
    }

    /**
     * One pre-LN layer backwards, {@code gradient} (d loss / d the layer's output, the residual stream) becoming
     * d loss / d its input in place: the MLP's branch, then attention's, each added onto the residual's.
     */
    private void layerBackward(int index, OptTape tape, EagerAttention attention, INDArray gradient) {
        EagerOpt.Layer layer = model.layer(index);
        long rows = gradient.size(0);
        int width = config.hiddenSize();
        INDArray dInner = work.get("dInner", rows, config.ffnDim());
        INDArray dNormed = work.get("dNormed", rows, width);
        layer.fc2().backwardToInput(gradient, dInner, 1.0, false);
        reluBackward(dInner, tape.activated[index]);
        layer.fc1().backwardToInput(dInner, dNormed, 1.0, false);
        EagerLayers.layerNormBackward(tape.attended[index], layer.mlpNorm().weight(), layer.mlpNorm().eps(), dNormed,
                gradient, null, null);

        INDArray dMerged = work.get("dMerged", rows, width);
        layer.out().backwardToInput(gradient, dMerged, 1.0, false);
        INDArray dQ = work.get("dQ", rows, width);
        INDArray dK = work.get("dK", rows, width);
        INDArray dV = work.get("dV", rows, width);
        // q was scaled before the scores (transformers' order): the scores' scale is 1, the product's gradient carries it
        attention.backward(tape.queries[index], tape.keys[index], tape.values[index], 1.0, dMerged, dQ, dK, dV,
                tape.additiveMask);
        layer.q().backwardToInput(dQ, dNormed, Math.pow(config.headDim(), -0.5), false);
        layer.k().backwardToInput(dK, dNormed, 1.0, true);
        layer.v().backwardToInput(dV, dNormed, 1.0, true);
        EagerLayers.layerNormBackward(tape.inputs[index], layer.attnNorm().weight(), layer.attnNorm().eps(), dNormed,
                gradient, null, null);
    }

    /** {@code d *= (activated > 0)}: ReLU passes the gradient where its input was positive. */
    private static void reluBackward(INDArray d, INDArray activated) {
        FloatBuffer g = EagerLayers.floats(d);
        FloatBuffer a = EagerLayers.floats(activated);
        for (int i = 0; i < d.length(); i++) {
            if (a.get(i) <= 0) {
                g.put(i, 0f);
            }
        }
    }

    /** Row i of {@code from} into row {@code rows[i]} of {@code to}. */
    static void scatterRows(INDArray from, int[] rows, INDArray to) {
        FloatBuffer source = EagerLayers.floats(from);
        FloatBuffer target = EagerLayers.floats(to);
        int width = (int) from.size(1);
        for (int r = 0; r < rows.length; r++) {
            target.put(rows[r] * width, source, r * width, width);
        }
    }
}
