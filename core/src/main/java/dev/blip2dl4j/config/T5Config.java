package dev.blip2dl4j.config;

import dev.blip2dl4j.config.JsonFields.Size;

/**
 * A T5 encoder-decoder ({@code model_type: "t5"}, transformers' {@code T5Config}); BLIP-2 uses Flan-T5 XL
 * and XXL. The attention width {@code numHeads * dKv} need not equal {@code dModel}.
 */
public record T5Config(
        int vocabSize,
        int dModel,
        int dKv,
        int dFf,
        int numLayers,
        int numDecoderLayers,
        int numHeads,
        int relativeAttentionNumBuckets,
        int relativeAttentionMaxDistance,
        double layerNormEpsilon,
        String feedForwardProj,
        String denseActFn,
        boolean isGatedAct,
        boolean tieWordEmbeddings,
        Integer decoderStartTokenId,
        Integer bosTokenId,
        Integer eosTokenId,
        Integer padTokenId) implements TextConfig {

    @Override
    public String modelType() {
        return "t5";
    }

    @Override
    public int hiddenSize() {
        return dModel;
    }

    @Override
    public boolean decoderOnly() {
        return false;
    }

    /** The token the decoder starts from, for generation and teacher forcing alike; throws where the config has none. */
    public int requireDecoderStartTokenId() {
        if (decoderStartTokenId == null) {
            throw new IllegalArgumentException("the T5 config has no decoder_start_token_id to start decoding with");
        }
        return decoderStartTokenId;
    }

    /** Width of q, k, v and of the input to o. */
    public int innerDim() {
        return numHeads * dKv;
    }

    static T5Config from(JsonFields f) {
        int numLayers = f.size("num_layers", 6, Size.COUNT);
        Integer decoderLayers = f.optionalInteger("num_decoder_layers");  // None means "as many as the encoder"
        String proj = f.string("feed_forward_proj", "relu");
        Activation act = Activation.derive(proj, f);
        return new T5Config(
                f.size("vocab_size", 32128, Size.VOCABULARY),
                f.size("d_model", 512, Size.WIDTH),
                f.size("d_kv", 64, Size.WIDTH),
                f.size("d_ff", 2048, Size.WIDTH),
                numLayers,
                decoderLayers == null ? numLayers : f.size("num_decoder_layers", numLayers, Size.COUNT),
                f.size("num_heads", 8, Size.COUNT),
                f.size("relative_attention_num_buckets", 32, Size.COUNT),
                f.size("relative_attention_max_distance", 128, Size.POSITIONS),
                f.epsilon("layer_norm_epsilon", 1e-6),
                proj,
                // T5Config derives both from feed_forward_proj, then PretrainedConfig sets every remaining
                // key of the file as an attribute: an explicit dense_act_fn / is_gated_act therefore wins.
                f.string("dense_act_fn", act.denseActFn()),
                f.bool("is_gated_act", act.gated()),
                f.bool("tie_word_embeddings", true),
                f.tokenId("decoder_start_token_id", null),
                f.tokenId("bos_token_id", null),
                f.tokenId("eos_token_id", 1),
                f.tokenId("pad_token_id", 0));
    }

    /** What transformers derives from feed_forward_proj alone ("relu", "gated-gelu", "gated-silu", ...). */
    record Activation(String denseActFn, boolean gated) {
        static Activation derive(String feedForwardProj, JsonFields f) {
            String[] parts = feedForwardProj.split("-", -1);
            if (parts.length > 2 || (parts.length == 2 && !parts[0].equals("gated"))) {
                throw f.bad("feed_forward_proj", "= \"" + feedForwardProj
                        + "\" is not of the form \"gated-ACT\" or \"ACT\" (e.g. \"gated-gelu\", \"relu\")");
            }
            // transformers keeps "gated-gelu" on the tanh approximation for backward compatibility
            String act = feedForwardProj.equals("gated-gelu") ? "gelu_new" : parts[parts.length - 1];
            return new Activation(act, parts[0].equals("gated"));
        }
    }
}
