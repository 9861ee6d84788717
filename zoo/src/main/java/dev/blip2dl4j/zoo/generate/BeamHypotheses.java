package dev.blip2dl4j.zoo.generate;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * The finished hypotheses of one input in beam search, as transformers keeps them: at most numBeams,
 * scored by sum of log-probabilities / generated length ^ length penalty.
 */
final class BeamHypotheses {
    record Hypothesis(double score, long[] tokens) {
    }

    private final int numBeams;
    private final double lengthPenalty;
    private final String earlyStopping;
    private final int maxLength;
    private final List<Hypothesis> beams = new ArrayList<>();
    private double worstScore = 1e9;

    BeamHypotheses(int numBeams, double lengthPenalty, String earlyStopping, int maxLength) {
        this.numBeams = numBeams;
        this.lengthPenalty = lengthPenalty;
        this.earlyStopping = earlyStopping;
        this.maxLength = maxLength;
    }

    int size() {
        return beams.size();
    }

    void add(long[] tokens, double sumLogprobs, int generatedLength) {
        double score = sumLogprobs / Math.pow(generatedLength, lengthPenalty);
        if (beams.size() < numBeams || score > worstScore) {
            beams.add(new Hypothesis(score, tokens));
            if (beams.size() > numBeams) {
                int worst = 0;
                for (int i = 1; i < beams.size(); i++) {
                    if (beams.get(i).score() < beams.get(worst).score()) {
                        worst = i;
                    }
                }
                beams.remove(worst);
                worstScore = beams.stream().mapToDouble(Hypothesis::score).min().orElseThrow();
            } else {
                worstScore = Math.min(score, worstScore);
            }
        }
    }

    /** Whether no open beam can beat the worst kept hypothesis any more. */
    boolean isDone(double bestSumLogprobs, int currentLength, int promptLength) {
        if (beams.size() < numBeams) {
            return false;
        }
        switch (earlyStopping) {
            case "true":
                return true;
            case "false":
                return worstScore >= bestSumLogprobs / Math.pow(currentLength - promptLength, lengthPenalty);
            default: // "never": the best an open beam could still reach
                int length = lengthPenalty > 0 ? maxLength - promptLength : currentLength - promptLength;
                return worstScore >= bestSumLogprobs / Math.pow(length, lengthPenalty);
        }
    }

    /** The kept hypotheses, best first. */
    List<Hypothesis> best() {
        List<Hypothesis> sorted = new ArrayList<>(beams);
        sorted.sort(Comparator.comparingDouble(Hypothesis::score).reversed());
        return sorted;
    }
}
