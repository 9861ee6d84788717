package dev.blip2dl4j.config;

/**
 * The canonical names of the Querying Transformer's parameters ({@code qformer.*}, transformers'
 * {@code Blip2QFormerModel}), the only place they are spelled, and their shapes for a config. Linear and
 * LayerNorm names are prefixes, to which {@code .weight} and {@code .bias} belong. The learned queries and the
 * retrieval model's text embeddings live on the model, not in {@code qformer}: see {@link Blip2Parameters}.
 */
public final class QFormerParameters {
    private static final String PREFIX = "qformer.";

    private QFormerParameters() {
    }

    /** The LayerNorm of the embeddings (queries and text alike) before the first layer. */
    public static String layerNorm() {
        return PREFIX + "layernorm";
    }

    public static Layer layer(int index) {
        return new Layer(index);
    }

    /** Whether the parameter belongs to the Q-Former. */
    public static boolean contains(String name) {
        return name.startsWith(PREFIX);
    }

    /** {@code Blip2QFormerLayer} number {@code index}. */
    public record Layer(int index) {
        public Attention selfAttention() {
            return new Attention(prefix() + "attention");
        }

        /** Only in layers where {@link QFormerConfig#hasCrossAttention} holds. */
        public Attention crossAttention() {
            return new Attention(prefix() + "crossattention");
        }

        /** The query positions' feed-forward block. */
        public FeedForward queryFeedForward() {
            return new FeedForward(prefix() + "intermediate_query", prefix() + "output_query");
        }

        /** The text positions' feed-forward block; only where {@link QFormerConfig#useQformerTextInput()}. */
        public FeedForward textFeedForward() {
            return new FeedForward(prefix() + "intermediate", prefix() + "output");
        }

        private String prefix() {
            return PREFIX + "encoder.layer." + index + ".";
        }
    }

    /** {@code Blip2QFormerAttention}: query, key and value, then output.dense, the residual and output.LayerNorm. */
    public record Attention(String prefix) {
        public String query() {
            return prefix + ".attention.query";
        }

        public String key() {
            return prefix + ".attention.key";
        }

        public String value() {
            return prefix + ".attention.value";
        }

        public String outputDense() {
            return prefix + ".output.dense";
        }

        public String outputLayerNorm() {
            return prefix + ".output.LayerNorm";
        }
    }

    /** {@code Blip2QFormerIntermediate} (dense, GELU) and {@code Blip2QFormerOutput} (dense, residual, LayerNorm). */
    public record FeedForward(String intermediate, String output) {
        public String intermediateDense() {
            return intermediate + ".dense";
        }

        public String outputDense() {
            return output + ".dense";
        }

        public String outputLayerNorm() {
            return output + ".LayerNorm";
        }
    }

    static void declare(ParameterLayout.Builder b, QFormerConfig q) {
        int h = q.hiddenSize();
        b.layerNorm(layerNorm(), h);
        for (int i = 0; i < q.numHiddenLayers(); i++) {
            Layer l = layer(i);
            attention(b, l.selfAttention(), h, h);
            if (q.hasCrossAttention(i)) {
                attention(b, l.crossAttention(), h, q.encoderHiddenSize());
            }
            if (q.useQformerTextInput()) {
                feedForward(b, l.textFeedForward(), h, q.intermediateSize());
            }
            feedForward(b, l.queryFeedForward(), h, q.intermediateSize());
        }
    }

    private static void attention(ParameterLayout.Builder b, Attention a, int hidden, int keyValueWidth) {
        b.linear(a.query(), hidden, hidden, true);
        b.linear(a.key(), hidden, keyValueWidth, true);
        b.linear(a.value(), hidden, keyValueWidth, true);
        b.linear(a.outputDense(), hidden, hidden, true);
        b.layerNorm(a.outputLayerNorm(), hidden);
    }

    private static void feedForward(ParameterLayout.Builder b, FeedForward f, int hidden, int inner) {
        b.linear(f.intermediateDense(), inner, hidden, true);
        b.linear(f.outputDense(), hidden, inner, true);
        b.layerNorm(f.outputLayerNorm(), hidden);
    }
}
