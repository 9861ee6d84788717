package dev.blip2dl4j.zoo.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * How to generate, with the names and defaults of transformers' {@code GenerationConfig}: read from a
 * model's {@code generation_config.json}, then changed by the caller.
 *
 * @param maxNewTokens       tokens to generate at most (null: transformers' max_length rule, see {@link #newTokens})
 * @param maxLength          transformers' {@code max_length} (default 20), used when maxNewTokens is null
 * @param minNewTokens       end-of-sequence is forbidden before this many new tokens
 * @param numBeams           1 = greedy or sampling; more = beam search
 * @param lengthPenalty      beam scores are divided by length^lengthPenalty
 * @param earlyStopping      "true", "false" or "never", as transformers
 * @param numReturnSequences sequences per input (beams kept, or samples drawn)
 * @param doSample           sample instead of taking the most likely token
 * @param temperature        sampling: logits are divided by it
 * @param topK               sampling: keep the k most likely tokens (0 = all)
 * @param topP               sampling: keep the smallest set whose probability reaches p
 * @param seed               sampling: the random seed (ours: the same seed gives the same text here, not
 *                           the same as torch's generator)
 * @param repetitionPenalty  > 1 makes tokens already generated less likely
 * @param noRepeatNgramSize  forbid repeating any n-gram of this size (0 = off)
 * @param eosTokenIds        tokens that end a sequence
 * @param padTokenId         the token finished sequences continue with
 */
public record GenerationConfig(Integer maxNewTokens, int maxLength, int minNewTokens, int numBeams, double lengthPenalty,
                               String earlyStopping, int numReturnSequences, boolean doSample, double temperature,
                               int topK, double topP, long seed, double repetitionPenalty, int noRepeatNgramSize,
                               List<Long> eosTokenIds, Long padTokenId) {
    /**
     * The most tokens one generation makes: more than any BLIP-2 language model has positions for (OPT 2048,
     * Flan-T5 trained on 512), so that a typo cannot ask for a cache of a billion positions.
     */
    public static final int MAX_TOKENS = 4096;
    /**
     * The most beams, or sequences returned: BLIP-2's recipes use up to 5, and every one multiplies the
     * key/value cache (5000 beams exhausted the memory after minutes).
     */
    public static final int MAX_BEAMS = 64;

    public GenerationConfig {
        eosTokenIds = List.copyOf(eosTokenIds);
        if (maxNewTokens != null) {
            within("max_new_tokens (--max-new-tokens)", maxNewTokens, 1, MAX_TOKENS);
        }
        within("max_length", maxLength, 1, MAX_TOKENS);
        within("min_new_tokens (--min-new-tokens)", minNewTokens, 0, maxNewTokens != null ? maxNewTokens : MAX_TOKENS);
        within("num_beams (--num-beams)", numBeams, 1, MAX_BEAMS);
        within("num_return_sequences (--num-return-sequences)", numReturnSequences, 1, doSample ? MAX_BEAMS : numBeams);
        within("top_k (--top-k)", topK, 0, Integer.MAX_VALUE);
        within("no_repeat_ngram_size (--no-repeat-ngram-size)", noRepeatNgramSize, 0, MAX_TOKENS);
        if (doSample && numBeams > 1) {
            throw new BadInputException("beam sampling (do_sample with num_beams > 1) is not supported");
        }
        positive("temperature (--temperature)", temperature);
        positive("repetition_penalty (--repetition-penalty)", repetitionPenalty);
        if (!(topP > 0 && topP <= 1)) {
            throw new BadInputException("top_p (--top-p) must be in (0, 1], not " + topP);
        }
        if (!Double.isFinite(lengthPenalty)) {
            throw new BadInputException("length_penalty (--length-penalty) must be a finite number, not " + lengthPenalty);
        }
        if (!List.of("true", "false", "never").contains(earlyStopping)) {
            throw new BadInputException("early_stopping must be true, false or never, not " + earlyStopping);
        }
    }

    private static void within(String name, int value, int min, int max) {
        if (value < min || value > max) {
            throw new BadInputException(name + " must be from " + min + " to " + max + ", not " + value);
        }
    }

    private static void positive(String name, double value) {
        if (!(value > 0 && Double.isFinite(value))) {
            throw new BadInputException(name + " must be a finite number above 0, not " + value);
        }
    }

    /** transformers' defaults, with the model's end-of-sequence and padding tokens. */
    public static GenerationConfig defaults(List<Long> eosTokenIds, Long padTokenId) {
        return new GenerationConfig(null, 20, 0, 1, 1.0, "false", 1, false, 1.0, 50, 1.0, 0, 1.0, 0,
                eosTokenIds, padTokenId);
    }

    /** A generation_config.json over {@code base} (its eos/pad come from the model config). */
    public static GenerationConfig parse(String json, GenerationConfig base) {
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(json);
        } catch (IOException e) {
            throw new BadInputException("generation_config.json is not valid JSON: " + e.getMessage());
        }
        List<Long> eos = base.eosTokenIds();
        JsonNode eosNode = n.get("eos_token_id");
        if (eosNode != null && eosNode.isArray()) {
            eos = new ArrayList<>();
            for (JsonNode id : eosNode) {
                eos.add(id.asLong());
            }
        } else if (eosNode != null && eosNode.canConvertToLong()) {
            eos = List.of(eosNode.asLong());
        }
        try {
            return new GenerationConfig(
                    n.hasNonNull("max_new_tokens") ? Integer.valueOf(n.get("max_new_tokens").asInt()) : base.maxNewTokens(),
                    n.path("max_length").asInt(base.maxLength()),
                    n.path("min_new_tokens").asInt(base.minNewTokens()),
                    n.path("num_beams").asInt(base.numBeams()),
                    n.path("length_penalty").asDouble(base.lengthPenalty()),
                    n.has("early_stopping") ? n.get("early_stopping").asText() : base.earlyStopping(),
                    n.path("num_return_sequences").asInt(base.numReturnSequences()),
                    n.path("do_sample").asBoolean(base.doSample()),
                    n.path("temperature").asDouble(base.temperature()),
                    n.path("top_k").asInt(base.topK()),
                    n.path("top_p").asDouble(base.topP()),
                    base.seed(),
                    n.path("repetition_penalty").asDouble(base.repetitionPenalty()),
                    n.path("no_repeat_ngram_size").asInt(base.noRepeatNgramSize()),
                    eos,
                    n.hasNonNull("pad_token_id") ? Long.valueOf(n.get("pad_token_id").asLong()) : base.padTokenId());
        } catch (BadInputException e) {
            throw new BadInputException("generation_config.json: " + e.getMessage());
        }
    }

    /**
     * New tokens to generate for a prompt: maxNewTokens if set, else transformers' rule for BLIP-2, which
     * counts max_length in text tokens: for a decoder-only model max_length - promptTokens - 1 (the BOS
     * it prepends counts), for an encoder-decoder max_length - 1 (the decoder start counts).
     */
    public int newTokens(int promptTokens, boolean decoderOnly) {
        if (maxNewTokens != null) {
            return maxNewTokens;
        }
        return Math.max(0, decoderOnly ? maxLength - 1 - promptTokens : maxLength - 1);
    }

    public GenerationConfig withMaxNewTokens(Integer n) {
        return new GenerationConfig(n, maxLength, minNewTokens, numBeams, lengthPenalty, earlyStopping,
                numReturnSequences, doSample, temperature, topK, topP, seed, repetitionPenalty, noRepeatNgramSize,
                eosTokenIds, padTokenId);
    }

    public GenerationConfig withBeams(int beams, int returnSequences) {
        return new GenerationConfig(maxNewTokens, maxLength, minNewTokens, beams, lengthPenalty, earlyStopping,
                returnSequences, doSample, temperature, topK, topP, seed, repetitionPenalty, noRepeatNgramSize,
                eosTokenIds, padTokenId);
    }

    public GenerationConfig withSampling(boolean sample, double temp, int k, double p, long randomSeed) {
        return new GenerationConfig(maxNewTokens, maxLength, minNewTokens, numBeams, lengthPenalty, earlyStopping,
                numReturnSequences, sample, temp, k, p, randomSeed, repetitionPenalty, noRepeatNgramSize,
                eosTokenIds, padTokenId);
    }

    public GenerationConfig withEosTokenIds(List<Long> ids) {
        return new GenerationConfig(maxNewTokens, maxLength, minNewTokens, numBeams, lengthPenalty, earlyStopping,
                numReturnSequences, doSample, temperature, topK, topP, seed, repetitionPenalty, noRepeatNgramSize, ids,
                padTokenId);
    }

    public GenerationConfig withPenalties(double repetition, int noRepeatNgram, int minNew, double length, String early) {
        return new GenerationConfig(maxNewTokens, maxLength, minNew, numBeams, length, early, numReturnSequences,
                doSample, temperature, topK, topP, seed, repetition, noRepeatNgram, eosTokenIds, padTokenId);
    }
}
