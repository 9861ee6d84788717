package dev.blip2dl4j.config;

import dev.blip2dl4j.config.JsonFields.Size;

/**
 * The Querying Transformer ({@code qformer_config}, transformers' {@code Blip2QFormerConfig}): BERT-base with
 * cross-attention to the image every {@code crossAttentionFrequency} layers. {@code encoderHiddenSize} is
 * always the vision width: transformers overwrites whatever the file says with it, and so do we.
 */
public record QFormerConfig(
        int vocabSize,
        int hiddenSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int intermediateSize,
        String hiddenAct,
        int maxPositionEmbeddings,
        double layerNormEps,
        Integer padTokenId,
        int crossAttentionFrequency,
        int encoderHiddenSize,
        boolean useQformerTextInput) {

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    public boolean hasCrossAttention(int layer) {
        return layer % crossAttentionFrequency == 0;
    }

    /**
     * Throws unless the graph and the eager runtime can run this Q-Former. Reading a config does not check it:
     * converters read configs they never run.
     */
    public void requireSupported() {
        if (!hiddenAct.equals("gelu")) {
            throw new IllegalArgumentException("Q-Former hidden_act \"" + hiddenAct
                    + "\" is not supported; BLIP-2 uses \"gelu\"");
        }
    }

    static QFormerConfig from(JsonFields f, int visionHiddenSize) {
        // Relative position embeddings would add tables (distance_embedding) that BLIP-2 never had.
        String positions = f.string("position_embedding_type", "absolute");
        if (!positions.equals("absolute")) {
            throw f.bad("position_embedding_type", "= \"" + positions + "\" is not supported; BLIP-2 uses \"absolute\"");
        }
        QFormerConfig c = new QFormerConfig(
                f.size("vocab_size", 30522, Size.VOCABULARY),
                f.size("hidden_size", 768, Size.WIDTH),
                f.size("num_hidden_layers", 12, Size.COUNT),
                f.size("num_attention_heads", 12, Size.COUNT),
                f.size("intermediate_size", 3072, Size.WIDTH),
                f.string("hidden_act", "gelu"),
                f.size("max_position_embeddings", 512, Size.POSITIONS),
                f.epsilon("layer_norm_eps", 1e-12),
                f.tokenId("pad_token_id", 0),
                f.size("cross_attention_frequency", 2, Size.COUNT),
                visionHiddenSize,
                f.bool("use_qformer_text_input", false));
        if (c.hiddenSize % c.numAttentionHeads != 0) {
            throw f.bad("hidden_size", "= " + c.hiddenSize + " is not divisible by "
                    + f.path("num_attention_heads") + " = " + c.numAttentionHeads);
        }
        return c;
    }
}
