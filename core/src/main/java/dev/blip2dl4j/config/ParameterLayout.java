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
                    OptParameters.declare(b, opt);
                } else {
                    T5Parameters.declare(b, (T5Config) config.text());
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

    public static final class Builder {
        private final List<ParamSpec> parameters = new ArrayList<>();
        private final Map<String, String> aliases = new LinkedHashMap<>();

        private Builder() {
        }

        public void param(String name, long... shape) {
            parameters.add(new ParamSpec(name, shape));
        }

        public void linear(String prefix, int out, int in, boolean bias) {
            parameters.add(new ParamSpec(prefix + ".weight", new long[]{out, in}, true));
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

        /** An output projection's weight {@code [vocab, width]}: the embedding table when tied, else its own. */
        public void maybeTied(String name, String target, boolean tied, long... shape) {
            if (tied) {
                alias(name, target);
            } else {
                parameters.add(new ParamSpec(name, shape, true));
            }
        }
    }
}
