package dev.blip2dl4j.cli;

import picocli.CommandLine.Option;

/** How {@code caption} and {@code vqa} go through their images and print what they generate. */
final class CaptionOutputOptions {
    /** Images at once: each brings its beams' caches, and larger batches are no faster on a CPU. */
    static final int MAX_BATCH = 64;

    @Option(names = "--batch-size", defaultValue = "1", paramLabel = "N", description = "Images per batch, 1 to " + MAX_BATCH + " (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--json", description = "Print JSON: text, ids, scores and timings per image.")
    boolean json;
}
