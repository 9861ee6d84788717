package dev.blip2dl4j.cli;

/** Byte counts for people, in decimal units as the Hugging Face hub shows them. */
final class ByteSizes {
    private ByteSizes() {
    }

    static String format(long bytes) {
        if (bytes < 1_000) {
            return bytes + " B";
        }
        if (bytes < 1_000_000) {
            return String.format("%.0f kB", bytes / 1e3);
        }
        if (bytes < 1_000_000_000) {
            return String.format("%.0f MB", bytes / 1e6);
        }
        return String.format("%.1f GB", bytes / 1e9);
    }
}
