package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.config.OptParameters;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.KvCache;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** OPT as generation drives it ({@link EagerOpt}): the prompt goes in as embeddings, left-padded. */
public final class OptLanguageModel implements LanguageModel {
    private final EagerOpt opt;
    private final INDArray embeddings;

    OptLanguageModel(OptConfig config, Weights weights) {
        this.opt = new EagerOpt(config, weights);
        this.embeddings = weights.get(OptParameters.embedTokens());
    }

    @Override
    public boolean decoderOnly() {
        return true;
    }

    @Override
    public long[] decoderPrefix() {
        return new long[0];
    }

    @Override
    public INDArray tokenEmbeddings() {
        return embeddings;
    }

    @Override
    public Started start(INDArray inputsEmbeds, INDArray attentionMask, int capacity) {
        KvCache cache = opt.newCache(capacity);
        INDArray first = opt.prefill(cache, inputsEmbeds, attentionMask, EagerOpt.Logits.LAST);
        return new Started(first.toFloatMatrix(), new Steps(cache, attentionMask.castTo(DataType.FLOAT)));
    }

    /** OPT's steps also extend the attention mask, which selects with the cache's rows. */
    private final class Steps implements Decoder {
        private final KvCache cache;
        private INDArray mask;

        Steps(KvCache cache, INDArray mask) {
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
