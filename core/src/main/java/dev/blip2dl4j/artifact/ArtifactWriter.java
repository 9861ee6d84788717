package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.tensor.DType;
import org.apache.commons.compress.archivers.zip.Zip64Mode;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    /** Where an I8 tensor's scales lie, under the tensor's name. */
    public static final String SCALE_PREFIX = "scales/";
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

    /** Starts a floating-point tensor entry; write exactly its bytes, then {@link TensorOutput#finish}. */
    public TensorOutput beginTensor(String name, DType dtype, long[] shape) {
        if (dtype == DType.I8) {
            throw new IllegalArgumentException("tensor " + name + ": an I8 tensor needs its scales (beginQuantized)");
        }
        return begin(name, dtype, shape, null);
    }

    /**
     * Starts a symmetric int8 tensor {@code [rows, columns]} with one scale per row ({@code blockSize} 0) or per
     * block of {@code blockSize} columns; write its int8 bytes, then {@link TensorOutput#finish(Supplier, float[])}.
     */
    public TensorOutput beginQuantized(String name, long[] shape, int blockSize) {
        if (shape.length != 2 || blockSize < 0 || (blockSize > 0 && shape[1] % blockSize != 0)) {
            throw new IllegalArgumentException("tensor " + name + Arrays.toString(shape)
                    + ": int8 needs a matrix whose columns the block size " + blockSize + " divides");
        }
        return begin(name, DType.I8, shape, blockSize);
    }

    private TensorOutput begin(String name, DType dtype, long[] shape, Integer blockSize) {
        long bytes = Arrays.stream(shape).reduce(1, Math::multiplyExact) * dtype.size();
        try {
            putStored(TENSOR_PREFIX + name, bytes);
            return new TensorOutput(name, dtype, shape.clone(), TENSOR_PREFIX + name, bytes, blockSize);
        } catch (IOException e) {
            throw failure(e);
        }
    }

    private void putStored(String name, long bytes) throws IOException {
        ZipArchiveEntry entry = new ZipArchiveEntry(name);
        entry.setMethod(ZipEntry.STORED);
        entry.setSize(bytes);
        entry.setAlignment(ALIGNMENT);
        entry.setTime(ENTRY_TIME);
        zip.putArchiveEntry(entry);
    }

    /** The bytes of one tensor on their way into the artifact. */
    public final class TensorOutput {
        private final String name;
        private final DType dtype;
        private final long[] shape;
        private final String entry;
        private final long expectedBytes;
        /** Null for a floating-point tensor. */
        private final Integer blockSize;
        private long count;

        private TensorOutput(String name, DType dtype, long[] shape, String entry, long expectedBytes,
                             Integer blockSize) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape;
            this.entry = entry;
            this.expectedBytes = expectedBytes;
            this.blockSize = blockSize;
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
         * Closes the entry of a floating-point tensor. The SHA-256 of the bytes written, in hex, may still be being
         * computed elsewhere: it is asked for when the manifest is written.
         */
        public void finish(Supplier<String> sha256) {
            if (blockSize != null) {
                throw new IllegalStateException("tensor " + name + " is int8: finish it with its scales");
            }
            close();
            written.add(() -> new Manifest.Tensor(name, dtype.name(), shape, entry, sha256.get()));
        }

        /** Closes the entry of an int8 tensor and writes its scales ({@code [rows, scales per row]}) after it. */
        public void finish(Supplier<String> sha256, float[] scales) {
            Manifest.Quantization layout = new Manifest.Quantization(Manifest.Quantization.SYMMETRIC, blockSize,
                    SCALE_PREFIX + name, null);
            if (blockSize == null || scales.length != shape[0] * layout.scalesPerRow(shape)) {
                throw new IllegalStateException("tensor " + name + ": " + scales.length + " scales for "
                        + Arrays.toString(shape) + (blockSize == null ? ", which is not int8" : ""));
            }
            close();
            byte[] bytes = new byte[scales.length * Float.BYTES];
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(scales);
            try {
                putStored(layout.scaleEntry(), bytes.length);
                zip.write(bytes);
                zip.closeArchiveEntry();
            } catch (IOException e) {
                throw failure(e);
            }
            Manifest.Quantization quantization = new Manifest.Quantization(layout.scheme(), blockSize,
                    layout.scaleEntry(), Sha256.of(bytes));
            written.add(() -> new Manifest.Tensor(name, dtype.name(), shape, entry, sha256.get(), quantization));
        }

        private void close() {
            if (count != expectedBytes) {
                throw new IllegalStateException("tensor " + name + ": wrote " + count + " bytes, expected " + expectedBytes);
            }
            try {
                zip.closeArchiveEntry();
            } catch (IOException e) {
                throw failure(e);
            }
        }
    }

    /**
     * Writes the manifest (with the tensors written, replacing whatever {@code manifest} lists, and the format
     * version they need: {@link Manifest#formatVersionFor}), checks
     * the finished file and renames it onto the target. Returns the manifest written.
     */
    public Manifest commit(Manifest manifest) {
        List<Manifest.Tensor> tensors = written.stream().map(Supplier::get).toList();
        Manifest complete = new Manifest(manifest.format(), Manifest.formatVersionFor(tensors), manifest.modelClass(),
                manifest.languageModel(), manifest.converter(), manifest.source(), manifest.dtype(), tensors,
                manifest.notes());
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
