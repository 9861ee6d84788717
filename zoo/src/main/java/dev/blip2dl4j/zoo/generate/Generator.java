package dev.blip2dl4j.zoo.generate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Greedy search, sampling and beam search as transformers 4.45's {@code generate} does them, over a
 * {@link Decoder} whose prompt has been run. Greedy and beam search give transformers' ids exactly
 * (same logits, same ties broken the same way); sampling draws from the same distribution with our own
 * seeded generator.
 */
public final class Generator {
    private final GenerationConfig config;
    private final int topK;

    /** @param topK record the top-k of every step's processed scores (greedy; 0 = none) */
    public Generator(GenerationConfig config, int topK) {
        this.config = config;
        this.topK = topK;
    }

    /**
     * @param first    the logits after the prompt, {@code [inputs][vocab]}
     * @param decoder  continues those rows
     * @param prefix   the decoder-side ids already there (transformers' input_ids: T5's decoder start;
     *                 empty for BLIP-2's OPT, whose prompt goes in as embeddings)
     * @param newTokens tokens to generate at most
     */
    public Generation generate(float[][] first, Decoder decoder, long[] prefix, int newTokens) {
        return config.numBeams() > 1 ? beamSearch(first, decoder, prefix, newTokens) : sample(first, decoder, prefix, newTokens);
    }

    /** Greedy (argmax) or sampling; numReturnSequences samples per input. */
    private Generation sample(float[][] first, Decoder decoder, long[] prefix, int newTokens) {
        int copies = config.doSample() ? config.numReturnSequences() : 1;
        float[][] logits = first;
        if (copies > 1) {
            int[] rows = new int[first.length * copies];
            for (int i = 0; i < rows.length; i++) {
                rows[i] = i / copies;
            }
            decoder.select(rows);
            logits = new float[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                logits[i] = first[rows[i]].clone();
            }
        }
        int rows = logits.length;
        LogitsProcessors processors = new LogitsProcessors(config, prefix.length);
        SplittableRandom random = new SplittableRandom(config.seed());
        List<long[]> histories = new ArrayList<>();
        for (int r = 0; r < rows; r++) {
            histories.add(prefix.clone());
        }
        boolean[] finished = new boolean[rows];
        double[] logprobs = new double[rows];
        List<long[][]> topTokens = new ArrayList<>();
        List<float[][]> topScores = new ArrayList<>();
        for (int step = 0; step < newTokens; step++) {
            long[] next = new long[rows];
            long[][] stepTop = new long[rows][];
            float[][] stepTopScores = new float[rows][];
            for (int r = 0; r < rows; r++) {
                float[] scores = logits[r].clone();
                processors.process(histories.get(r), scores);
                if (topK > 0) {
                    int[] top = topIndices(scores, topK);
                    stepTop[r] = Arrays.stream(top).asLongStream().toArray();
                    stepTopScores[r] = new float[top.length];
                    for (int i = 0; i < top.length; i++) {
                        stepTopScores[r][i] = scores[top[i]];
                    }
                }
                int token;
                if (config.doSample()) {
                    processors.warp(scores);
                    token = draw(LogitsProcessors.softmax(scores), random);
                } else {
                    token = argmax(scores);
                }
                double[] p = LogitsProcessors.softmax(logits[r]);
                if (finished[r]) {
                    next[r] = padToken();
                } else {
                    next[r] = token;
                    logprobs[r] += Math.log(p[token]);
                }
                histories.set(r, append(histories.get(r), next[r]));
                finished[r] |= config.eosTokenIds().contains(next[r]);
            }
            if (topK > 0) {
                topTokens.add(stepTop);
                topScores.add(stepTopScores);
            }
            if (allTrue(finished) || step == newTokens - 1) {
                break;
            }
            logits = decoder.step(next);
        }
        return new Generation(histories.toArray(long[][]::new), logprobs, topTokens, topScores);
    }

