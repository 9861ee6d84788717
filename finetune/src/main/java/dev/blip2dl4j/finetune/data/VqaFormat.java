package dev.blip2dl4j.finetune.data;

/** Which of the formats of {@link VqaSource} a data file is in ({@code --format}). */
public enum VqaFormat {
    /** VQAv2 when an annotations file is given, LAVIS when the file is a JSON list, else JSONL. */
    AUTO,
    JSONL,
    LAVIS,
    VQAV2
}
