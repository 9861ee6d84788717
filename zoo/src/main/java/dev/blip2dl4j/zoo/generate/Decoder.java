package dev.blip2dl4j.zoo.generate;

/**
 * A batch of sequences being continued by a language model with a key/value cache, one row per
 * sequence (beam search's beams are rows too). The prompt has already been run: the generator starts
 * from the logits that run produced.
 */
public interface Decoder {

    /** Feeds one token per row; returns the next position's logits {@code [rows][vocab]}. */
    float[][] step(long[] tokens);

    /** Keeps rows {@code rows}, in that order, repeats allowed: beam search's reordering. */
    void select(int[] rows);
}
