package dev.blip2dl4j;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A file we are about to write, checked against the one policy every writer of the project follows, before
 * any work starts: its folder exists and is writable; it is not a folder, a device, a pipe or a socket; it
 * is not one of the command's inputs (compared as the same file, so through symlinks and hard links too, and
 * anything inside an input folder); and it does not exist yet, unless the caller was told to replace it.
 *
 * <p>Whole files are written to a partial file beside the target, {@code .NAME.<pid>.partial}, named for the
 * target and the process writing it, and renamed onto the target only when complete. A process killed while
 * writing leaves its partial; the next check of the same target (and a cache clean-up) deletes every partial
 * of it whose process is gone (and those of earlier builds, named with a random number), and leaves those of
 * live processes alone.
 */
public final class OutputFile {
    /** A partial: {@code .NAME.<pid>.partial}, or as builds before this one named it, with a random base-36 number. */
    private static final Pattern PARTIAL = Pattern.compile("\\.(.+)\\.([0-9a-z]+)\\.partial");
    private static final long PID = ProcessHandle.current().pid();
    /** Targets this process is writing: a second writer of one target in one process would share its partial. */
    private static final Set<Path> WRITING = ConcurrentHashMap.newKeySet();

    private final Path path;
    private final boolean replace;
    /** Where the replaced file is kept, or null to let it go. */
    private final Path previous;
    /** Whether this process has put the file in place: rewriting its own output (a checkpoint) is no overwrite. */
    private volatile boolean written;

    private OutputFile(Path path, boolean replace, Path previous) {
        this.path = path;
        this.replace = replace;
        this.previous = previous;
    }

    /** As {@link #check(Path, Collection, boolean, String)}, telling a user {@code --overwrite} replaces a file. */
    public static OutputFile check(Path path, Collection<Path> inputs, boolean replace) {
        return check(path, inputs, replace, "--overwrite replaces it");
    }

    /**
     * Checks {@code path} as an output of a command that reads {@code inputs} (files or folders), and deletes the
     * partial files that dead processes left for it.
     *
     * @param replace   whether an existing file (that is no input) may be replaced
     * @param toReplace how the user allows replacing, for the error message
     */
    public static OutputFile check(Path path, Collection<Path> inputs, boolean replace, String toReplace) {
        Path target = path.toAbsolutePath().normalize();
        Path dir = target.getParent();
        if (Files.isDirectory(target)) {
            throw new BadInputException(path, "is a directory; give the file to write");
        }
        if (dir == null || !Files.isDirectory(dir)) {
            throw new BadInputException(path, "cannot be written: " + dir + " is not a directory");
        }
        if (!Files.isWritable(dir)) {
            throw new BadInputException(path, "cannot be written: the folder " + dir + " is not writable");
        }
        if (Files.exists(target)) {
            if (!Files.isRegularFile(target)) {
                throw new BadInputException(path, "is not a regular file (a device, pipe or socket): nothing is "
                        + "written to it; give the path of a file");
            }
            for (Path input : inputs) {
                if (input != null && isOrHolds(input, target)) {
                    String through = input.toAbsolutePath().normalize().equals(target) ? "" : " (as " + input + ")";
                    throw new BadInputException(path, "is an input of this command" + through + ": it is never "
                            + "overwritten; give another output path");
                }
            }
            if (!replace) {
                throw new BadInputException(path, "already exists and is not replaced (" + toReplace
                        + "); give another output path");
            }
        }
        deleteAbandoned(target);
        return new OutputFile(target, replace, null);
    }

    /** Refuses one file named for two outputs of a command (e.g. the metrics log given the artifact's path). */
    public static void requireDistinct(Collection<OutputFile> outputs) {
        Set<Path> seen = new HashSet<>();
        for (OutputFile o : outputs) {
            if (!seen.add(o.path)) {
                throw new BadInputException(o.path, "is named for two outputs of this command; give each its own path");
            }
        }
    }

    /** The file, absolute. */
    public Path path() {
        return path;
    }

