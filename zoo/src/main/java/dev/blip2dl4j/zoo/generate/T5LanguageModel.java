package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.config.T5Parameters;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerT5;
import dev.blip2dl4j.runtime.T5Cache;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Flan-T5 as generation drives it ({@link EagerT5}): the prompt is the encoder's input, and the decoder
 * generates from its start token.
 */
public final class T5LanguageModel implements LanguageModel {
    private final EagerT5 t5;
    private final INDArray embeddings;

    T5LanguageModel(T5Config config, Weights weights) {
        this.t5 = new EagerT5(config, weights);
        this.embeddings = weights.get(T5Parameters.shared());
    }

    @Override
    public boolean decoderOnly() {
        return false;
    }

    @Override
    public long[] decoderPrefix() {
        return new long[]{t5.config().decoderStartTokenId()};
    }

    @Override
    public INDArray tokenEmbeddings() {
        return embeddings;
    }

    @Override
    public Started start(INDArray inputsEmbeds, INDArray attentionMask, int capacity) {
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
}
