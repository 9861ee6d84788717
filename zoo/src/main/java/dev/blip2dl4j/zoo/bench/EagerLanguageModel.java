package dev.blip2dl4j.zoo.bench;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Weights;
import dev.blip2dl4j.graphs.eager.EagerOpt;
import dev.blip2dl4j.graphs.eager.EagerT5;
import dev.blip2dl4j.graphs.eager.KvCache;
import dev.blip2dl4j.graphs.eager.Linear;
import dev.blip2dl4j.graphs.eager.T5Cache;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The benchmark's language model stages, eager, as the peer defines them: the prefill projects the
 * Q-Former output, embeds the prompt, runs the LM over both and returns the last position's logits (for
 * T5: the encoder and the first decoder step); a step runs one token against the cache. One sequence
 * of batch 1 at a time.
 */
final class EagerLanguageModel {
    private final Blip2Config config;
    private final Linear projection;
    private final INDArray tokenEmbeddings;
    private final EagerOpt opt;
    private final EagerT5 t5;
    private final int capacity;
    private KvCache optCache;
    private T5Cache t5Cache;

    /** @param newTokens the steps a sequence will take after its prefill, to size the caches */
    EagerLanguageModel(Blip2Config config, Weights weights, int promptTokens, int newTokens) {
        this.config = config;
        projection = Linear.of(weights, "language_projection");
        if (config.text() instanceof OptConfig o) {
            opt = new EagerOpt(o, weights);
            t5 = null;
            tokenEmbeddings = weights.get("language_model.model.decoder.embed_tokens.weight");
            capacity = config.numQueryTokens() + promptTokens + newTokens;
        } else {
            opt = null;
            t5 = new EagerT5((T5Config) config.text(), weights);
            tokenEmbeddings = weights.get("language_model.shared.weight");
            capacity = newTokens + 1;
        }
    }

    /**
     * Starts a sequence.
     *
     * @param queries  the Q-Former output {@code [1, queries, qformer_hidden]}
     * @param promptIds {@code [promptTokens]}
     * @return the logits to choose the first new token from, {@code [1, vocab]}
     */
    INDArray prefill(INDArray queries, int[] promptIds) {
        int width = config.text().hiddenSize();
        INDArray projected = Nd4j.create(DataType.FLOAT, config.numQueryTokens(), width);
        projection.apply(queries.reshape(config.numQueryTokens(), config.qformer().hiddenSize()), projected);
        INDArray embeds = Nd4j.concat(0, projected, Nd4j.pullRows(tokenEmbeddings, 1, promptIds)).reshape(1, -1, width);
        INDArray mask = Nd4j.ones(DataType.FLOAT, 1, embeds.size(1));
        if (opt != null) {
            optCache = opt.newCache(capacity);
            return opt.prefill(optCache, embeds, mask, EagerOpt.Logits.LAST);
        }
        t5Cache = t5.newCache(capacity);
        return t5.prefill(t5Cache, embeds, mask);
    }

    /** Runs {@code token} after what the sequence holds; returns the next position's logits {@code [1, vocab]}. */
    INDArray step(long token) {
        INDArray ids = Nd4j.createFromArray(token);
        if (opt != null) {
            return opt.step(optCache, ids, Nd4j.ones(DataType.FLOAT, 1, optCache.length() + 1));
        }
        return t5.step(t5Cache, ids);
    }
}
