package dev.blip2dl4j.zoo.generate;

import java.io.Serializable;

/**
 * The generation settings a caller gives, each null where the model's own ({@link GenerationConfig} from its
 * generation_config.json) stands: what the command line's options and the Spark stages' parameters hold.
 * Serializable, so that it travels to where the model is (a Spark executor) before it meets the model's settings.
 */
public record GenerationOverrides(Integer maxNewTokens, Integer minNewTokens, Integer numBeams,
                                  Integer numReturnSequences, Double lengthPenalty, String earlyStopping,
                                  Boolean doSample, Double temperature, Integer topK, Double topP, Long seed,
                                  Double repetitionPenalty, Integer noRepeatNgramSize) implements Serializable {
    public static final GenerationOverrides NONE = new GenerationOverrides(null, null, null, null, null, null, null,
            null, null, null, null, null, null);

    /** {@code c} with what was given, checked as a whole (each setting's bounds: {@link GenerationConfig}). */
    public GenerationConfig apply(GenerationConfig c) {
        return new GenerationConfig(maxNewTokens != null ? maxNewTokens : c.maxNewTokens(), c.maxLength(),
                minNewTokens != null ? minNewTokens : c.minNewTokens(), numBeams != null ? numBeams : c.numBeams(),
                lengthPenalty != null ? lengthPenalty : c.lengthPenalty(),
                earlyStopping != null ? earlyStopping : c.earlyStopping(),
                numReturnSequences != null ? numReturnSequences : c.numReturnSequences(),
                doSample != null ? doSample : c.doSample(),
                temperature != null ? temperature : c.temperature(), topK != null ? topK : c.topK(),
                topP != null ? topP : c.topP(), seed != null ? seed : c.seed(),
                repetitionPenalty != null ? repetitionPenalty : c.repetitionPenalty(),
                noRepeatNgramSize != null ? noRepeatNgramSize : c.noRepeatNgramSize(), c.eosTokenIds(), c.padTokenId());
    }
}
