package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.tensor.DType;
import org.apache.commons.compress.archivers.zip.Zip64Mode;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Supplier;
import java.util.zip.ZipEntry;

/**
 * Writes a {@code .b2z} artifact: a zip64 file whose tensor entries are STORED and 64-byte aligned so
 * that a reader can memory-map each tensor. Everything goes to the output's partial file beside the target
 * ({@link OutputFile}), which is renamed onto the target only after {@link #commit} has written the manifest
 * and checked the result; closing without committing deletes it. A failed conversion never leaves a file
 * behind, and a killed one leaves a partial that the next write of the same target deletes.
 */
public final class ArtifactWriter implements Closeable {
    public static final int ALIGNMENT = 64;
    public static final String TENSOR_PREFIX = "tensors/";
    public static final String MANIFEST = "manifest.json";
    /** Fixed entry times, so that converting the same checkpoint twice gives the same bytes. */
    private static final long ENTRY_TIME = 1577836800000L;

    /** Opens the channel the zip is written to; tests substitute one that fails. */
    @FunctionalInterface
    public interface ChannelOpener {
        SeekableByteChannel open(Path path) throws IOException;
    }

    private final OutputFile target;
    private final Path temp;
    private final ZipArchiveOutputStream zip;
    private final List<Supplier<Manifest.Tensor>> written = new ArrayList<>();
    private boolean committed;

    private ArtifactWriter(OutputFile target, Path temp, ZipArchiveOutputStream zip) {
        this.target = target;
        this.temp = temp;
        this.zip = zip;
    }

    public static ArtifactWriter create(OutputFile target) {
        return create(target, path -> FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                StandardOpenOption.READ));
    }

    public static ArtifactWriter create(OutputFile target, ChannelOpener opener) {
        // not Files.createTempFile: that makes the file private (0600), and the artifact keeps its permissions
        Path temp = target.beginPartial();
        try {
            ZipArchiveOutputStream zip = new ZipArchiveOutputStream(opener.open(temp));
            zip.setUseZip64(Zip64Mode.AsNeeded);
            return new ArtifactWriter(target, temp, zip);
        } catch (IOException | RuntimeException e) {
            target.abandon(temp);
            throw new BadInputException(target.path(), "cannot write the artifact in " + target.path().getParent()
                    + " (" + describe(e) + ")", e);
        }
    }

    /** A small file such as config.json, compressed. */
    public void addFile(String entryName, byte[] content) {
        try {
            ZipArchiveEntry entry = new ZipArchiveEntry(entryName);
            entry.setMethod(ZipEntry.DEFLATED);
            entry.setTime(ENTRY_TIME);
            zip.putArchiveEntry(entry);
            zip.write(content);
            zip.closeArchiveEntry();
        } catch (IOException e) {
            throw failure(e);
        }
    }

    /** Starts a tensor entry; write exactly its bytes, then {@link TensorOutput#finish}. */
    public TensorOutput beginTensor(String name, DType dtype, long[] shape) {
        long bytes = Arrays.stream(shape).reduce(1, Math::multiplyExact) * dtype.size();
        try {
            ZipArchiveEntry entry = new ZipArchiveEntry(TENSOR_PREFIX + name);
            entry.setMethod(ZipEntry.STORED);
            entry.setSize(bytes);
            entry.setAlignment(ALIGNMENT);
            entry.setTime(ENTRY_TIME);
            zip.putArchiveEntry(entry);
            return new TensorOutput(name, dtype, shape.clone(), entry.getName(), bytes);
        } catch (IOException e) {
            throw failure(e);
        }
    }

    /** The bytes of one tensor on their way into the artifact. */
    public final class TensorOutput {
        private final String name;
        private final DType dtype;
        private final long[] shape;
        private final String entry;
        private final long expectedBytes;
        private long count;

        private TensorOutput(String name, DType dtype, long[] shape, String entry, long expectedBytes) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape;
            this.entry = entry;
            this.expectedBytes = expectedBytes;
        }

        public void write(byte[] bytes, int offset, int length) {
            try {
                zip.write(bytes, offset, length);
                count += length;
            } catch (IOException e) {
                throw failure(e);
            }
        }

        /**
         * Closes the entry. The SHA-256 of the bytes written, in hex, may still be being computed
         * elsewhere: it is asked for when the manifest is written.
         */
        public void finish(Supplier<String> sha256) {
            if (count != expectedBytes) {
                throw new IllegalStateException("tensor " + name + ": wrote " + count + " bytes, expected " + expectedBytes);
            }
            try {
                zip.closeArchiveEntry();
            } catch (IOException e) {
                throw failure(e);
            }
            written.add(() -> new Manifest.Tensor(name, dtype.name(), shape, entry, sha256.get()));
        }
    }

    /**
     * Writes the manifest (with the tensors written, replacing whatever {@code manifest} lists), checks
     * the finished file and renames it onto the target. Returns the manifest written.
     */
    public Manifest commit(Manifest manifest) {
        Manifest complete = new Manifest(manifest.format(), manifest.formatVersion(), manifest.modelClass(),
                manifest.languageModel(), manifest.converter(), manifest.source(), manifest.dtype(),
                written.stream().map(Supplier::get).toList(), manifest.notes());
        try {
            addFile(MANIFEST, complete.toJson());
            zip.finish();
            zip.close();
            try (Artifact check = Artifact.open(temp)) {
                if (!check.manifest().tensors().equals(complete.tensors())) {
                    throw new IOException("the manifest read back differs from the one written");
                }
            }
            target.commit(temp);
            committed = true;
            return complete;
        } catch (IOException | BadInputException e) {
            throw failure(e);
        }
    }

    @Override
    public void close() {
        if (!committed) {
            try {
                zip.close();
            } catch (IOException | RuntimeException ignored) {
                // the write already failed or was abandoned: the temporary file goes either way
            }
            target.abandon(temp);
        }
    }

    private BadInputException failure(Exception e) {
        close();
        return new BadInputException(target.path(), "cannot write the artifact (" + describe(e) + "); nothing was written", e);
    }

    private static String describe(Exception e) {
        String message = e.getMessage();
        if (e instanceof FileSystemException fs && fs.getReason() != null) {
            message = fs.getReason();
        }
        return message == null ? e.getClass().getSimpleName() : message;
    }
}
