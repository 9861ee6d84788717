package dev.blip2dl4j.finetune.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.BufferedReader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** Our JSONL format ({@link VqaSource}): one JSON object a line, in UTF-8; blank lines are ignored. */
final class JsonlReader {
    private static final ObjectMapper JSON = new ObjectMapper();

    private JsonlReader() {
    }

    static List<VqaExample> read(VqaSource source, BadRows bad) {
        List<VqaExample> examples = new ArrayList<>();
        try (BufferedReader in = Utf8DataFile.open(source.file())) {
            int number = 0;
            for (String line; (line = in.readLine()) != null; ) {
                number++;
                if (!line.isBlank()) {
                    row(source, "line " + number, line, bad).ifPresent(examples::add);
                }
            }
        } catch (IOException e) {
            throw new BadInputException(source.file(), "cannot read the data file (" + e.getMessage() + ")", e);
        }
        return examples;
    }

    private static Optional<VqaExample> row(VqaSource source, String position, String line, BadRows bad) {
        JsonNode row;
        try {
            row = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            bad.report(source.file(), position, "not JSON (" + e.getOriginalMessage() + ")");
            return Optional.empty();
        }
        if (row == null || !row.isObject()) {
            bad.report(source.file(), position, "not a JSON object");
            return Optional.empty();
        }
        JsonNode image = row.get("image");
        if (image == null || !image.isTextual() || image.asText().isBlank()) {
            bad.report(source.file(), position, "no \"image\"");
            return Optional.empty();
        }
        List<String> answers = new ArrayList<>();
        row.path("answers").forEach(a -> answers.add(a.asText()));
        String answer = row.hasNonNull("answer") ? row.get("answer").asText() : null;
        String id = row.hasNonNull("question_id") ? row.get("question_id").asText() : position;
        return RowChecks.example(bad, source.file(), position, source.imageBase().resolve(image.asText()),
                row.path("question").asText(null), answer, answers, id);
    }
}
