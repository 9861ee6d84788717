package dev.blip2dl4j.cli;

import dev.blip2dl4j.finetune.data.BadRow;
import dev.blip2dl4j.finetune.data.BadRowPolicy;
import dev.blip2dl4j.finetune.data.QuestionCleaner;
import dev.blip2dl4j.finetune.data.VqaDataset;
import dev.blip2dl4j.finetune.data.VqaFormat;
import dev.blip2dl4j.finetune.data.VqaSource;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;

/** How VQA data files are read and their questions made prompts, for {@code finetune} and {@code eval}. */
final class VqaDataOptions {
    private static final int LISTED = 20;

    @Option(names = "--image-root", paramLabel = "DIR",
            description = "Folder that image paths are relative to (default: the data file's folder).")
    Path imageRoot;

    @Option(names = "--format", defaultValue = "auto", paramLabel = "auto|jsonl|lavis|vqav2",
            description = "The data files' format (default: ${DEFAULT-VALUE}: VQAv2 when an annotations file is "
                    + "given, LAVIS's VQA JSON when the file is a JSON list, else JSONL).")
    VqaFormat format;

    @Option(names = "--on-bad-row", defaultValue = "fail", paramLabel = "fail|skip",
            description = "A row that cannot be used (missing image, empty answer, not JSON): stop with its file and "
                    + "line (fail, the default), or leave it out and count it (skip).")
    BadRowPolicy onBadRow;

    @Option(names = "--template", paramLabel = "TEXT", description = "Prompt template with {} where the question goes, e.g. 'Question: {} Answer:' (default: the model's, as blip2 vqa uses).")
    String template;

    @Option(names = "--max-question-words", defaultValue = "" + QuestionCleaner.DEFAULT_MAX_WORDS, paramLabel = "N",
            description = "Questions are cleaned as LAVIS's blip_question and cut to N words (default: ${DEFAULT-VALUE}).")
    int maxQuestionWords;

    VqaDataset read(Path file, Path annotations) {
        return VqaDataset.read(new VqaSource(file, annotations, imageRoot), format, onBadRow);
    }

    /** Says how many rows were left out, and which (the first twenty). */
    static void reportSkipped(List<BadRow> skipped, PrintWriter err) {
        if (skipped.isEmpty()) {
            return;
        }
        err.printf("skipped %d bad row%s:%n", skipped.size(), skipped.size() == 1 ? "" : "s");
        skipped.stream().limit(LISTED).forEach(row -> err.println("  " + row));
        if (skipped.size() > LISTED) {
            err.printf("  ... and %d more%n", skipped.size() - LISTED);
        }
        err.flush();
    }
}
