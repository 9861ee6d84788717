package dev.blip2dl4j.finetune.data;

import java.nio.file.Path;
import java.util.List;

/**
 * One visual question with its answers, and where it was read from (for error messages).
 *
 * @param image    the image file, resolved
 * @param question the question as written (cleaned only when a prompt is made of it)
 * @param answer   the answer trained on: the row's {@code answer}, or the most frequent of its human answers
 *                 (the first of them on a tie; VQAv2's {@code multiple_choice_answer} is such a majority)
 * @param answers  every human answer, repeats included, as VQA accuracy counts them
 * @param id       the question id where the data has one, else the row's position
 * @param file     the data file
 * @param position where in the file: "line 12", "entry 3"
 */
public record VqaExample(Path image, String question, String answer, List<String> answers, String id, Path file,
                         String position) {
    public VqaExample {
        answers = List.copyOf(answers);
    }

    /** "data.jsonl line 12", for messages. */
    public String where() {
        return file + " " + position;
    }
}
