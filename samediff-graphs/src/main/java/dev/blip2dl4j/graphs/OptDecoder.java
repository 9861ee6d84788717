package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.OptParameters;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.List;

/**
 * The OPT causal language model as BLIP-2 runs it (transformers' {@code OPTForCausalLM} under
 * {@code language_model}), over the whole sequence at once: BLIP-2 hands it embeddings, the projected
 * Q-Former queries followed by the prompt's token embeddings ({@link #embedTokens},
 * {@link #prependQueries}).
 *
 * <p>Pre-LN decoder layers (self-attention, then a ReLU MLP, each around a residual), a final LayerNorm
 * and an lm_head tied to the token embedding. Positions are learned and counted over the attention mask
 * (the query positions count too), so a left-padded row sees the same positions as the row alone.
 */
public final class OptDecoder {
    /**
     * @param logits       {@code [batch, seq, vocab]}, every position (BLIP-2 reads the text positions)
     * @param hiddenStates as transformers' {@code output_hidden_states}: the input embeddings plus
     *                     positions, the output of layers 1..n-1, then the final output (after
     *                     final_layer_norm, and project_out where there is one), each {@code [batch, seq, hidden]}
     */
    public record Output(SDVariable logits, List<SDVariable> hiddenStates) {
        public SDVariable lastHiddenState() {
            return hiddenStates.get(hiddenStates.size() - 1);
        }
    }

    private OptDecoder() {
    }

    /**
     * @param inputsEmbeds  {@code [batch, seq, word_embed_proj_dim]}
     * @param attentionMask {@code [batch, seq]}, 1 = attend, 0 = padding (left or right), any numeric type
     */
    public static Output build(Layers nn, OptConfig config, SDVariable inputsEmbeds, SDVariable attentionMask) {
        config.requireSupported();
        SameDiff sd = nn.sd();
        SDVariable seq = nn.size(inputsEmbeds, 1);
        int hidden = config.hiddenSize();
        SDVariable mask = attentionMask.castTo(DataType.FLOAT);

        SDVariable h = sd.reshape(inputsEmbeds, -1, config.wordEmbedProjDim());
        if (config.hasEmbeddingProjections()) {
            h = nn.linear(h, OptParameters.projectIn());
        }
        h = h.add(positionEmbeddings(nn, config, mask, seq));
        SDVariable additiveMask = nn.causalMask(seq).add(nn.paddingMask(mask));

        List<SDVariable> hiddenStates = new ArrayList<>();
        for (int i = 0; i < config.numHiddenLayers(); i++) {
            hiddenStates.add(sd.reshape(h, nn.shape(-1, seq, hidden)));
            h = decoderLayer(nn, config, OptParameters.layer(i), h, seq, additiveMask);
        }
        if (config.hasFinalLayerNorm()) {
            h = nn.layerNorm(h, OptParameters.finalLayerNorm(), OptConfig.LAYER_NORM_EPS);
        }
        if (config.hasEmbeddingProjections()) {
            h = nn.linear(h, OptParameters.projectOut());
        }
        hiddenStates.add(sd.reshape(h, nn.shape(-1, seq, config.wordEmbedProjDim())));

        return new Output(sd.reshape(lmHead(nn, config, h), nn.shape(-1, seq, config.vocabSize())), hiddenStates);
    }

    /**
     * Logits {@code [rows, vocab]} of final outputs {@code [rows, word_embed_proj_dim]}: the lm_head, tied to the
     * token embedding unless the config unties it. Training applies it to the text rows alone.
     */
    public static SDVariable lmHead(Layers nn, OptConfig config, SDVariable rows) {
        return config.tieWordEmbeddings()
                ? nn.product(rows, OptParameters.embedTokens(), null)
                : nn.linear(rows, OptParameters.lmHead());
    }

