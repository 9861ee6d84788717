package dev.blip2dl4j.finetune.data;

import java.nio.file.Path;

/**
 * A data row left out: a missing or unreadable image, no answer, a line that is not JSON.
 *
 * @param position "line 12", "entry 3", "question_id 262148000"
 */
public record BadRow(Path file, String position, String problem) {
    @Override
    public String toString() {
        return file + " " + position + ": " + problem;
    }
}
