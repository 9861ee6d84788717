package dev.blip2dl4j.cli;

import dev.blip2dl4j.zoo.generate.GenerationConfig;
import dev.blip2dl4j.zoo.generate.GenerationOverrides;
import picocli.CommandLine.Option;

/** transformers' generate() settings; what is not given comes from the model's generation_config.json. */
public final class GenerationOptions {
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

    /** {@code c} with what was given, checked as a whole (each setting's bounds: {@link GenerationConfig}). */
    GenerationConfig apply(GenerationConfig c) {
        return overrides().apply(c);
    }

    /** What was given, each null where the model's own setting stands (blip2 spark hands it to its stages). */
    public GenerationOverrides overrides() {
        return new GenerationOverrides(maxNewTokens, minNewTokens, numBeams, numReturnSequences, lengthPenalty,
                earlyStopping, doSample ? Boolean.TRUE : null, temperature, topK, topP, seed, repetitionPenalty,
                noRepeatNgramSize);
    }
}
