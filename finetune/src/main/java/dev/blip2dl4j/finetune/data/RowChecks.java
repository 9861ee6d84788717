package dev.blip2dl4j.finetune.data;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** What every reader checks of a row before it becomes an example: an image file, a question, an answer. */
final class RowChecks {
    private RowChecks() {
    }

    /**
     * The example, or empty after reporting the row as bad.
     *
     * @param answer the answer to train on, or null for the most frequent of {@code answers}
     */
    static Optional<VqaExample> example(BadRows bad, Path file, String position, Path image, String question,
                                        String answer, List<String> answers, String id) {
        // "" (and only "") is a caption row: the answer is the image's caption, generated after no prompt, as
        // LAVIS fine-tunes captioning; blip2 spark capfilt writes such rows
        if (question == null || question.isBlank() && !question.isEmpty()) {
            bad.report(file, position, "no question");
            return Optional.empty();
        }
        List<String> given = answers.stream().map(String::strip).filter(a -> !a.isEmpty()).toList();
        String primary = answer != null ? answer.strip() : mostFrequent(given);
        if (primary == null || primary.isEmpty()) {
            bad.report(file, position, "empty answer");
            return Optional.empty();
        }
        if (!Files.isRegularFile(image)) {
            bad.report(file, position, "image " + image + (Files.exists(image) ? " is not a file" : " not found"));
            return Optional.empty();
        }
        return Optional.of(new VqaExample(image, question, primary, given.isEmpty() ? List.of(primary) : given, id,
                file, position));
    }

    /** The most frequent answer, the first to reach that count on a tie; null when there is none. */
    static String mostFrequent(List<String> answers) {
        Map<String, Integer> counts = new HashMap<>();
        answers.forEach(a -> counts.merge(a, 1, Integer::sum));
        String best = null;
        for (String a : answers) {
            if (best == null || counts.get(a) > counts.get(best)) {
                best = a;
            }
        }
        return best;
    }
}
