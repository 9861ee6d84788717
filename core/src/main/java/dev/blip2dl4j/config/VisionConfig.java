package dev.blip2dl4j.config;

import dev.blip2dl4j.config.JsonFields.Size;

/**
 * The EVA ViT-g image encoder ({@code vision_config}, transformers' {@code Blip2VisionConfig}). Defaults are
 * ViT-g/14 at 224 px as BLIP-2 uses it: the last of EVA's 40 blocks is dropped, hence 39 layers.
 */
public record VisionConfig(
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int imageSize,
        int patchSize,
        String hiddenAct,
        double layerNormEps,
        boolean qkvBias) {

    public int headDim() {
        return hiddenSize / numAttentionHeads;
    }

    /** Patches along one side; the patch convolution drops a remainder, as PyTorch's stride does. */
    public int patchesPerSide() {
        return imageSize / patchSize;
    }

    /** Tokens the encoder sees and position embeddings it has: every patch plus the class token. */
    public int numPositions() {
        return patchesPerSide() * patchesPerSide() + 1;
    }

    /**
     * Throws unless the graph and the eager runtime can run this encoder. Reading a config does not check it:
     * converters read configs they never run.
     */
    public void requireSupported() {
        if (!hiddenAct.equals("gelu")) {
            throw new IllegalArgumentException("vision hidden_act \"" + hiddenAct
                    + "\" is not supported: BLIP-2's EVA ViT uses \"gelu\" (exact erf)");
        }
    }

    static VisionConfig from(JsonFields f) {
        VisionConfig c = new VisionConfig(
                f.size("hidden_size", 1408, Size.WIDTH),
                f.size("intermediate_size", 6144, Size.WIDTH),
                f.size("num_hidden_layers", 39, Size.COUNT),
                f.size("num_attention_heads", 16, Size.COUNT),
                f.size("image_size", 224, Size.PIXELS),
                f.size("patch_size", 14, Size.PIXELS),
                f.string("hidden_act", "gelu"),
                f.epsilon("layer_norm_eps", 1e-6),
                f.bool("qkv_bias", true));
        if (c.hiddenSize % c.numAttentionHeads != 0) {
            throw f.bad("hidden_size", "= " + c.hiddenSize + " is not divisible by "
                    + f.path("num_attention_heads") + " = " + c.numAttentionHeads);
        }
        if (c.imageSize < c.patchSize) {
            throw f.bad("image_size", "= " + c.imageSize + " is smaller than "
                    + f.path("patch_size") + " = " + c.patchSize);
        }
        return c;
    }
}
