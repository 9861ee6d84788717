package dev.blip2dl4j.zoo.generate;

import java.util.List;

/**
 * What generation produced, per returned sequence (input i's sequences are rows
 * i*numReturnSequences ...).
 *
 * @param sequences   the tokens: the decoder-side prefix (T5's decoder start; nothing for OPT) and the
 *                    new tokens, finished sequences padded to the longest
 * @param scores      beam search: each sequence's score (sum of log-probabilities / length^penalty);
 *                    greedy and sampling: the sum of log-probabilities of the chosen tokens
 * @param topTokens   per step, per row, the top-k token ids of the processed scores (greedy only; for
 *                    checking against transformers' output_scores), or empty
 * @param topScores   the matching scores
 */
public record Generation(long[][] sequences, double[] scores, List<long[][]> topTokens, List<float[][]> topScores) {
}
