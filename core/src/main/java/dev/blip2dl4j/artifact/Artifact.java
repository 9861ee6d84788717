package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.tensor.DType;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipFile;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.zip.ZipEntry;

/**
 * A {@code .b2z} artifact opened for reading. The manifest and the small files are read on open; each
 * tensor is memory-mapped on request, so opening a 15 GB artifact costs almost no memory.
 */
public final class Artifact implements Closeable {
    private final Path path;
    private final ZipFile zip;
    private final FileChannel channel;
    private final boolean privateMappings;
    private final Manifest manifest;
    private final Map<String, Located> tensors;
    /** Opened on the first {@link #read}; empty where the file system does no direct I/O. */
    private Optional<UncachedReads> uncached;

    /** A tensor's bytes in the file, and its scales' for an I8 tensor (else -1 and 0). */
    private record Located(Manifest.Tensor tensor, DType dtype, long offset, long length, long scaleOffset,
                           long scaleLength) {
    }

    private Artifact(Path path, ZipFile zip, FileChannel channel, boolean privateMappings, Manifest manifest,
                     Map<String, Located> tensors) {
        this.path = path;
        this.zip = zip;
        this.channel = channel;
        this.privateMappings = privateMappings;
        this.manifest = manifest;
        this.tensors = tensors;
    }

    public static Artifact open(Path path) {
        ZipFile zip = null;
        FileChannel channel = null;
        try {
            zip = ZipFile.builder().setPath(path).get();
            Manifest manifest = readManifest(path, zip);
            Map<String, Located> tensors = new LinkedHashMap<>();
            for (Manifest.Tensor t : manifest.tensors()) {
                tensors.put(t.name(), locate(path, zip, t));
            }
            boolean privateMappings = true;
            try {
                // copy-on-write mappings need a writable channel; the file itself is never written
                channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            } catch (FileSystemException readOnly) {
                channel = FileChannel.open(path, StandardOpenOption.READ);
                privateMappings = false;
            }
            return new Artifact(path, zip, channel, privateMappings, manifest, tensors);
        } catch (NoSuchFileException e) {
            closeQuietly(zip, channel);
            throw new BadInputException(path, "no such file");
        } catch (IOException e) {
            closeQuietly(zip, channel);
            throw new BadInputException(path, "not a readable .b2z artifact (" + e.getMessage() + ")", e);
        } catch (RuntimeException e) {
            closeQuietly(zip, channel);
            throw e;
        }
    }

    private static Manifest readManifest(Path path, ZipFile zip) throws IOException {
        ZipArchiveEntry entry = zip.getEntry(ArtifactWriter.MANIFEST);
        if (entry == null) {
            throw new BadInputException(path, "has no " + ArtifactWriter.MANIFEST + ": it is a zip file but not a "
                    + "blip2-dl4j artifact (convert a checkpoint with `blip2 convert`)");
        }
        Manifest manifest;
        try (InputStream in = zip.getInputStream(entry)) {
            manifest = Manifest.fromJson(in.readAllBytes());
        }
        if (!Manifest.FORMAT.equals(manifest.format())) {
            throw new BadInputException(path, "manifest format is '" + manifest.format() + "', not " + Manifest.FORMAT);
        }
        requireReadable(path, manifest, Manifest.FORMAT_VERSION);
        return manifest;
    }

    /** The version check of a reader of versions up to {@code readsUpTo}: a newer artifact asks for an upgrade. */
    static void requireReadable(Path path, Manifest manifest, int readsUpTo) {
        if (manifest.formatVersion() > readsUpTo) {
            throw new BadInputException(path, "was written in artifact format version " + manifest.formatVersion()
                    + "; this build reads up to version " + readsUpTo + ": upgrade blip2-dl4j");
        }
    }

    private static Located locate(Path path, ZipFile zip, Manifest.Tensor t) {
        DType dtype = DType.fromSafetensorsName(t.dtype()).orElseThrow(() ->
                new BadInputException(path, "tensor '" + t.name() + "' has unknown dtype " + t.dtype()));
        long length = t.numel() * dtype.size();
        long offset = storedOffset(path, zip, t.name(), t.entry(), length);
        Manifest.Quantization q = t.quantization();
        if (dtype != DType.I8) {
            if (q != null) {
                throw new BadInputException(path, "tensor '" + t.name() + "' is " + dtype + " but has int8 scales: "
                        + "the artifact is damaged");
            }
            return new Located(t, dtype, offset, length, -1, 0);
        }
        if (q == null || !Manifest.Quantization.SYMMETRIC.equals(q.scheme()) || t.shape().length != 2
                || q.blockSize() < 0 || (q.blockSize() > 0 && t.shape()[1] % q.blockSize() != 0)
                || q.scaleEntry() == null || q.scaleSha256() == null) {
            throw new BadInputException(path, "int8 tensor '" + t.name() + "' " + Arrays.toString(t.shape())
                    + " has no valid scale table in the manifest (" + q + "): the artifact is damaged");
        }
        long scaleLength = t.shape()[0] * q.scalesPerRow(t.shape()) * Float.BYTES;
        return new Located(t, dtype, offset, length, storedOffset(path, zip, t.name() + "'s scales", q.scaleEntry(),
                scaleLength), scaleLength);
    }

    private static long storedOffset(Path path, ZipFile zip, String what, String entryName, long length) {
        ZipArchiveEntry entry = zip.getEntry(entryName);
        if (entry == null) {
            throw new BadInputException(path, "the manifest lists tensor '" + what + "' but the entry "
                    + entryName + " is missing: the artifact is damaged");
        }
        if (entry.getMethod() != ZipEntry.STORED || entry.getSize() != length) {
            throw new BadInputException(path, "entry " + entryName + " is not " + length + " stored bytes (method "
                    + entry.getMethod() + ", size " + entry.getSize() + "): the artifact is damaged");
        }
        return entry.getDataOffset();
    }

