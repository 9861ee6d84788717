package dev.blip2dl4j.zoo.generate;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/**
 * transformers' logits processors, in its order, on one row's scores: repetition penalty, no-repeat
 * n-grams, minimum new tokens; then, when sampling, the temperature, top-k and top-p warpers. Each
 * sees the row's ids so far ({@code history}: what transformers' {@code input_ids} holds during
 * generation, the decoder start for T5, nothing of the prompt for BLIP-2's OPT).
 */
final class LogitsProcessors {
    private final GenerationConfig config;
    /** ids in history that come before the new tokens (T5's decoder start) */
    private final int promptLength;

    LogitsProcessors(GenerationConfig config, int promptLength) {
        this.config = config;
        this.promptLength = promptLength;
    }

    /** Applies the processors (not the warpers) in place. */
    void process(long[] history, float[] scores) {
        if (config.repetitionPenalty() != 1.0) {
            float penalty = (float) config.repetitionPenalty();
            for (long id : new HashSet<>(Arrays.stream(history).boxed().toList())) {
                float s = scores[(int) id];
                scores[(int) id] = s < 0 ? s * penalty : s / penalty;
            }
        }
        if (config.noRepeatNgramSize() > 0) {
            for (int banned : bannedNgramTokens(history, config.noRepeatNgramSize())) {
                scores[banned] = Float.NEGATIVE_INFINITY;
            }
        }
        if (history.length - promptLength < config.minNewTokens()) {
            for (long eos : config.eosTokenIds()) {
                scores[(int) eos] = Float.NEGATIVE_INFINITY;
            }
        }
    }

    /** Temperature, then top-k, then top-p, in place: what sampling draws from. */
    void warp(float[] scores) {
        if (config.temperature() != 1.0) {
            float t = (float) config.temperature();
            for (int i = 0; i < scores.length; i++) {
                scores[i] /= t;
            }
        }
        if (config.topK() > 0 && config.topK() < scores.length) {
            float[] sorted = scores.clone();
            Arrays.sort(sorted);
            float kth = sorted[sorted.length - config.topK()];
            for (int i = 0; i < scores.length; i++) {
                if (scores[i] < kth) {
                    scores[i] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        if (config.topP() < 1.0) {
            topP(scores, config.topP());
        }
    }

    /**
     * Keeps the most likely tokens whose probabilities sum to topP: as transformers, tokens sorted by
     * ascending score are removed while the cumulative probability stays <= 1 - topP; the most likely
     * token always stays.
     */
    private static void topP(float[] scores, double topP) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(scores[a], scores[b]));
        double[] probabilities = softmax(scores);
        double cumulative = 0;
        for (int rank = 0; rank < order.length - 1; rank++) {
            cumulative += probabilities[order[rank]];
            if (cumulative > 1 - topP) {
                break;
            }
            scores[order[rank]] = Float.NEGATIVE_INFINITY;
        }
    }

    static double[] softmax(float[] scores) {
        double max = Double.NEGATIVE_INFINITY;
        for (float s : scores) {
            max = Math.max(max, s);
        }
        double[] p = new double[scores.length];
        double sum = 0;
        for (int i = 0; i < scores.length; i++) {
            p[i] = Math.exp(scores[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    /** Tokens that would complete an n-gram the history already contains. */
    private static Set<Integer> bannedNgramTokens(long[] history, int n) {
        Set<Integer> banned = new HashSet<>();
        if (history.length + 1 < n) {
            return banned;
        }
        int start = history.length - n + 1;
        for (int i = 0; i + n <= history.length; i++) {
            boolean same = true;
            for (int j = 0; j < n - 1; j++) {
                if (history[i + j] != history[start + j]) {
                    same = false;
                    break;
                }
            }
            if (same) {
                banned.add((int) history[i + n - 1]);
            }
        }
        return banned;
    }
}
