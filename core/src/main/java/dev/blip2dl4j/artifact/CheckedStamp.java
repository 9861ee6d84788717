package dev.blip2dl4j.artifact;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * That an artifact's tensors matched their SHA-256, remembered on the file itself: an extended attribute
 * ({@code user.blip2-dl4j.checked}) holding the size and modification time the file had when the check began.
 * A file changed since (rewritten, edited, a byte flipped by a tool) no longer matches and is hashed again, and
 * a copy starts without the attribute (cp and rsync drop it unless told to keep it). Where the file system keeps
 * no user attributes, or the file is not ours to write, nothing is remembered and every load hashes.
 */
final class CheckedStamp {
    private static final String ATTRIBUTE = "blip2-dl4j.checked";

    private final UserDefinedFileAttributeView view;
    private final String value;

    private CheckedStamp(UserDefinedFileAttributeView view, String value) {
        this.view = view;
        this.value = value;
    }

    /** The stamp the file would carry if checked now; empty where its file system has no user attributes. */
    static Optional<CheckedStamp> of(Path file) {
        UserDefinedFileAttributeView view = Files.getFileAttributeView(file, UserDefinedFileAttributeView.class);
        if (view == null) {
            return Optional.empty();
        }
        try {
            BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class);
            return Optional.of(new CheckedStamp(view, "sha256 of every tensor; size " + attributes.size()
                    + ", modified " + attributes.lastModifiedTime().to(TimeUnit.NANOSECONDS) + " ns"));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Whether the file carries this stamp: it was checked as it is now. */
    boolean isRecorded() {
        try {
            if (!view.list().contains(ATTRIBUTE)) {
                return false;
            }
            ByteBuffer stored = ByteBuffer.allocate(view.size(ATTRIBUTE));
            view.read(ATTRIBUTE, stored);
            return value.equals(new String(stored.array(), 0, stored.position(), StandardCharsets.UTF_8));
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    void record() {
        try {
            view.write(ATTRIBUTE, ByteBuffer.wrap(value.getBytes(StandardCharsets.UTF_8)));
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            // not ours to write, or a file system without user attributes: the next load checks again
        }
    }
}
