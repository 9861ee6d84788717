package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.QFormerConfig;
import dev.blip2dl4j.config.QFormerParameters;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/**
 * The Querying Transformer (transformers' {@code Blip2QFormerModel}): BERT with post-LN layers, in which
 * the learned {@code query_tokens} read the image through cross-attention and hand a fixed number of
 * vectors on to the language model.
 *
 * <p>A Q-Former sequence holds the queries first and text tokens after them; either part may be absent
 * (transformers splits it with {@code query_length}). Every position takes part in self-attention, so text
 * and queries see each other. Only query positions cross-attend to the image (in layers
 * {@code i % cross_attention_frequency == 0}) and use the {@code intermediate_query}/{@code output_query}
 * FFN; text positions use {@code intermediate}/{@code output}. Captioning runs the queries alone, image-text
 * matching both, and the contrastive text side the text alone.
 *
 * <p>The image is never padded, so there is no encoder mask (transformers adds an all-zero one).
 */
public final class QFormer {
    private QFormer() {
    }

    /**
     * @param lastHiddenState {@code [batch, seq, hidden]}, the queries' rows first
     * @param hiddenStates    {@code qformer.layernorm} of the input, then the output of each layer, each
     *                        {@code [batch, seq, hidden]} (transformers' {@code hidden_states})
     */
    public record Output(SDVariable lastHiddenState, List<SDVariable> hiddenStates) {
    }

    /** The queries alone reading {@code imageEmbeds [batch, imageSeq, encoderHidden]}: what captioning needs. */
    public static Output build(Layers nn, QFormerConfig config, SDVariable imageEmbeds) {
        return forward(nn, config, queryTokens(nn, imageEmbeds), null, null, imageEmbeds);
    }

    /**
     * The queries reading each image and, after them in the same sequence, the text of the same row
     * ({@code textEmbeds [batch, seq, hidden]} from {@link QFormerTextEmbeddings}, {@code textAttentionMask
     * [batch, seq]} with 1 for tokens and 0 for padding): image-text matching. The queries are never masked.
     */
    public static Output build(Layers nn, QFormerConfig config, SDVariable imageEmbeds,
                               SDVariable textEmbeds, SDVariable textAttentionMask) {
        return forward(nn, config, queryTokens(nn, imageEmbeds), textEmbeds, textAttentionMask, imageEmbeds);
    }

    /** Text alone, without queries or image: the text side of image-text contrast. */
    public static Output text(Layers nn, QFormerConfig config, SDVariable textEmbeds, SDVariable textAttentionMask) {
        return forward(nn, config, null, textEmbeds, textAttentionMask, null);
    }

    /** {@code query_tokens [1, queries, hidden]} repeated for each image of the batch. */
    public static SDVariable queryTokens(Layers nn, SDVariable imageEmbeds) {
        return nn.sd().tile(nn.param(Blip2Parameters.queryTokens()), nn.shape(nn.size(imageEmbeds, 0), 1, 1));
    }

