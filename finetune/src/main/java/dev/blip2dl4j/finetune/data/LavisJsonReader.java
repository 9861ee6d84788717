package dev.blip2dl4j.finetune.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * LAVIS's VQA annotation JSON (what its VQAv2, OK-VQA and A-OKVQA builders download): a list of
 * {@code {"question_id", "question", "answer", "image"}} where {@code answer} is the list of human answers
 * (or, in some files, one string), and {@code image} is relative to the image root (LAVIS's vis_root).
 */
final class LavisJsonReader {
    private LavisJsonReader() {
    }

    static List<VqaExample> read(VqaSource source, BadRows bad) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Utf8DataFile.open(source.file()));
        } catch (IOException e) {
            throw new BadInputException(source.file(), "not a readable JSON file (" + e.getMessage() + ")", e);
        }
        if (!root.isArray()) {
            throw new BadInputException(source.file(), "a LAVIS VQA annotation file is a JSON list of questions");
        }
        List<VqaExample> examples = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode row = root.get(i);
            String position = "entry " + (i + 1);
            if (!row.isObject() || !row.path("image").isTextual()) {
                bad.report(source.file(), position, "no \"image\"");
                continue;
            }
            JsonNode answer = row.path("answer");
            List<String> answers = new ArrayList<>();
            if (answer.isArray()) {
                answer.forEach(a -> answers.add(a.asText()));
            } else if (answer.isValueNode()) {
                answers.add(answer.asText());
            }
            String id = row.hasNonNull("question_id") ? row.get("question_id").asText() : position;
            RowChecks.example(bad, source.file(), position, source.imageBase().resolve(row.get("image").asText()),
                    row.path("question").asText(null), null, answers, id).ifPresent(examples::add);
        }
        return examples;
    }
}
