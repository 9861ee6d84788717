package dev.blip2dl4j.zoo.hub;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * One file of a catalogue entry's source, as the publisher serves it.
 *
 * @param path       the file's path in its repository (or its name, for a plain URL)
 * @param size       the exact size in bytes, where the hub shows it (an LFS pointer); checked after download
 * @param approxSize the size as the hub's pages round it, for listing only, where the exact one is unknown
 * @param sha256     the SHA-256 the hub exposes (an LFS oid); a download that does not match is deleted
 * @param optional   a file we expect but could not confirm at the pinned revision: a 404 is not an error
 */
@JsonInclude(JsonInclude.Include.NON_DEFAULT)
public record RemoteFile(String path, Long size, Long approxSize, String sha256, boolean optional) {
    public RemoteFile {
        if (path == null || path.isBlank() || path.startsWith("/") || path.contains("..") || path.contains("\\")) {
            throw new IllegalArgumentException("a catalogue file path must be relative and stay in its folder: '" + path + "'");
        }
        if (sha256 != null && !sha256.matches("[0-9a-f]{64}")) {
            throw new IllegalArgumentException(path + ": sha256 must be 64 lowercase hex digits, not '" + sha256 + "'");
        }
    }

    /**
     * The most bytes the file may have: its exact size; else twice the hub's rounded size and a megabyte (the
     * pages round to three digits, so this allows any rounding and still stops a server that sends another
     * file, or an endless one); unbounded when neither is known.
     */
    public long maxBytes() {
        return size != null ? size : approxSize != null ? 2 * approxSize + 1_000_000 : Long.MAX_VALUE;
    }

    /** The size to show: exact if known, else the hub's rounded one; 0 if neither is known. */
    public long displaySize() {
        return size != null ? size : approxSize != null ? approxSize : 0;
    }
}
