package dev.blip2dl4j.convert;

/** How {@code blip2 convert} reads its sources ({@code --format}). */
public enum SourceFormat {
    /** Decide per file from the folder's config.json and the tensor names. */
    AUTO,
    /** Every BLIP-2 weight file has Hugging Face names, whatever its extension. */
    HF,
    /** Every BLIP-2 weight file has LAVIS names, whatever its extension. */
    LAVIS
}
