package dev.blip2dl4j.config;

/**
 * The canonical names of BLIP-2's OPT language model (transformers' {@code OPTForCausalLM} under
 * {@code language_model}), the one place they are spelled, and the list of its parameters for
 * {@link ParameterLayout}. A name ending in {@code .weight} is a parameter; the others are prefixes of a Linear or
 * LayerNorm, whose {@code .weight} and {@code .bias} the code binding them appends.
 */
public final class OptParameters {
    private static final String DECODER = Blip2Parameters.LANGUAGE_MODEL + "model.decoder.";

    private OptParameters() {
    }

    /** The token embedding {@code [vocab, word_embed_proj_dim]}, also the tied lm_head. */
    public static String embedTokens() {
        return DECODER + "embed_tokens.weight";
    }

    /** The learned positions {@code [max_position_embeddings + 2, hidden]}. */
    public static String embedPositions() {
        return DECODER + "embed_positions.weight";
    }

    public static String projectIn() {
        return DECODER + "project_in";
    }

    public static String projectOut() {
        return DECODER + "project_out";
    }

    /** The decoder's final LayerNorm (after the last layer, not the one inside each layer). */
    public static String finalLayerNorm() {
        return DECODER + "final_layer_norm";
    }

    /** The lm_head's Linear; its weight is stored only when the config unties it from {@link #embedTokens}. */
    public static String lmHead() {
        return Blip2Parameters.LANGUAGE_MODEL + "lm_head";
    }

    public static Layer layer(int index) {
        return new Layer(DECODER + "layers." + index + ".");
    }

    /** One decoder layer's Linears and LayerNorms. */
    public record Layer(String prefix) {
        public String selfAttnLayerNorm() {
            return prefix + "self_attn_layer_norm";
        }

        public String qProj() {
            return prefix + "self_attn.q_proj";
        }

        public String kProj() {
            return prefix + "self_attn.k_proj";
        }

        public String vProj() {
            return prefix + "self_attn.v_proj";
        }

        public String outProj() {
            return prefix + "self_attn.out_proj";
        }

        /** The MLP's LayerNorm (transformers names it for its place in post-LN layers). */
        public String finalLayerNorm() {
            return prefix + "final_layer_norm";
        }

        public String fc1() {
            return prefix + "fc1";
        }

        public String fc2() {
            return prefix + "fc2";
        }
    }

    /** Every parameter of the decoder and its lm_head, in state_dict order. */
    static void declare(ParameterLayout.Builder b, OptConfig c) {
        int h = c.hiddenSize();
        boolean bias = c.enableBias();
        b.param(embedTokens(), c.vocabSize(), c.wordEmbedProjDim());
        b.param(embedPositions(), c.maxPositionEmbeddings() + OptConfig.POSITION_OFFSET, h);
        if (c.hasEmbeddingProjections()) {
            b.linear(projectOut(), c.wordEmbedProjDim(), h, false);
            b.linear(projectIn(), h, c.wordEmbedProjDim(), false);
        }
        if (c.hasFinalLayerNorm()) {
            layerNorm(b, finalLayerNorm(), h, c);
        }
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            Layer l = layer(i);
            b.linear(l.kProj(), h, h, bias);
            b.linear(l.vProj(), h, h, bias);
            b.linear(l.qProj(), h, h, bias);
            b.linear(l.outProj(), h, h, bias);
            layerNorm(b, l.selfAttnLayerNorm(), h, c);
            b.linear(l.fc1(), c.ffnDim(), h, bias);
            b.linear(l.fc2(), h, c.ffnDim(), bias);
            layerNorm(b, l.finalLayerNorm(), h, c);
        }
        b.maybeTied(lmHead() + ".weight", embedTokens(), c.tieWordEmbeddings(), c.vocabSize(), c.wordEmbedProjDim());
    }

    /** OPT can switch the LayerNorm affine parameters off altogether. */
    private static void layerNorm(ParameterLayout.Builder b, String prefix, int width, OptConfig c) {
        if (c.layerNormElementwiseAffine()) {
            b.layerNorm(prefix, width);
        }
    }
}
