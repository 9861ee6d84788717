package dev.blip2dl4j.model;

/** What additive attention masks add where attention is not allowed, in both runtimes. */
public final class AttentionMask {
    /**
     * Finite, unlike transformers' {@code finfo.min}, so that a causal and a padding mask can be summed without
     * reaching -inf: a fully masked row (a left-padding query) then stays finite instead of turning into NaN, and
     * NaN values would leak into real rows through {@code 0 * NaN}. exp(-1e9) is 0 in float all the same.
     */
    public static final double MASKED = -1e9;

    private AttentionMask() {
    }
}
