package dev.blip2dl4j.finetune.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The official VQAv2 files: {@code v2_OpenEnded_mscoco_<subtype>_questions.json} ({@code data_subtype},
 * {@code questions: [{image_id, question, question_id}]}) and {@code v2_mscoco_<subtype>_annotations.json}
 * ({@code annotations: [{question_id, multiple_choice_answer, answers: [{answer, ...}], ...}]}). The answer
 * trained on is {@code multiple_choice_answer}; the ten human answers score the predictions.
 */
final class Vqav2Reader {
    private Vqav2Reader() {
    }

    static List<VqaExample> read(VqaSource source, BadRows bad) {
        JsonNode questions = json(source.file(), "questions");
        JsonNode annotations = json(source.annotations(), "annotations");
        String subtype = questions.path("data_subtype").asText("");
        Map<String, JsonNode> byQuestion = new HashMap<>();
        annotations.get("annotations").forEach(a -> byQuestion.put(a.path("question_id").asText(), a));

        List<VqaExample> examples = new ArrayList<>();
        for (JsonNode q : questions.get("questions")) {
            String id = q.path("question_id").asText();
            String position = "question_id " + id;
            JsonNode annotation = byQuestion.get(id);
            if (annotation == null) {
                bad.report(source.file(), position, "no annotation in " + source.annotations());
                continue;
            }
            List<String> answers = new ArrayList<>();
            annotation.path("answers").forEach(a -> answers.add(a.path("answer").asText()));
            String primary = annotation.hasNonNull("multiple_choice_answer")
                    ? annotation.get("multiple_choice_answer").asText() : null;
            RowChecks.example(bad, source.file(), position, image(source, subtype, q.path("image_id").asLong()),
                    q.path("question").asText(null), primary, answers, id).ifPresent(examples::add);
        }
        return examples;
    }

    /** COCO's file name for the image, in the image root or in its subtype folder (as the zip unpacks). */
    private static Path image(VqaSource source, String subtype, long imageId) {
        String name = String.format("COCO_%s_%012d.jpg", subtype, imageId);
        Path direct = source.imageBase().resolve(name);
        Path nested = source.imageBase().resolve(subtype).resolve(name);
        return !Files.exists(direct) && Files.exists(nested) ? nested : direct;
    }

    private static JsonNode json(Path file, String listField) {
        try {
            JsonNode root = new ObjectMapper().readTree(Utf8DataFile.open(file));
            if (root == null || !root.path(listField).isArray()) {
                throw new BadInputException(file, "has no \"" + listField + "\" list: not an official VQAv2 "
                        + listField + " file");
            }
            return root;
        } catch (IOException e) {
            throw new BadInputException(file, "not a readable JSON file (" + e.getMessage() + ")", e);
        }
    }
}