    public Path path() {
        return path;
    }

    public Manifest manifest() {
        return manifest;
    }

    public Optional<Manifest.Tensor> tensor(String name) {
        return Optional.ofNullable(tensors.get(name)).map(Located::tensor);
    }

    /** A small file stored beside the tensors (config.json, tokenizer/tokenizer.json, ...), if present. */
    public Optional<byte[]> file(String entryName) {
        ZipArchiveEntry entry = zip.getEntry(entryName);
        if (entry == null || entry.isDirectory()) {
            return Optional.empty();
        }
        try (InputStream in = zip.getInputStream(entry)) {
            return Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + entryName + " from " + path, e);
        }
    }

    /** Names of every entry that is not a tensor or its scales: config, tokenizer and processor files, the manifest. */
    public List<String> fileNames() {
        List<String> names = new ArrayList<>();
        zip.getEntries().asIterator().forEachRemaining(e -> {
            if (!e.getName().startsWith(ArtifactWriter.TENSOR_PREFIX) && !e.getName().startsWith(ArtifactWriter.SCALE_PREFIX)
                    && !e.isDirectory()) {
                names.add(e.getName());
            }
        });
        return names;
    }

    /**
     * The tensor's bytes, memory-mapped, little-endian. Copy-on-write where the file is writable, so
     * that an accidental write changes only this process's view; read-only otherwise.
     */
    public ByteBuffer map(String name) {
        Located located = located(name);
        return map(name, located.offset, located.length);
    }

    /**
     * An I8 tensor's scales, memory-mapped ({@link Manifest.Quantization} says their layout), after checking
     * their SHA-256 and that each is finite and not negative: a damaged table would scale every value wrongly.
     */
    public FloatBuffer scales(String name) {
        Located located = located(name);
        if (located.dtype != DType.I8) {
            throw new IllegalArgumentException("tensor '" + name + "' of " + path + " is " + located.dtype
                    + " and has no scales");
        }
        ByteBuffer bytes = map(name, located.scaleOffset, located.scaleLength);
        String entry = located.tensor.quantization().scaleEntry();
        if (!Sha256.of(bytes.duplicate()).equals(located.tensor.quantization().scaleSha256())) {
            throw new BadInputException(path, "the scale table of tensor '" + name + "' (" + entry + ") does not "
                    + "match its SHA-256 in the manifest: the artifact is damaged; convert the model again");
        }
        FloatBuffer scales = bytes.asFloatBuffer();
        for (int i = 0; i < scales.limit(); i++) {
            float scale = scales.get(i);
            if (!(scale >= 0) || Float.isInfinite(scale)) {
                throw new BadInputException(path, "the scale table of tensor '" + name + "' (" + entry + ") holds "
                        + scale + " at " + i + ": the artifact is damaged; convert the model again");
            }
        }
        return scales;
    }

    private ByteBuffer map(String name, long offset, long length) {
        try {
            FileChannel.MapMode mode = privateMappings ? FileChannel.MapMode.PRIVATE : FileChannel.MapMode.READ_ONLY;
            return channel.map(mode, offset, length).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot map tensor '" + name + "' of " + path, e);
        }
    }

    private Located located(String name) {
        Located located = tensors.get(name);
        if (located == null) {
            throw new IllegalArgumentException(path + " has no tensor '" + name + "'");
        }
        return located;
    }

    /**
     * Reads the tensor's bytes into {@code target} from its position, which must have exactly the tensor's length
     * remaining: a copy without a mapping, so the process holds only the copy (page-cache pages a mapping touched
     * would count towards its resident memory as long as the mapping lives), read around the page cache where the
     * file system allows ({@link UncachedReads}).
     */
    public synchronized void read(String name, ByteBuffer target) {
        Located located = tensors.get(name);
        if (located == null) {
            throw new IllegalArgumentException(path + " has no tensor '" + name + "'");
        }
        if (target.remaining() != located.length) {
            throw new IllegalArgumentException("tensor '" + name + "' has " + located.length + " bytes, the target "
                    + target.remaining());
        }
        try {
            if (uncached == null) {
                uncached = UncachedReads.open(path);
            }
            if (uncached.isPresent()) {
                uncached.get().read(located.offset, target);
                return;
            }
            long at = located.offset;
            while (target.hasRemaining()) {
                int read = channel.read(target, at);
                if (read < 0) {
                    throw new BadInputException(path, "ends inside tensor '" + name + "': the artifact is truncated");
                }
                at += read;
            }
        } catch (EOFException e) {
            throw new BadInputException(path, "ends inside tensor '" + name + "': the artifact is truncated");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tensor '" + name + "' of " + path, e);
        }
    }

    /** The bytes of every tensor as stored, int8 scales included: what the weights take in memory. */
    public long tensorBytes() {
        return tensors.values().stream().mapToLong(t -> t.length + t.scaleLength).sum();
    }

    /** The element type of a tensor. */
    public DType dtype(String name) {
        Located located = tensors.get(name);
        if (located == null) {
            throw new IllegalArgumentException(path + " has no tensor '" + name + "'");
        }
        return located.dtype;
    }

    @Override
    public void close() {
        closeQuietly(zip, channel, uncached == null ? null : uncached.orElse(null));
    }

    private static void closeQuietly(Closeable... closeables) {
        for (Closeable c : closeables) {
            if (c != null) {
                try {
                    c.close();
                } catch (IOException ignored) {
                    // closing a reader: nothing was written that could be lost
                }
            }
        }
    }
}
