package dev.blip2dl4j.spark;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.tensor.DType;

import java.io.Serializable;
import java.net.URI;
import java.util.regex.Pattern;

/**
 * Which model the executors load: a catalogue name ({@code blip2 models} lists them), pulled into each
 * executor's hub cache as {@code Blip2.pretrained(name, dtype)} pulls it, or a {@code .b2z} on any Hadoop
 * FileSystem ({@code file:}, {@code hdfs:}, {@code s3a:} ... or a plain path). A location with a URI scheme, a
 * path separator or the {@code .b2z} extension is a file; anything else is a name.
 *
 * @param location the name, path or URI
 * @param dtype    for a name: the storage type to convert it into (float32, bfloat16, float16, int8); null for the
 *                 publisher's float32. A file keeps the types it was converted with.
 */
public record ModelReference(String location, String dtype) implements Serializable {
    private static final Pattern SCHEME = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*:.*");

    public ModelReference {
        if (location == null || location.isBlank()) {
            throw new BadInputException("no model given: a catalogue name or the path of a .b2z artifact");
        }
        if (dtype != null && !dtype.isBlank()) {
            try {
                DType.fromUserName(dtype);
            } catch (IllegalArgumentException e) {
                throw new BadInputException("model " + location + ": " + e.getMessage());
            }
        } else {
            dtype = null;
        }
        if (dtype != null && !isName(location)) {
            throw new BadInputException("model " + location + ": a storage type (" + dtype + ") is for a catalogue "
                    + "name; an artifact keeps the types it was converted with (`blip2 convert --dtype`)");
        }
    }

    public static ModelReference of(String location) {
        return new ModelReference(location, null);
    }

    public boolean isName() {
        return isName(location);
    }

    /** The file's URI; a plain path is a local file. */
    public URI uri() {
        if (isName()) {
            throw new IllegalStateException(location + " is a catalogue name");
        }
        return SCHEME.matcher(location).matches() ? URI.create(location)
                : java.nio.file.Path.of(location).toAbsolutePath().toUri();
    }

    private static boolean isName(String location) {
        return !SCHEME.matcher(location).matches() && !location.contains("/") && !location.contains("\\")
                && !location.endsWith(".b2z");
    }

    @Override
    public String toString() {
        return dtype == null ? location : location + " (" + dtype + ")";
    }
}
