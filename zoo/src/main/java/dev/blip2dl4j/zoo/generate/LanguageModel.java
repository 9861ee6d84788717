package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.PromptInputs;
import org.nd4j.linalg.api.ndarray.INDArray;


/**
 * BLIP-2's language model as generation drives it: the prompt (projected queries, then the prompt's
 * token embeddings) runs once, then one token per step against a key/value cache. OPT
 * ({@link OptLanguageModel}) or Flan-T5 ({@link T5LanguageModel}), on the eager execution of the graphs'
 * definition.
 */
public interface LanguageModel {

    /** The model's language model, by the family its config names. */
    static LanguageModel of(Blip2Config config, Weights weights) {
        if (config.text() instanceof OptConfig c) {
            return new OptLanguageModel(c, weights);
        }
        return new T5LanguageModel((T5Config) config.text(), weights);
    }

    boolean decoderOnly();

    /** transformers' input_ids when generation starts: empty for OPT (the prompt goes in as embeddings), T5's decoder start. */
    long[] decoderPrefix();

    /** The input token embedding table, {@code [vocab, width]}. */
    INDArray tokenEmbeddings();

    /** The prompt's input: the projected queries {@code [batch, queries, width]}, then the embeddings of {@code ids}. */
    default INDArray inputsEmbeds(INDArray projected, long[][] ids) {
        return PromptInputs.embeddings(projected, tokenEmbeddings(), ids);
    }

    /** A started generation: the logits after the prompt, and the decoder that continues it. */
    record Started(float[][] logits, Decoder decoder) {
    }

    /**
     * Runs the prompt.
     *
     * @param inputsEmbeds  {@code [batch, seq, width]}
     * @param attentionMask {@code [batch, seq]}: 1 = token, 0 = padding (left padding for OPT)
     * @param capacity      positions to reserve in the cache (prompt + new tokens)
     */
    Started start(INDArray inputsEmbeds, INDArray attentionMask, int capacity);
}