    /**
     * This output, keeping the file it replaces as {@code kept} (itself checked as an output) until the new
     * one is in place: a reader then finds the new file, or the old one under the other name.
     */
    public OutputFile keepingPrevious(OutputFile kept) {
        return new OutputFile(path, replace, kept.path);
    }

    /** The partial file this process writes the target to, before {@link #commit} renames it; one writer at a time. */
    public Path beginPartial() {
        if (!WRITING.add(path)) {
            throw new IllegalStateException(path + " is being written already by this process");
        }
        Path partial = partialOf(path, PID);
        try {
            // a partial named for our process id was left by a dead process of the same id, not by us
            Files.deleteIfExists(partial);
        } catch (IOException e) {
            WRITING.remove(path);
            throw new BadInputException(path, "cannot be written (cannot delete the stale " + partial + ": "
                    + e.getMessage() + ")", e);
        }
        return partial;
    }

    /**
     * Renames the complete partial onto the target, keeping the replaced file where asked. Refuses when the
     * target appeared meanwhile, not written by us, and may not be replaced.
     */
    public void commit(Path partial) throws IOException {
        try {
            if (!replace && !written && Files.exists(path)) {
                throw new BadInputException(path, "appeared while it was being written, and is not replaced");
            }
            if (previous != null && Files.exists(path)) {
                Files.move(path, previous, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
            Files.move(partial, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            written = true;
        } finally {
            abandon(partial);
        }
    }

    /** Deletes the partial of a write that did not complete (nothing if it was committed). */
    public void abandon(Path partial) {
        try {
            Files.deleteIfExists(partial);
        } catch (IOException ignored) {
            // it keeps a name that the next check of this target recognises and deletes
        } finally {
            WRITING.remove(path);
        }
    }

    /**
     * Deletes the partial files left beside {@code target} by processes that are gone; returns their bytes.
     * Partials of live processes (a write going on elsewhere) stay.
     */
    public static long deleteAbandoned(Path target) {
        Path absolute = target.toAbsolutePath().normalize();
        Path dir = absolute.getParent();
        String name = absolute.getFileName().toString();
        if (dir == null || !Files.isDirectory(dir)) {
            return 0;
        }
        long freed = 0;
        try (Stream<Path> siblings = Files.list(dir)) {
            for (Path p : siblings.toList()) {
                Matcher m = PARTIAL.matcher(p.getFileName().toString());
                if (m.matches() && m.group(1).equals(name) && isGone(m.group(2), absolute) && Files.isRegularFile(p)) {
                    long bytes = Files.size(p);
                    if (Files.deleteIfExists(p)) {
                        freed += bytes;
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean up the partial files of " + target + " in " + dir, e);
        }
        return freed;
    }

    /** The partial file process {@code pid} writes {@code target} to. */
    static Path partialOf(Path target, long pid) {
        return target.resolveSibling("." + target.getFileName() + "." + pid + ".partial");
    }

    /** Whether the process {@code pid} no longer writes {@code target}. */
    private static boolean isGone(String pid, Path target) {
        long id;
        try {
            id = Long.parseLong(pid);
        } catch (NumberFormatException randomName) {
            // an earlier build's partial: the write that left it is long over
            return true;
        }
        if (id == PID) {
            // ours only while we write it; otherwise a dead process had our id
            return !WRITING.contains(target);
        }
        return ProcessHandle.of(id).map(p -> !p.isAlive()).orElse(true);
    }

    /** Whether {@code input} is {@code target}, or a folder holding it (directly or below). */
    private static boolean isOrHolds(Path input, Path target) {
        try {
            if (!Files.exists(input)) {
                return false;
            }
            if (Files.isSameFile(input, target)) {
                return true;
            }
            if (!Files.isDirectory(input)) {
                return false;
            }
            if (target.toRealPath().startsWith(input.toRealPath())) {
                return true;
            }
            try (Stream<Path> files = Files.list(input)) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    if (Files.isSameFile(f, target)) {
                        return true;
                    }
                }
            }
            return false;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot compare " + target + " with the input " + input, e);
        }
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
