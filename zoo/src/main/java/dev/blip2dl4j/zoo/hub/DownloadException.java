package dev.blip2dl4j.zoo.hub;

/**
 * A model could not be fetched: the server refused or kept failing after every retry, a file did not match
 * its checksum, or we are offline and the cache lacks it. The message says which file, what happened and
 * what to do; the command line prints it as one paragraph and exits with code 5.
 */
public class DownloadException extends RuntimeException {
    public DownloadException(String message) {
        super(message);
    }

    public DownloadException(String message, Throwable cause) {
        super(message, cause);
    }
}
