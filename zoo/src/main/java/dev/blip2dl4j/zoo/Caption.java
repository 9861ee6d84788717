package dev.blip2dl4j.zoo;

import java.util.List;

/**
 * Text generated for one image (a caption, or an answer).
 *
 * @param sequences the generated sequences, best first (more than one with num_return_sequences)
 * @param timings   where the time went
 */
public record Caption(List<Sequence> sequences, Timings timings) {

    /**
     * @param text     decoded, special tokens skipped, trimmed (as transformers' batch_decode(...).strip())
     * @param ids      the ids as transformers' generate returns them (OPT: BOS then the new tokens; T5: the
     *                 decoder start then the new tokens)
     * @param score    beam search: the sequence score; otherwise the sum of the chosen tokens' log-probabilities
     * @param topIds   greedy or sampling, when asked for: per step, the ids of the k highest processed scores
     *                 (transformers' output_scores); otherwise empty
     * @param topScores the matching scores
     */
    public record Sequence(String text, long[] ids, double score, long[][] topIds, float[][] topScores) {
    }

    /** Milliseconds spent per stage, for this image's batch, and the most tokens a sequence of it generated. */
    public record Timings(long preprocessMs, long imageMs, long generateMs, int newTokens) {
    }

    /** The best sequence's text. */
    public String text() {
        return sequences.get(0).text();
    }
}
