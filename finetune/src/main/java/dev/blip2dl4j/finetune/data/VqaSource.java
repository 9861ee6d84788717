package dev.blip2dl4j.finetune.data;

import java.nio.file.Path;

/**
 * Where VQA data is: one of
 * <ul>
 * <li>our JSONL, one question a line: {@code {"image": "path", "question": "...", "answer": "..."}} or with
 *     {@code "answers": ["...", ...]} (the human answers, repeats included); optional {@code "question_id"}; a
 *     caption row has {@code "question": ""} and its caption as the answer (what {@code blip2 spark capfilt} writes);</li>
 * <li>LAVIS's VQA annotation JSON, a list of {@code {"image", "question", "answer": [...], "question_id"}}
 *     (vqav2/annotations/vqa_train.json and the like);</li>
 * <li>the official VQAv2 questions file with its annotations file ({@code annotations} set).</li>
 * </ul>
 * Image paths are relative to {@code imageRoot}, or when it is null to the data file's folder; VQAv2's images
 * are {@code COCO_<data_subtype>_<12-digit image_id>.jpg} in the image root or its {@code <data_subtype>/}.
 *
 * @param annotations the VQAv2 annotations file, or null
 * @param imageRoot   the folder image paths are relative to, or null
 */
public record VqaSource(Path file, Path annotations, Path imageRoot) {
    public static VqaSource of(Path file) {
        return new VqaSource(file, null, null);
    }

    /** The folder relative image paths start from. */
    Path imageBase() {
        if (imageRoot != null) {
            return imageRoot;
        }
        Path parent = file.toAbsolutePath().getParent();
        return parent == null ? Path.of(".") : parent;
    }
}
