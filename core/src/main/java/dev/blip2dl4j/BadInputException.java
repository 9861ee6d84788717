package dev.blip2dl4j;

import java.nio.file.Path;

/**
 * A file or value given to us that we cannot use: a truncated checkpoint, a corrupt header, a tensor
 * with the wrong shape, a config we do not understand. The message is one readable paragraph that names
 * the file and the problem; the command line prints it without a stack trace and exits with code 3.
 */
public class BadInputException extends RuntimeException {
    private final transient Path file;

    public BadInputException(Path file, String problem) {
        this(file, problem, null);
    }

    public BadInputException(Path file, String problem, Throwable cause) {
        super(file == null ? problem : file + ": " + problem, cause);
        this.file = file;
    }

    public BadInputException(String problem) {
        this(null, problem, null);
    }

    /** The file at fault, or null when the problem is not tied to one file. */
    public Path file() {
        return file;
    }
}
