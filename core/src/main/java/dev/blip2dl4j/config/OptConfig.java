package dev.blip2dl4j.config;

import dev.blip2dl4j.config.JsonFields.Size;

/**
 * An OPT decoder ({@code model_type: "opt"}, transformers' {@code OPTConfig}). BLIP-2 uses the pre-LN
 * variants (opt-2.7b, opt-6.7b); the flags for the older layouts (opt-350m's post-LN and embedding
 * projections, checkpoints without the final LayerNorm) are kept because they change the parameter list.
 */
public record OptConfig(
        int vocabSize,
        int hiddenSize,
        int numHiddenLayers,
        int ffnDim,
        int numAttentionHeads,
        int maxPositionEmbeddings,
        int wordEmbedProjDim,
        boolean doLayerNormBefore,
        boolean removeFinalLayerNorm,
        boolean enableBias,
        boolean layerNormElementwiseAffine,
        String activationFunction,
        boolean tieWordEmbeddings,
        Integer bosTokenId,
        Integer eosTokenId,
        Integer padTokenId) implements TextConfig {

    /** OPT's LayerNorms use PyTorch's default epsilon; no config key sets it. */
    public static final double LAYER_NORM_EPS = 1e-5;

    /** Learned positions start at this offset (fairseq's padding convention kept by transformers). */
    public static final int POSITION_OFFSET = 2;

    @Override
    public String modelType() {
        return "opt";
    }

    @Override
    public boolean decoderOnly() {
        return true;
    }

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** Embeddings narrower than the decoder go through project_in / project_out. */
    public boolean hasEmbeddingProjections() {
        return wordEmbedProjDim != hiddenSize;
    }

    public boolean hasFinalLayerNorm() {
        return doLayerNormBefore && !removeFinalLayerNorm;
    }

    /**
     * Throws unless the graph and the eager runtime can run this model: both bind every LayerNorm's weight and bias,
     * which a config with {@code layer_norm_elementwise_affine} false leaves out.
     */
    public void requireSupported() {
        if (!layerNormElementwiseAffine) {
            throw new IllegalArgumentException("OPT without LayerNorm weights (layer_norm_elementwise_affine"
                    + " false) is not supported: no BLIP-2 language model uses it");
        }
    }

    static OptConfig from(JsonFields f) {
        int hidden = f.size("hidden_size", 768, Size.WIDTH);
        Integer projDim = f.optionalInteger("word_embed_proj_dim");  // None means "same as hidden_size"
        OptConfig c = new OptConfig(
                f.size("vocab_size", 50272, Size.VOCABULARY),
                hidden,
                f.size("num_hidden_layers", 12, Size.COUNT),
                f.size("ffn_dim", 3072, Size.WIDTH),
                f.size("num_attention_heads", 12, Size.COUNT),
                f.size("max_position_embeddings", 2048, Size.POSITIONS),
                projDim == null ? hidden : f.size("word_embed_proj_dim", hidden, Size.WIDTH),
                f.bool("do_layer_norm_before", true),
                f.bool("_remove_final_layer_norm", false),
                f.bool("enable_bias", true),
                f.bool("layer_norm_elementwise_affine", true),
                f.string("activation_function", "relu"),
                f.bool("tie_word_embeddings", true),
                f.tokenId("bos_token_id", 2),
                f.tokenId("eos_token_id", 2),
                f.tokenId("pad_token_id", 1));
        if (c.hiddenSize % c.numAttentionHeads != 0) {
            throw f.bad("hidden_size", "= " + c.hiddenSize + " is not divisible by "
                    + f.path("num_attention_heads") + " = " + c.numAttentionHeads);
        }
        return c;
    }
}
