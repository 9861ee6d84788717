package dev.blip2dl4j.cli;

import dev.blip2dl4j.zoo.generate.GenerationConfig;
import picocli.CommandLine.Option;

/** transformers' generate() settings; what is not given comes from the model's generation_config.json. */
final class GenerationOptions {
    @Option(names = "--max-new-tokens", paramLabel = "N", description = "Tokens to generate at most.")
    Integer maxNewTokens;

    @Option(names = "--min-new-tokens", paramLabel = "N", description = "No end-of-sequence before N new tokens.")
    Integer minNewTokens;

    @Option(names = "--num-beams", paramLabel = "N", description = "Beam search with N beams (1: greedy or sampling).")
    Integer numBeams;

    @Option(names = "--num-return-sequences", paramLabel = "N", description = "Sequences per image (beams kept, or samples).")
    Integer numReturnSequences;

    @Option(names = "--length-penalty", paramLabel = "X", description = "Beam scores divided by length^X.")
    Double lengthPenalty;

    @Option(names = "--early-stopping", paramLabel = "true|false|never", description = "When beam search stops.")
    String earlyStopping;

    @Option(names = "--do-sample", description = "Sample instead of taking the most likely token.")
    boolean doSample;

    @Option(names = "--temperature", paramLabel = "T", description = "Sampling temperature.")
    Double temperature;

    @Option(names = "--top-k", paramLabel = "K", description = "Sample from the K most likely tokens (0: all).")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "Sample from the most likely tokens up to probability P.")
    Double topP;

    @Option(names = "--seed", paramLabel = "N", description = "Seed for sampling.")
    Long seed;

    @Option(names = "--repetition-penalty", paramLabel = "X", description = "Above 1: tokens already generated are less likely.")
    Double repetitionPenalty;

    @Option(names = "--no-repeat-ngram-size", paramLabel = "N", description = "Never repeat an n-gram of this size.")
    Integer noRepeatNgramSize;

    GenerationConfig apply(GenerationConfig base) {
        GenerationConfig c = base;
        if (maxNewTokens != null) {
            c = c.withMaxNewTokens(maxNewTokens);
        }
        int beams = numBeams != null ? numBeams : c.numBeams();
        int returned = numReturnSequences != null ? numReturnSequences : c.numReturnSequences();
        c = c.withBeams(beams, returned);
        c = c.withSampling(doSample || c.doSample(), temperature != null ? temperature : c.temperature(),
                topK != null ? topK : c.topK(), topP != null ? topP : c.topP(), seed != null ? seed : c.seed());
        return c.withPenalties(repetitionPenalty != null ? repetitionPenalty : c.repetitionPenalty(),
                noRepeatNgramSize != null ? noRepeatNgramSize : c.noRepeatNgramSize(),
                minNewTokens != null ? minNewTokens : c.minNewTokens(),
                lengthPenalty != null ? lengthPenalty : c.lengthPenalty(),
                earlyStopping != null ? earlyStopping : c.earlyStopping());
    }
}
