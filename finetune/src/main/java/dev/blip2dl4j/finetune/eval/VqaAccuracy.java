package dev.blip2dl4j.finetune.eval;

import java.util.HashSet;
import java.util.List;

/**
 * How one predicted answer scores, as the official VQA evaluation scores it.
 * <ul>
 * <li>VQA accuracy: for each of the human answers in turn, {@code min(1, #matches among the others / 3)},
 *     averaged (so with ten answers an answer three humans gave scores 0.9 + 0.1 * ... = 1, one two gave
 *     0.6). The prediction is normalised ({@link VqaAnswerNormalizer#prediction}); the human answers get their
 *     line breaks and tabs made spaces and are trimmed, then the punctuation step only, and only when they
 *     are not all the same, as in the script. A single answer
 *     (our JSONL's {@code "answer"}), for which the formula would always give 0, scores as an exact match.</li>
 * <li>Exact match: the normalised prediction equals the answer trained on, normalised the same way.</li>
 * </ul>
 */
public final class VqaAccuracy {
    private VqaAccuracy() {
    }

    public static double accuracy(String prediction, List<String> answers) {
        if (answers.isEmpty()) {
            throw new IllegalArgumentException("no human answers to score against");
        }
        if (answers.size() == 1) {
            // the formula has no "others" to count for one answer (it would score 0 always): match or not
            return exactMatch(prediction, answers.get(0)) ? 1 : 0;
        }
        String predicted = VqaAnswerNormalizer.prediction(prediction);
        List<String> given = answers.stream().map(VqaAnswerNormalizer::whitespace).toList();
        List<String> references = new HashSet<>(given).size() > 1
                ? given.stream().map(VqaAnswerNormalizer::punctuation).toList() : given;
        double sum = 0;
        for (int i = 0; i < references.size(); i++) {
            int matches = 0;
            for (int j = 0; j < references.size(); j++) {
                if (j != i && references.get(j).equals(predicted)) {
                    matches++;
                }
            }
            sum += Math.min(1.0, matches / 3.0);
        }
        return sum / references.size();
    }

    public static boolean exactMatch(String prediction, String answer) {
        return VqaAnswerNormalizer.prediction(prediction).equals(VqaAnswerNormalizer.prediction(answer));
    }
}
