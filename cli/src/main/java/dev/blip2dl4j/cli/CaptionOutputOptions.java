package dev.blip2dl4j.cli;

import picocli.CommandLine.Option;

/** How {@code caption} and {@code vqa} go through their images and print what they generate. */
final class CaptionOutputOptions {
    @Option(names = "--batch-size", defaultValue = "1", paramLabel = "N", description = "Images per batch (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--json", description = "Print JSON: text, ids, scores and timings per image.")
    boolean json;
}
