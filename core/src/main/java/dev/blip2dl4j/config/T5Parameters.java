package dev.blip2dl4j.config;

/**
 * The canonical names of BLIP-2's Flan-T5 language model (transformers' {@code T5ForConditionalGeneration} under
 * {@code language_model}), the one place they are spelled, and the list of its parameters for
 * {@link ParameterLayout}. A name ending in {@code .weight} is a parameter; the others are prefixes of a Linear, whose
 * {@code .weight} the code binding it appends (T5's Linears have no bias).
 */
public final class T5Parameters {
    private static final String PREFIX = Blip2Parameters.LANGUAGE_MODEL;

    private T5Parameters() {
    }

    /** The token embedding {@code [vocab, d_model]} both stacks read, also the tied lm_head. */
    public static String shared() {
        return PREFIX + "shared.weight";
    }

    /** The lm_head's Linear; its weight is stored only when the config unties it from {@link #shared}. */
    public static String lmHead() {
        return PREFIX + "lm_head";
    }

    public static Stack encoder() {
        return new Stack(PREFIX + "encoder.", false);
    }

    public static Stack decoder() {
        return new Stack(PREFIX + "decoder.", true);
    }

    /** The encoder or the decoder: blocks and a final RMSNorm. */
    public record Stack(String prefix, boolean isDecoder) {
        /** A tied alias of {@link #shared}: T5 hands each stack the shared table. */
        public String embedTokens() {
            return prefix + "embed_tokens.weight";
        }

        public Block block(int index) {
            return new Block(prefix + "block." + index + ".layer.", isDecoder);
        }

        /** The relative position bias table {@code [buckets, heads]}, owned by the first block's self-attention. */
        public String relativeAttentionBias() {
            return block(0).selfAttention().relativeAttentionBias();
        }

        public String finalLayerNorm() {
            return prefix + "final_layer_norm.weight";
        }
    }

    /**
     * One block's sublayers {@code layer.0, layer.1[, layer.2]}, each behind its RMSNorm: self-attention,
     * cross-attention (decoder only), the feed-forward.
     */
    public record Block(String prefix, boolean isDecoder) {
        public Attention selfAttention() {
            return new Attention(prefix + "0.SelfAttention");
        }

        public String selfAttentionNorm() {
            return norm(0);
        }

        /** The decoder's attention to the encoder output. */
        public Attention crossAttention() {
            return new Attention(prefix + "1.EncDecAttention");
        }

        public String crossAttentionNorm() {
            return norm(1);
        }

        public FeedForward feedForward() {
            return new FeedForward(prefix + feedForwardIndex() + ".DenseReluDense");
        }

        public String feedForwardNorm() {
            return norm(feedForwardIndex());
        }

        private int feedForwardIndex() {
            return isDecoder ? 2 : 1;
        }

        private String norm(int sublayer) {
            return prefix + sublayer + ".layer_norm.weight";
        }
    }

    /** An attention's four Linears. */
    public record Attention(String prefix) {
        public String q() {
            return prefix + ".q";
        }

        public String k() {
            return prefix + ".k";
        }

        public String v() {
            return prefix + ".v";
        }

        public String o() {
            return prefix + ".o";
        }

        /** Present in the first block's self-attention of each stack only. */
        public String relativeAttentionBias() {
            return prefix + ".relative_attention_bias.weight";
        }
    }

    /** {@code wo(act(wi_0 x) * wi_1 x)} when gated, else {@code wo(act(wi x))}. */
    public record FeedForward(String prefix) {
        public String wi() {
            return prefix + ".wi";
        }

        public String wi0() {
            return prefix + ".wi_0";
        }

        public String wi1() {
            return prefix + ".wi_1";
        }

        public String wo() {
            return prefix + ".wo";
        }
    }

    /** Both stacks and the lm_head, in state_dict order. */
    static void declare(ParameterLayout.Builder b, T5Config c) {
        b.param(shared(), c.vocabSize(), c.dModel());
        stack(b, c, encoder(), c.numLayers());
        stack(b, c, decoder(), c.numDecoderLayers());
        b.maybeTied(lmHead() + ".weight", shared(), c.tieWordEmbeddings(), c.vocabSize(), c.dModel());
    }

    private static void stack(ParameterLayout.Builder b, T5Config c, Stack stack, int layers) {
        // both stacks embed with the shared table (T5 passes it to each; BLIP-2 re-ties them)
        b.alias(stack.embedTokens(), shared());
        for (int i = 0; i < layers; i++) {
            Block block = stack.block(i);
            // only the first block of a stack owns the bucket table; the others reuse its output
            attention(b, c, block.selfAttention(), i == 0);
            b.param(block.selfAttentionNorm(), c.dModel());
            if (stack.isDecoder()) {
                attention(b, c, block.crossAttention(), false);
                b.param(block.crossAttentionNorm(), c.dModel());
            }
            FeedForward ff = block.feedForward();
            if (c.isGatedAct()) {
                b.linear(ff.wi0(), c.dFf(), c.dModel(), false);
                b.linear(ff.wi1(), c.dFf(), c.dModel(), false);
            } else {
                b.linear(ff.wi(), c.dFf(), c.dModel(), false);
            }
            b.linear(ff.wo(), c.dModel(), c.dFf(), false);
            b.param(block.feedForwardNorm(), c.dModel());
        }
        b.param(stack.finalLayerNorm(), c.dModel());
    }

    private static void attention(ParameterLayout.Builder b, T5Config c, Attention attention, boolean relativeBias) {
        b.linear(attention.q(), c.innerDim(), c.dModel(), false);
        b.linear(attention.k(), c.innerDim(), c.dModel(), false);
        b.linear(attention.v(), c.innerDim(), c.dModel(), false);
        b.linear(attention.o(), c.dModel(), c.innerDim(), false);
        if (relativeBias) {
            b.param(attention.relativeAttentionBias(), c.relativeAttentionNumBuckets(), c.numHeads());
        }
    }
}