    /** Token embeddings {@code [batch, seq, word_embed_proj_dim]} of {@code inputIds [batch, seq]} (frozen table). */
    public static SDVariable embedTokens(Layers nn, SDVariable inputIds) {
        return nn.sd().gather(nn.param(OptParameters.embedTokens()), inputIds, 0);
    }

    /**
     * BLIP-2's input to the language model: the projected queries {@code [batch, queries, width]} in
     * front of the token embeddings {@code [batch, seq, width]}; the attention mask gets as many ones
     * in front (the 2023 hub layout; the current one writes the queries over {@code <image>} tokens).
     */
    public static SDVariable prependQueries(Layers nn, SDVariable projectedQueries, SDVariable tokenEmbeds) {
        return nn.sd().concat(1, projectedQueries, tokenEmbeds);
    }

    /**
     * Learned positions, {@code [rows, hidden]}: position = (number of attended tokens up to and
     * including this one) - 1, plus OPT's offset of 2; padding rows read row 1. The running count is
     * the mask times an upper-triangular matrix of ones: SameDiff's cumsum cannot do it on integers,
     * nor differentiate it along the last axis of several rows.
     */
    private static SDVariable positionEmbeddings(Layers nn, OptConfig config, SDVariable mask, SDVariable seq) {
        SameDiff sd = nn.sd();
        SDVariable index = nn.arange(seq);
        SDVariable upToColumn = sd.lte(sd.expandDims(index, 1), sd.expandDims(index, 0)).castTo(DataType.FLOAT);
        SDVariable count = sd.mmul(mask, upToColumn);
        SDVariable positions = count.mul(mask).add(OptConfig.POSITION_OFFSET - 1).castTo(DataType.INT);
        SDVariable table = nn.param(OptParameters.embedPositions());
        return sd.reshape(sd.gather(table, positions, 0), -1, config.hiddenSize());
    }

    /** Pre-LN (opt-350m's post-LN when do_layer_norm_before is false): attention, then the MLP. */
    private static SDVariable decoderLayer(Layers nn, OptConfig config, OptParameters.Layer layer, SDVariable x,
                                           SDVariable seq, SDVariable additiveMask) {
        boolean preLn = config.doLayerNormBefore();
        String attnNorm = layer.selfAttnLayerNorm();
        SDVariable h = preLn ? nn.layerNorm(x, attnNorm, OptConfig.LAYER_NORM_EPS) : x;
        h = x.add(selfAttention(nn, config, layer, h, seq, additiveMask));
        if (!preLn) {
            h = nn.layerNorm(h, attnNorm, OptConfig.LAYER_NORM_EPS);
        }

        String mlpNorm = layer.finalLayerNorm();
        SDVariable m = preLn ? nn.layerNorm(h, mlpNorm, OptConfig.LAYER_NORM_EPS) : h;
        m = nn.linear(nn.activation(config.activationFunction(), nn.linear(m, layer.fc1())), layer.fc2());
        h = h.add(m);
        return preLn ? h : nn.layerNorm(h, mlpNorm, OptConfig.LAYER_NORM_EPS);
    }

    private static SDVariable selfAttention(Layers nn, OptConfig config, OptParameters.Layer layer, SDVariable x,
                                            SDVariable seq, SDVariable additiveMask) {
        int heads = config.numAttentionHeads();
        int headDim = config.headDim();
        // transformers scales q before the product, not the scores: keep its rounding
        SDVariable q = nn.linear(x, layer.qProj()).mul(Math.pow(headDim, -0.5));
        SDVariable k = nn.linear(x, layer.kProj());
        SDVariable v = nn.linear(x, layer.vProj());
        SDVariable context = nn.attention(nn.splitHeads(q, seq, heads, headDim), nn.splitHeads(k, seq, heads, headDim),
                nn.splitHeads(v, seq, heads, headDim), additiveMask, 1.0);
        return nn.linear(nn.mergeHeads(context, heads, headDim), layer.outProj());
    }
}
