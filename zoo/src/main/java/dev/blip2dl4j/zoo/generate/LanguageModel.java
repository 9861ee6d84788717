package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.OptParameters;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.config.T5Parameters;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.EagerT5;
import dev.blip2dl4j.runtime.KvCache;
import dev.blip2dl4j.runtime.PromptInputs;
import dev.blip2dl4j.runtime.T5Cache;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * BLIP-2's language model as generation drives it: the prompt (projected queries, then the prompt's
 * token embeddings) runs once, then one token per step against a key/value cache. OPT or Flan-T5, on
 * the eager execution of the graphs' definition.
 */
public final class LanguageModel {
    private final EagerOpt opt;
    private final EagerT5 t5;
    private final INDArray embeddings;

    private LanguageModel(EagerOpt opt, EagerT5 t5, INDArray embeddings) {
        this.opt = opt;
        this.t5 = t5;
        this.embeddings = embeddings;
    }

    public static LanguageModel of(Blip2Config config, Weights weights) {
        if (config.text() instanceof OptConfig c) {
            return new LanguageModel(new EagerOpt(c, weights), null,
                    weights.get(OptParameters.embedTokens()));
        }
        return new LanguageModel(null, new EagerT5((T5Config) config.text(), weights),
                weights.get(T5Parameters.shared()));
    }

    public boolean decoderOnly() {
        return opt != null;
    }

    /** transformers' input_ids when generation starts: empty for OPT (the prompt goes in as embeddings), T5's decoder start. */
    public long[] decoderPrefix() {
        return opt != null ? new long[0] : new long[]{t5.config().decoderStartTokenId()};
    }

    /** The prompt's input: the projected queries {@code [batch, queries, width]}, then the embeddings of {@code ids}. */
    public INDArray inputsEmbeds(INDArray projected, long[][] ids) {
        return PromptInputs.embeddings(projected, embeddings, ids);
    }

    /** A started generation: the logits after the prompt, and the decoder that continues it. */
    public record Started(float[][] logits, Decoder decoder) {
    }

    /**
     * Runs the prompt.
     *
     * @param inputsEmbeds  {@code [batch, seq, width]}
     * @param attentionMask {@code [batch, seq]}: 1 = token, 0 = padding (left padding for OPT)
     * @param capacity      positions to reserve in the cache (prompt + new tokens)
     */
    public Started start(INDArray inputsEmbeds, INDArray attentionMask, int capacity) {
        if (opt != null) {
            KvCache cache = opt.newCache(capacity);
            INDArray first = opt.prefill(cache, inputsEmbeds, attentionMask, EagerOpt.Logits.LAST);
            return new Started(first.toFloatMatrix(), new OptDecoder(cache, attentionMask.castTo(DataType.FLOAT)));
        }
        T5Cache cache = t5.newCache(capacity);
        INDArray first = t5.prefill(cache, inputsEmbeds, attentionMask);
        return new Started(first.toFloatMatrix(), new Decoder() {
            @Override
            public float[][] step(long[] tokens) {
                return t5.step(cache, Nd4j.createFromArray(tokens)).toFloatMatrix();
            }

            @Override
            public void select(int[] rows) {
                cache.select(rows);
            }
        });
    }

    /** OPT's steps also extend the attention mask, which selects with the cache's rows. */
    private final class OptDecoder implements Decoder {
        private final KvCache cache;
        private INDArray mask;

        OptDecoder(KvCache cache, INDArray mask) {
            this.cache = cache;
            this.mask = mask;
        }

        @Override
        public float[][] step(long[] tokens) {
            mask = Nd4j.concat(1, mask, Nd4j.ones(DataType.FLOAT, mask.size(0), 1));
            return opt.step(cache, Nd4j.createFromArray(tokens), mask).toFloatMatrix();
        }

        @Override
        public void select(int[] rows) {
            cache.select(rows);
            mask = Nd4j.pullRows(mask, 1, rows);
        }
    }
}
