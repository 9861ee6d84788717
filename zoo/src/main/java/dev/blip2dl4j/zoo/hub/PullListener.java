package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.convert.ConversionProgress;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a pull tells its user while it works: messages (waiting for another process, verifying), each file's
 * download with its bytes as they arrive (called from the HTTP client's threads), and the conversion.
 */
public interface PullListener {
    /** Says nothing. */
    PullListener NONE = new PullListener() {
    };

    /** Logs messages and each file's start and end at INFO: what a library user sees by default. */
    PullListener LOG = new PullListener() {
        private final Logger log = LoggerFactory.getLogger(PullListener.class);

        @Override
        public void message(String text) {
            log.info(text);
        }

        @Override
        public void downloadStarted(String file, long totalBytes, long alreadyHave) {
            log.info("downloading {} ({} MB{})", file, totalBytes < 0 ? "?" : totalBytes / 1_000_000,
                    alreadyHave > 0 ? ", resuming at " + alreadyHave / 1_000_000 + " MB" : "");
        }

        @Override
        public void downloadFinished(String file) {
            log.info("downloaded {}", file);
        }
    };

    default void message(String text) {
    }

    /** A file starts (or resumes): {@code totalBytes} is -1 when the server does not say. */
    default void downloadStarted(String file, long totalBytes, long alreadyHave) {
    }

    default void downloaded(long bytes) {
    }

    default void downloadFinished(String file) {
    }

    default ConversionProgress conversion() {
        return ConversionProgress.NONE;
    }
}
