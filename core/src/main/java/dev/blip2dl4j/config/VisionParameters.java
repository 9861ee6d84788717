package dev.blip2dl4j.config;

/**
 * The canonical names of the image encoder's parameters ({@code vision_model.*}, transformers'
 * {@code Blip2VisionModel}), the only place they are spelled, and their shapes for a config. Linear and
 * LayerNorm names are prefixes, to which {@code .weight} and {@code .bias} belong.
 */
public final class VisionParameters {
    private static final String PREFIX = "vision_model.";
    private static final String EMBEDDINGS = PREFIX + "embeddings.";

    private VisionParameters() {
    }

    /** Whether the parameter belongs to the image encoder. */
    public static boolean contains(String name) {
        return name.startsWith(PREFIX);
    }

    /** {@code [1, 1, hidden]}. */
    public static String classEmbedding() {
        return EMBEDDINGS + "class_embedding";
    }

    /** {@code [1, positions, hidden]}. */
    public static String positionEmbedding() {
        return EMBEDDINGS + "position_embedding";
    }

    /** The patch convolution's kernel {@code [hidden, 3, patch, patch]}. */
    public static String patchEmbeddingWeight() {
        return EMBEDDINGS + "patch_embedding.weight";
    }

    /** {@code [hidden]}. */
    public static String patchEmbeddingBias() {
        return EMBEDDINGS + "patch_embedding.bias";
    }

    public static Layer layer(int index) {
        return new Layer(index);
    }

    public static String postLayerNorm() {
        return PREFIX + "post_layernorm";
    }

    /** {@code Blip2EncoderLayer} number {@code index}. */
    public record Layer(int index) {
        public String layerNorm1() {
            return prefix() + "layer_norm1";
        }

        /** One fused projection whose output columns are (q | k | v). */
        public String qkv() {
            return prefix() + "self_attn.qkv";
        }

        public String projection() {
            return prefix() + "self_attn.projection";
        }

        public String layerNorm2() {
            return prefix() + "layer_norm2";
        }

        public String fc1() {
            return prefix() + "mlp.fc1";
        }

        public String fc2() {
            return prefix() + "mlp.fc2";
        }

        private String prefix() {
            return PREFIX + "encoder.layers." + index + ".";
        }
    }

    static void declare(ParameterLayout.Builder b, VisionConfig v) {
        int h = v.hiddenSize();
        b.param(classEmbedding(), 1, 1, h);
        b.param(positionEmbedding(), 1, v.numPositions(), h);
        b.param(patchEmbeddingWeight(), h, 3, v.patchSize(), v.patchSize());
        b.param(patchEmbeddingBias(), h);
        for (int i = 0; i < v.numHiddenLayers(); i++) {
            Layer l = layer(i);
            // one fused qkv; its bias is cat(q_bias, 0, v_bias), EVA having no key bias
            b.linear(l.qkv(), 3 * h, h, v.qkvBias());
            b.linear(l.projection(), h, h, true);
            b.layerNorm(l.layerNorm1(), h);
            b.linear(l.fc1(), v.intermediateSize(), h, true);
            b.linear(l.fc2(), h, v.intermediateSize(), true);
            b.layerNorm(l.layerNorm2(), h);
        }
        b.layerNorm(postLayerNorm(), h);
    }
}
