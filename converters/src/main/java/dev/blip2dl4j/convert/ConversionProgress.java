package dev.blip2dl4j.convert;

/** Told how a conversion advances, in source bytes processed. */
public interface ConversionProgress {
    ConversionProgress NONE = new ConversionProgress() {
    };

    default void start(long totalBytes) {
    }

    default void advance(long bytes) {
    }

    default void finish() {
    }
}