    private static Output forward(Layers nn, QFormerConfig config, SDVariable queries, SDVariable text,
                                  SDVariable textAttentionMask, SDVariable imageEmbeds) {
        config.requireSupported();
        if (text != null && !config.useQformerTextInput()) {
            throw new IllegalArgumentException("this Q-Former reads no text: its config has use_qformer_text_input"
                    + " false, so it has no text feed-forward layers (only the retrieval model has them)");
        }
        SameDiff sd = nn.sd();
        int queryLength = queries == null ? 0 : (int) nn.param(Blip2Parameters.queryTokens()).getShape()[1];
        SDVariable embeds = queries == null ? text : text == null ? queries : sd.concat(1, queries, text);
        Sequence seq = new Sequence(nn, nn.size(embeds, 1), queryLength, text != null, config.hiddenSize());
        SDVariable mask = selfAttentionMask(nn, seq, textAttentionMask);
        Image image = imageEmbeds == null ? null : new Image(
                sd.reshape(imageEmbeds, -1, config.encoderHiddenSize()), nn.size(imageEmbeds, 1));

        // dropout follows the LayerNorm in transformers; it is off at inference
        SDVariable hidden = nn.layerNorm(sd.reshape(embeds, -1, config.hiddenSize()), QFormerParameters.layerNorm(),
                config.layerNormEps());
        List<SDVariable> hiddenStates = new ArrayList<>();
        hiddenStates.add(seq.unflatten(hidden));
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            hidden = layer(nn, config, i, hidden, seq, mask, image);
            hiddenStates.add(seq.unflatten(hidden));
        }
        return new Output(hiddenStates.get(hiddenStates.size() - 1), List.copyOf(hiddenStates));
    }

    /** {@code Blip2QFormerLayer}: self-attention over all rows, then the query and text paths apart. */
    private static SDVariable layer(Layers nn, QFormerConfig config, int index, SDVariable hidden, Sequence seq,
                                    SDVariable mask, Image image) {
        QFormerParameters.Layer names = QFormerParameters.layer(index);
        SDVariable attended = attention(nn, config, names.selfAttention(), hidden, seq.length(), hidden, seq.length(),
                mask);
        if (seq.queries() == 0) {
            return feedForward(nn, config, names.textFeedForward(), attended);
        }
        SDVariable queries = seq.hasText() ? seq.queryRows(attended) : attended;
        if (config.hasCrossAttention(index)) {
            queries = attention(nn, config, names.crossAttention(), queries, seq.queryLength(), image.rows(),
                    image.length(), null);
        }
        queries = feedForward(nn, config, names.queryFeedForward(), queries);
        if (!seq.hasText()) {
            return queries;
        }
        SDVariable text = feedForward(nn, config, names.textFeedForward(), seq.textRows(attended));
        return seq.join(queries, text);
    }

    /**
     * {@code Blip2QFormerAttention}: multi-head attention of {@code x} over {@code keysValues} (itself, or
     * the image for cross-attention), then {@code output.dense}, the residual and {@code output.LayerNorm}.
     */
    private static SDVariable attention(Layers nn, QFormerConfig config, QFormerParameters.Attention names,
                                        SDVariable x, SDVariable xLength,
                                        SDVariable keysValues, SDVariable keysValuesLength, SDVariable mask) {
        int heads = config.numAttentionHeads();
        int headDim = config.headDim();
        SDVariable q = nn.splitHeads(nn.linear(x, names.query()), xLength, heads, headDim);
        SDVariable k = nn.splitHeads(nn.linear(keysValues, names.key()), keysValuesLength, heads, headDim);
        SDVariable v = nn.splitHeads(nn.linear(keysValues, names.value()), keysValuesLength, heads, headDim);
        SDVariable context = nn.mergeHeads(nn.attention(q, k, v, mask, 1 / Math.sqrt(headDim)), heads, headDim);
        return nn.layerNorm(nn.linear(context, names.outputDense()).add(x), names.outputLayerNorm(),
                config.layerNormEps());
    }

    /**
     * {@code Blip2QFormerIntermediate} (dense, exact GELU), then {@code Blip2QFormerOutput} (dense, residual,
     * LayerNorm).
     */
    private static SDVariable feedForward(Layers nn, QFormerConfig config, QFormerParameters.FeedForward names,
                                          SDVariable x) {
        SDVariable inner = nn.gelu(nn.linear(x, names.intermediateDense()));
        return nn.layerNorm(nn.linear(inner, names.outputDense()).add(x), names.outputLayerNorm(),
                config.layerNormEps());
    }

    /**
     * transformers' extended mask: {@code (1 - mask) * -10000} over the keys, the queries always attended;
     * null where nothing is masked.
     */
    private static SDVariable selfAttentionMask(Layers nn, Sequence seq, SDVariable textAttentionMask) {
        if (textAttentionMask == null) {
            return null;
        }
        SameDiff sd = nn.sd();
        SDVariable keep = textAttentionMask.castTo(DataType.FLOAT);
        if (seq.queries() > 0) {
            SDVariable batch = nn.size(textAttentionMask, 0);
            SDVariable queriesKept = sd.fill(nn.shape(batch, seq.queries()), DataType.FLOAT, 1.0);
            keep = sd.concat(1, queriesKept, keep);
        }
        return sd.reshape(keep.rsub(1.0).mul(-10000.0), nn.shape(-1, 1, 1, seq.length()));
    }

    /** The image the queries cross-attend to, as rows {@code [batch * length, encoderHidden]}. */
    private record Image(SDVariable rows, SDVariable length) {
    }

    /**
     * The layout of a sequence held as rows {@code [batch * length, hidden]}: {@code queries} query rows
     * first in each batch entry, text rows after them if {@code hasText}.
     */
    private record Sequence(Layers nn, SDVariable length, int queries, boolean hasText, int width) {

        SDVariable queryLength() {
            return nn.constant(Nd4j.scalar((long) queries));
        }

        SDVariable unflatten(SDVariable rows) {
            return nn.sd().reshape(rows, nn.shape(-1, length, width));
        }

        SDVariable queryRows(SDVariable rows) {
            // end mask 0b101: the batch and hidden axes run to their ends
            SDVariable part = nn.sd().stridedSlice(unflatten(rows), new long[]{0, 0, 0}, new long[]{0, queries, 0},
                    new long[]{1, 1, 1}, 0, 0b101, 0, 0, 0);
            return nn.sd().reshape(part, -1, width);
        }

        SDVariable textRows(SDVariable rows) {
            SDVariable part = nn.sd().stridedSlice(unflatten(rows), new long[]{0, queries, 0}, new long[]{0, 0, 0},
                    new long[]{1, 1, 1}, 0, 0b111, 0, 0, 0);
            return nn.sd().reshape(part, -1, width);
        }

        SDVariable join(SDVariable queryRows, SDVariable textRows) {
            SameDiff sd = nn.sd();
            SDVariable q = sd.reshape(queryRows, nn.shape(-1, queries, width));
            SDVariable t = sd.reshape(textRows, nn.shape(-1, length.sub(queries), width));
            return sd.reshape(sd.concat(1, q, t), -1, width);
        }
    }
}
