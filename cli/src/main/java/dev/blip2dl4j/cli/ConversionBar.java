package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.ConversionProgress;
import me.tongfei.progressbar.ProgressBar;

/** A conversion's progress bar over source bytes, with rate and time left; none when quiet. */
final class ConversionBar implements ConversionProgress, AutoCloseable {
    private final boolean quiet;
    private ProgressBar bar;

    ConversionBar(boolean quiet) {
        this.quiet = quiet;
    }

    @Override
    public void start(long totalBytes) {
        if (!quiet) {
            bar = ProgressBars.megabytes("convert", totalBytes, 0);
        }
    }

    @Override
    public void advance(long bytes) {
        if (bar != null) {
            bar.stepBy(bytes);
        }
    }

    @Override
    public void close() {
        if (bar != null) {
            bar.close();
        }
    }
}