    /** transformers' beam search (BeamSearchScorer), with numBeams beams per input. */
    private Generation beamSearch(float[][] first, Decoder decoder, long[] prefix, int newTokens) {
        int beams = config.numBeams();
        int inputs = first.length;
        int promptLength = prefix.length;
        int maxLength = promptLength + newTokens;
        // every beam starts from the prompt; only the first counts at first (the others score -1e9)
        int[] expand = new int[inputs * beams];
        for (int i = 0; i < expand.length; i++) {
            expand[i] = i / beams;
        }
        decoder.select(expand);
        float[][] logits = new float[expand.length][];
        long[][] sequences = new long[expand.length][];
        // float32 throughout, as transformers' tensors: the ids must match to the last tie
        float[] beamScores = new float[expand.length];
        for (int i = 0; i < expand.length; i++) {
            logits[i] = first[expand[i]];
            sequences[i] = prefix.clone();
            beamScores[i] = i % beams == 0 ? 0 : -1e9f;
        }
        BeamHypotheses[] hypotheses = new BeamHypotheses[inputs];
        boolean[] done = new boolean[inputs];
        for (int b = 0; b < inputs; b++) {
            hypotheses[b] = new BeamHypotheses(beams, config.lengthPenalty(), config.earlyStopping(), maxLength);
        }
        LogitsProcessors processors = new LogitsProcessors(config, promptLength);
        int keep = Math.max(2, 1 + config.eosTokenIds().size()) * beams;
        int vocab = first[0].length;
        long[] nextTokens = new long[expand.length];
        int[] nextRows = new int[expand.length];
        for (int step = 0; step < newTokens; step++) {
            int currentLength = sequences[0].length + 1;
            float[][] candidates = new float[inputs][beams * vocab];
            for (int row = 0; row < expand.length; row++) {
                float[] scores = logSoftmax(logits[row]);
                processors.process(sequences[row], scores);
                int b = row / beams;
                int beam = row % beams;
                for (int v = 0; v < vocab; v++) {
                    candidates[b][beam * vocab + v] = scores[v] + beamScores[row];
                }
            }
            float[] nextScores = new float[expand.length];
            for (int b = 0; b < inputs; b++) {
                if (done[b]) {
                    for (int beam = 0; beam < beams; beam++) {
                        int row = b * beams + beam;
                        nextScores[row] = 0;
                        nextTokens[row] = padToken();
                        nextRows[row] = b * beams;
                    }
                    continue;
                }
                int[] top = topIndices(candidates[b], keep);
                int filled = 0;
                for (int rank = 0; rank < top.length && filled < beams; rank++) {
                    int beam = top[rank] / vocab;
                    long token = top[rank] % vocab;
                    float score = candidates[b][top[rank]];
                    int row = b * beams + beam;
                    if (config.eosTokenIds().contains(token)) {
                        if (rank < beams) {
                            hypotheses[b].add(sequences[row].clone(), score, currentLength - promptLength);
                        }
                    } else {
                        int slot = b * beams + filled++;
                        nextScores[slot] = score;
                        nextTokens[slot] = token;
                        nextRows[slot] = row;
                    }
                }
                double best = candidates[b][top[0]];
                done[b] = done[b] || hypotheses[b].isDone(best, currentLength, promptLength);
            }
            long[][] reordered = new long[expand.length][];
            for (int row = 0; row < expand.length; row++) {
                reordered[row] = append(sequences[nextRows[row]], nextTokens[row]);
            }
            sequences = reordered;
            beamScores = nextScores;
            if (allTrue(done) || step == newTokens - 1) {
                break;
            }
            decoder.select(nextRows);
            logits = decoder.step(nextTokens);
        }
        return finalizeBeams(sequences, beamScores, hypotheses, done, promptLength, maxLength);
    }

    private Generation finalizeBeams(long[][] sequences, float[] beamScores, BeamHypotheses[] hypotheses, boolean[] done,
                                     int promptLength, int maxLength) {
        int beams = config.numBeams();
        for (int b = 0; b < hypotheses.length; b++) {
            if (done[b]) {
                continue;
            }
            for (int beam = 0; beam < beams; beam++) {
                int row = b * beams + beam;
                hypotheses[b].add(sequences[row], beamScores[row], sequences[row].length - promptLength);
            }
        }
        int keep = config.numReturnSequences();
        long[][] best = new long[hypotheses.length * keep][];
        double[] scores = new double[best.length];
        for (int b = 0; b < hypotheses.length; b++) {
            List<BeamHypotheses.Hypothesis> sorted = hypotheses[b].best();
            for (int j = 0; j < keep; j++) {
                best[b * keep + j] = sorted.get(j).tokens();
                scores[b * keep + j] = sorted.get(j).score();
            }
        }
        // as transformers: an eos after each shorter sequence if it fits in max_length, then padding
        int longest = Arrays.stream(best).mapToInt(s -> s.length).max().orElse(0);
        int width = Math.min(longest + 1, maxLength);
        long[][] out = new long[best.length][];
        for (int i = 0; i < best.length; i++) {
            long[] row = new long[Math.max(width, best[i].length)];
            Arrays.fill(row, padToken());
            System.arraycopy(best[i], 0, row, 0, best[i].length);
            if (best[i].length < width) {
                row[best[i].length] = config.eosTokenIds().get(0);
            }
            out[i] = width == longest ? best[i] : row;
        }
        return new Generation(out, scores, List.of(), List.of());
    }

    private long padToken() {
        if (config.padTokenId() == null) {
            return config.eosTokenIds().isEmpty() ? 0 : config.eosTokenIds().get(0);
        }
        return config.padTokenId();
    }

    private static float[] logSoftmax(float[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l - max);
        }
        float logSum = (float) (max + Math.log(sum));
        float[] out = new float[logits.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = logits[i] - logSum;
        }
        return out;
    }

    /** The first index of the maximum, as torch.argmax. */
    public static int argmax(float[] scores) {
        int best = 0;
        for (int i = 1; i < scores.length; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Indices of the k largest, largest first; ties to the lower index. */
    private static int[] topIndices(float[] scores, int k) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> scores[a] != scores[b] ? Float.compare(scores[b], scores[a]) : Integer.compare(a, b));
        return Arrays.stream(order, 0, Math.min(k, order.length)).mapToInt(Integer::intValue).toArray();
    }

    private static int draw(double[] probabilities, SplittableRandom random) {
        double u = random.nextDouble();
        double cumulative = 0;
        for (int i = 0; i < probabilities.length; i++) {
            cumulative += probabilities[i];
            if (u < cumulative) {
                return i;
            }
        }
        for (int i = probabilities.length - 1; i >= 0; i--) {
            if (probabilities[i] > 0) {
                return i;
            }
        }
        return 0;
    }

    private static long[] append(long[] history, long token) {
        long[] out = Arrays.copyOf(history, history.length + 1);
        out[history.length] = token;
        return out;
    }

    private static boolean allTrue(boolean[] flags) {
        for (boolean f : flags) {
            if (!f) {
                return false;
            }
        }
        return true;
    }
}
