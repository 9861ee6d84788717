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
        b.param(Blip2Parameters.queryTokens(), 1, config.numQueryTokens(), q.hiddenSize());
        VisionParameters.declare(b, config.vision());
        switch (config.kind()) {
            case CONDITIONAL_GENERATION -> {
                QFormerParameters.declare(b, q);
                b.linear(Blip2Parameters.languageProjection(), config.text().hiddenSize(), q.hiddenSize(), true);
                if (config.text() instanceof OptConfig opt) {
                    opt(b, opt);
                } else {
                    t5(b, (T5Config) config.text());
                }
            }
            case IMAGE_TEXT_RETRIEVAL -> {
                // the Q-Former's text embeddings live on the model, not in qformer (position_ids is a buffer)
                b.param(Blip2Parameters.textWordEmbeddings(), q.vocabSize(), q.hiddenSize());
                b.param(Blip2Parameters.textPositionEmbeddings(), q.maxPositionEmbeddings(), q.hiddenSize());
                QFormerParameters.declare(b, q);
                b.linear(Blip2Parameters.visionProjection(), config.imageTextHiddenSize(), q.hiddenSize(), true);
                b.linear(Blip2Parameters.textProjection(), config.imageTextHiddenSize(), q.hiddenSize(), true);
                b.linear(Blip2Parameters.itmHead(), 2, q.hiddenSize(), true);
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

    private static void opt(Builder b, OptConfig c) {
        String p = "language_model.model.decoder.";
        int h = c.hiddenSize();
        boolean bias = c.enableBias();
        b.param(p + "embed_tokens.weight", c.vocabSize(), c.wordEmbedProjDim());
        b.param(p + "embed_positions.weight", c.maxPositionEmbeddings() + OptConfig.POSITION_OFFSET, h);
        if (c.hasEmbeddingProjections()) {
            b.linear(p + "project_out", c.wordEmbedProjDim(), h, false);
            b.linear(p + "project_in", h, c.wordEmbedProjDim(), false);
        }
        if (c.hasFinalLayerNorm()) {
            b.optLayerNorm(p + "final_layer_norm", h, c);
        }
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String l = p + "layers." + i + ".";
            for (String proj : List.of("k_proj", "v_proj", "q_proj", "out_proj")) {
                b.linear(l + "self_attn." + proj, h, h, bias);
            }
            b.optLayerNorm(l + "self_attn_layer_norm", h, c);
            b.linear(l + "fc1", c.ffnDim(), h, bias);
            b.linear(l + "fc2", h, c.ffnDim(), bias);
            b.optLayerNorm(l + "final_layer_norm", h, c);
        }
        b.maybeTied("language_model.lm_head.weight", p + "embed_tokens.weight", c.tieWordEmbeddings(),
                c.vocabSize(), c.wordEmbedProjDim());
    }

    private static void t5(Builder b, T5Config c) {
        String shared = "language_model.shared.weight";
        b.param(shared, c.vocabSize(), c.dModel());
        t5Stack(b, c, "encoder", c.numLayers(), shared);
        t5Stack(b, c, "decoder", c.numDecoderLayers(), shared);
        b.maybeTied("language_model.lm_head.weight", shared, c.tieWordEmbeddings(), c.vocabSize(), c.dModel());
    }

    private static void t5Stack(Builder b, T5Config c, String stack, int layers, String shared) {
        String p = "language_model." + stack + ".";
        // both stacks embed with the shared table (T5 passes it to each; BLIP-2 re-ties them)
        b.alias(p + "embed_tokens.weight", shared);
        boolean decoder = stack.equals("decoder");
        for (int i = 0; i < layers; i++) {
            String l = p + "block." + i + ".layer.";
            int sub = 0;
            t5Attention(b, c, l + sub + ".SelfAttention", i == 0);
            b.param(l + sub++ + ".layer_norm.weight", c.dModel());
            if (decoder) {
                t5Attention(b, c, l + sub + ".EncDecAttention", false);
                b.param(l + sub++ + ".layer_norm.weight", c.dModel());
            }
            String ff = l + sub + ".DenseReluDense.";
            if (c.isGatedAct()) {
                b.linear(ff + "wi_0", c.dFf(), c.dModel(), false);
                b.linear(ff + "wi_1", c.dFf(), c.dModel(), false);
            } else {
                b.linear(ff + "wi", c.dFf(), c.dModel(), false);
            }
            b.linear(ff + "wo", c.dModel(), c.dFf(), false);
            b.param(l + sub + ".layer_norm.weight", c.dModel());
        }
        b.param(p + "final_layer_norm.weight", c.dModel());
    }

    private static void t5Attention(Builder b, T5Config c, String prefix, boolean relativeBias) {
        for (String proj : List.of("q", "k", "v")) {
            b.linear(prefix + "." + proj, c.innerDim(), c.dModel(), false);
        }
        b.linear(prefix + ".o", c.dModel(), c.innerDim(), false);
        if (relativeBias) {
            // only the first block of a stack owns the bucket table; the others reuse its output
            b.param(prefix + ".relative_attention_bias.weight", c.relativeAttentionNumBuckets(), c.numHeads());
        }
    }

    /** Collects parameters and aliases in the order they are added. */
    public static final class Builder {
        final List<ParamSpec> parameters = new ArrayList<>();
        final Map<String, String> aliases = new LinkedHashMap<>();

        void param(String name, long... shape) {
            parameters.add(new ParamSpec(name, shape));
        }

        void linear(String prefix, int out, int in, boolean bias) {
            param(prefix + ".weight", out, in);
            if (bias) {
                param(prefix + ".bias", out);
            }
        }

        void layerNorm(String prefix, int width) {
            param(prefix + ".weight", width);
            param(prefix + ".bias", width);
        }

        /** OPT can switch the LayerNorm affine parameters off altogether. */
        void optLayerNorm(String prefix, int width, OptConfig c) {
            if (c.layerNormElementwiseAffine()) {
                layerNorm(prefix, width);
            }
        }

        void alias(String name, String target) {
            aliases.put(name, target);
        }

        void maybeTied(String name, String target, boolean tied, long... shape) {
            if (tied) {
                alias(name, target);
            } else {
                param(name, shape);
            }
        }
    }
}
