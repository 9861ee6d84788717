package dev.blip2dl4j.config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every parameter a BLIP-2 model has for a given config: canonical names and shapes in the order of
 * transformers' {@code state_dict()} (which is also the order {@code save_pretrained} shards in), and the
 * tied aliases, names a state dict may also hold that are the same tensor as another parameter
 * ({@code lm_head.weight} of a tied OPT, T5's per-stack {@code embed_tokens}). Converters check an alias
 * equals its target and drop it; graphs bind only the parameters.
 *
 * <p>Shapes follow PyTorch: {@code Linear.weight} is {@code [out, in]}, {@code Embedding.weight} is
 * {@code [rows, width]}, the patch convolution is {@code [out, in, kH, kW]}.
 */
public final class ParameterLayout {
    private final List<ParamSpec> parameters;
    private final Map<String, ParamSpec> byName;
    private final Map<String, String> tiedAliases;

    private ParameterLayout(List<ParamSpec> parameters, Map<String, String> tiedAliases) {
        this.parameters = List.copyOf(parameters);
        Map<String, ParamSpec> index = new LinkedHashMap<>();
        for (ParamSpec p : parameters) {
            if (index.put(p.name(), p) != null) {
                throw new IllegalStateException("parameter listed twice: " + p.name());
            }
        }
        this.byName = Collections.unmodifiableMap(index);
        this.tiedAliases = Collections.unmodifiableMap(new LinkedHashMap<>(tiedAliases));
    }

    public static ParameterLayout of(Blip2Config config) {
        Builder b = new Builder();
        QFormerConfig q = config.qformer();
        // state_dict() lists a module's own parameters before its submodules': query_tokens comes first.
        b.param("query_tokens", 1, config.numQueryTokens(), q.hiddenSize());
        vision(b, config.vision());
        switch (config.kind()) {
            case CONDITIONAL_GENERATION -> {
                qformer(b, q);
                b.linear("language_projection", config.text().hiddenSize(), q.hiddenSize(), true);
                if (config.text() instanceof OptConfig opt) {
                    OptParameters.declare(b, opt);
                } else {
                    T5Parameters.declare(b, (T5Config) config.text());
                }
            }
            case IMAGE_TEXT_RETRIEVAL -> {
                // the Q-Former's text embeddings live on the model, not in qformer (position_ids is a buffer)
                b.param("embeddings.word_embeddings.weight", q.vocabSize(), q.hiddenSize());
                b.param("embeddings.position_embeddings.weight", q.maxPositionEmbeddings(), q.hiddenSize());
                qformer(b, q);
                b.linear("vision_projection", config.imageTextHiddenSize(), q.hiddenSize(), true);
                b.linear("text_projection", config.imageTextHiddenSize(), q.hiddenSize(), true);
                b.linear("itm_head", 2, q.hiddenSize(), true);
            }
        }
        return new ParameterLayout(b.parameters, b.aliases);
    }

    /** The parameters, in state_dict order, without tied aliases. */
    public List<ParamSpec> parameters() {
        return parameters;
    }

    /** Alias name to the canonical parameter name whose tensor it is, in state_dict order. */
    public Map<String, String> tiedAliases() {
        return tiedAliases;
    }

    /** The parameter of that canonical name, or null. */
    public ParamSpec get(String name) {
        return byName.get(name);
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** Number of values over all parameters (aliases not counted again). */
    public long totalValues() {
        long n = 0;
        for (ParamSpec p : parameters) {
            n = Math.addExact(n, p.numel());
        }
        return n;
    }

    private static void vision(Builder b, VisionConfig v) {
        int h = v.hiddenSize();
        String p = "vision_model.";
        b.param(p + "embeddings.class_embedding", 1, 1, h);
        b.param(p + "embeddings.position_embedding", 1, v.numPositions(), h);
        b.param(p + "embeddings.patch_embedding.weight", h, 3, v.patchSize(), v.patchSize());
        b.param(p + "embeddings.patch_embedding.bias", h);
        for (int i = 0; i < v.numHiddenLayers(); i++) {
            String l = p + "encoder.layers." + i + ".";
            // one fused qkv; its bias is cat(q_bias, 0, v_bias), EVA having no key bias
            b.linear(l + "self_attn.qkv", 3 * h, h, v.qkvBias());
            b.linear(l + "self_attn.projection", h, h, true);
            b.layerNorm(l + "layer_norm1", h);
            b.linear(l + "mlp.fc1", v.intermediateSize(), h, true);
            b.linear(l + "mlp.fc2", h, v.intermediateSize(), true);
            b.layerNorm(l + "layer_norm2", h);
        }
        b.layerNorm(p + "post_layernorm", h);
    }

    private static void qformer(Builder b, QFormerConfig q) {
        int h = q.hiddenSize();
        b.layerNorm("qformer.layernorm", h);
        for (int i = 0; i < q.numHiddenLayers(); i++) {
            String l = "qformer.encoder.layer." + i + ".";
            attention(b, l + "attention", h, h);
            if (q.hasCrossAttention(i)) {
                attention(b, l + "crossattention", h, q.encoderHiddenSize());
            }
            if (q.useQformerTextInput()) {
                feedForward(b, l + "intermediate", l + "output", h, q.intermediateSize());
            }
            feedForward(b, l + "intermediate_query", l + "output_query", h, q.intermediateSize());
        }
    }

    private static void attention(Builder b, String prefix, int hidden, int keyValueWidth) {
        b.linear(prefix + ".attention.query", hidden, hidden, true);
        b.linear(prefix + ".attention.key", hidden, keyValueWidth, true);
        b.linear(prefix + ".attention.value", hidden, keyValueWidth, true);
        b.linear(prefix + ".output.dense", hidden, hidden, true);
        b.layerNorm(prefix + ".output.LayerNorm", hidden);
    }

    private static void feedForward(Builder b, String intermediate, String output, int hidden, int inner) {
        b.linear(intermediate + ".dense", inner, hidden, true);
        b.linear(output + ".dense", hidden, inner, true);
        b.layerNorm(output + ".LayerNorm", hidden);
    }

    /** Collects parameters and aliases in the order they are added: each model part declares its own. */
    public static final class Builder {
        private final List<ParamSpec> parameters = new ArrayList<>();
        private final Map<String, String> aliases = new LinkedHashMap<>();

        private Builder() {
        }

        public void param(String name, long... shape) {
            parameters.add(new ParamSpec(name, shape));
        }

        public void linear(String prefix, int out, int in, boolean bias) {
            param(prefix + ".weight", out, in);
            if (bias) {
                param(prefix + ".bias", out);
            }
        }

        public void layerNorm(String prefix, int width) {
            param(prefix + ".weight", width);
            param(prefix + ".bias", width);
        }

        public void alias(String name, String target) {
            aliases.put(name, target);
        }

        public void maybeTied(String name, String target, boolean tied, long... shape) {
            if (tied) {
                alias(name, target);
            } else {
                param(name, shape);
            }
        }
    }
}
