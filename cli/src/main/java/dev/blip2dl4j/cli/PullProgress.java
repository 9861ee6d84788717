package dev.blip2dl4j.cli;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.zoo.hub.PullListener;
import me.tongfei.progressbar.ProgressBar;

import java.io.PrintWriter;

/**
 * A pull on the command line: its messages on stderr, a progress bar per file downloaded and one for the
 * conversion (none when quiet). Bytes arrive on the HTTP client's threads, hence the synchronisation.
 */
final class PullProgress implements PullListener, AutoCloseable {
    private final PrintWriter err;
    private final boolean quiet;
    private ProgressBar bar;
    private ConversionBar conversion;

    PullProgress(PrintWriter err, boolean quiet) {
        this.err = err;
        this.quiet = quiet;
    }

    @Override
    public void message(String text) {
        err.println(text);
        err.flush();
    }

    @Override
    public synchronized void downloadStarted(String file, long totalBytes, long alreadyHave) {
        closeBar();
        if (!quiet) {
            bar = ProgressBars.megabytes(file, totalBytes, alreadyHave);
        }
    }

    @Override
    public synchronized void downloaded(long bytes) {
        if (bar != null) {
            bar.stepBy(bytes);
        }
    }

    @Override
    public synchronized void downloadFinished(String file) {
        closeBar();
    }

    @Override
    public synchronized ConversionProgress conversion() {
        closeBar();
        conversion = new ConversionBar(quiet);
        return conversion;
    }

    @Override
    public synchronized void close() {
        closeBar();
        if (conversion != null) {
            conversion.close();
        }
    }

    private void closeBar() {
        if (bar != null) {
            bar.close();
            bar = null;
        }
    }
}
