package dev.blip2dl4j.finetune.data;

/** What to do with a data row that cannot be used ({@code --on-bad-row}). */
public enum BadRowPolicy {
    /** Stop with an error naming the file, the row and the problem (the default). */
    FAIL,
    /** Leave the row out and count it. */
    SKIP
}
