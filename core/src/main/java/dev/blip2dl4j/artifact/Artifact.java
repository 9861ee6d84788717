package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.Shapes;
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
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;

/**
 * A {@code .b2z} artifact opened for reading. The manifest and the small files are read on open; each
 * tensor is memory-mapped on request, so opening a 15 GB artifact costs almost no memory.
 */
public final class Artifact implements Closeable {
    /** The entry a model's config is stored under, as in a checkpoint folder. */
    public static final String CONFIG = "config.json";
    /** The types the converter stores weights in (--dtype); int8 with its scales, checked where they are read. */
    private static final Set<DType> WEIGHT_TYPES = Collections.unmodifiableSet(EnumSet.of(DType.F32, DType.F16,
            DType.BF16, DType.I8));
    private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");
    private static final int HASH_CHUNK = 4 << 20;

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
                Located located = locate(path, zip, t);
                if (tensors.put(t.name(), located) != null) {
                    throw new BadInputException(path, "the manifest lists tensor '" + t.name() + "' twice: the"
                            + " artifact is damaged");
                }
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
        Manifest manifest = Manifest.fromJson(readChecked(path, zip, entry));
        if (!Manifest.FORMAT.equals(manifest.format())) {
            throw new BadInputException(path, "manifest format is '" + manifest.format() + "', not " + Manifest.FORMAT);
        }
        requireReadable(path, manifest, Manifest.FORMAT_VERSION);
        if (manifest.tensors() == null) {
            throw new BadInputException(path, "the manifest lists no tensors: the artifact is damaged");
        }
        return manifest;
    }

    /** The version check of a reader of versions up to {@code readsUpTo}: a newer artifact asks for an upgrade. */
    static void requireReadable(Path path, Manifest manifest, int readsUpTo) {
        if (manifest.formatVersion() > readsUpTo) {
            throw new BadInputException(path, "was written in artifact format version " + manifest.formatVersion()
                    + "; this build reads up to version " + readsUpTo + ": upgrade blip2-dl4j");
        }
    }

    /** Every field a tensor's entry in the manifest needs, each a value the format allows. */
    private static DType checkEntry(Path path, Manifest.Tensor t) {
        String where = "the manifest's tensor '" + (t == null ? null : t.name()) + "'";
        if (t == null || t.name() == null || t.dtype() == null || t.shape() == null || t.entry() == null || t.sha256() == null) {
            throw new BadInputException(path, where + " lacks its name, dtype, shape, entry or sha256: the"
                    + " artifact is damaged");
        }
        if (!SHA256_HEX.matcher(t.sha256()).matches()) {
            throw new BadInputException(path, where + " has sha256 '" + t.sha256() + "', not 64 hex digits: the"
                    + " artifact is damaged");
        }
        DType dtype = DType.fromSafetensorsName(t.dtype()).orElseThrow(() ->
                new BadInputException(path, where + " has unknown dtype " + t.dtype() + ": the artifact is damaged"));
        if (Arrays.stream(t.shape()).anyMatch(d -> d < 0)) {
            throw new BadInputException(path, where + " has shape " + Arrays.toString(t.shape())
                    + ", with a negative size: the artifact is damaged");
        }
        return dtype;
    }

    /** An entry's bytes, checked against the CRC-32 the zip records for them. */
    private static byte[] readChecked(Path path, ZipFile zip, ZipArchiveEntry entry) {
        byte[] bytes;
        try (InputStream in = zip.getInputStream(entry)) {
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new BadInputException(path, "entry " + entry.getName() + " cannot be read (" + e.getMessage()
                    + "): the artifact is damaged", e);
        }
        CRC32 crc = new CRC32();
        crc.update(bytes);
        if (bytes.length != entry.getSize() || crc.getValue() != entry.getCrc()) {
            throw new BadInputException(path, "entry " + entry.getName() + " is damaged: its " + bytes.length
                    + " bytes have CRC-32 " + Long.toHexString(crc.getValue()) + ", the zip records "
                    + entry.getSize() + " bytes with CRC-32 " + Long.toHexString(entry.getCrc()));
        }
        return bytes;
    }

    private static Located locate(Path path, ZipFile zip, Manifest.Tensor t) {
        DType dtype = checkEntry(path, t);
        long length;
        try {
            length = Math.multiplyExact(Shapes.numel(t.shape()), dtype.size());
        } catch (ArithmeticException e) {
            throw new BadInputException(path, "the manifest's tensor '" + t.name() + "' has shape "
                    + Arrays.toString(t.shape()) + ", more bytes than 64 bits can count: the artifact is damaged");
        }
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

    /** The config.json stored with the tensors, read as any config is (every size bounded). */
    public Blip2Config config() {
        byte[] json = file(CONFIG).orElseThrow(() -> new BadInputException(path, "has no " + CONFIG
                + ": the artifact is damaged"));
        return Blip2Config.parse(new String(json, StandardCharsets.UTF_8), path.resolve(CONFIG));
    }

    /**
     * The {@link #config} of the model this artifact holds, checked against the manifest: every parameter its
     * layout lists is there with its shape and a weight type, and nothing else is. Cheap: only the config is read.
     */
    public Blip2Config modelConfig() {
        Blip2Config config = config();
        ParameterLayout layout = ParameterLayout.of(config);
        List<String> problems = new ArrayList<>();
        for (ParamSpec p : layout.parameters()) {
            Located located = tensors.get(p.name());
            if (located == null) {
                problems.add("'" + p.name() + "' " + Arrays.toString(p.shape()) + " is missing");
            } else if (!Arrays.equals(located.tensor.shape(), p.shape())) {
                problems.add("'" + p.name() + "' is " + Arrays.toString(located.tensor.shape()) + ", not "
                        + Arrays.toString(p.shape()));
            } else if (!WEIGHT_TYPES.contains(located.dtype)) {
                problems.add("'" + p.name() + "' is " + located.dtype + ", not one of " + WEIGHT_TYPES);
            }
        }
        tensors.keySet().stream().filter(name -> !layout.contains(name))
                .forEach(name -> problems.add("'" + name + "' is not a parameter of this model"));
        if (!problems.isEmpty()) {
            throw new BadInputException(path, "does not hold the model its " + CONFIG + " describes: "
                    + String.join("; ", problems.subList(0, Math.min(5, problems.size())))
                    + (problems.size() > 5 ? "; and " + (problems.size() - 5) + " more" : "")
                    + ": the artifact is damaged, or its " + CONFIG + " belongs to another model");
        }
        return config;
    }

    /** Every small file (configs, tokenizer, manifest) against the CRC-32 the zip records for it. */
    public void checkFiles() {
        fileNames().forEach(this::file);
    }

    /**
     * Every tensor's bytes against the SHA-256 its manifest records, so that a damaged artifact is refused
     * instead of computing with what it holds. Hashing reads every byte (about 0.6 s per GB and core, README),
     * so a file that passed is stamped ({@link CheckedStamp}) and, while unchanged, not hashed again.
     */
    public void checkTensors() {
        Optional<CheckedStamp> stamp = CheckedStamp.of(path);
        if (stamp.isPresent() && stamp.get().isRecorded()) {
            return;
        }
        checkHashes(hashes());
        stamp.ifPresent(CheckedStamp::record);
    }

    /** Throws, naming the tensors, unless every hash (from {@link #hashes}) is the manifest's. */
    public void checkHashes(Map<String, String> hashes) {
        List<String> damaged = manifest.tensors().stream()
                .filter(t -> !t.sha256().equals(hashes.get(t.name()))).map(Manifest.Tensor::name).toList();
        if (!damaged.isEmpty()) {
            throw new BadInputException(path, damaged.size() + " tensors do not match the SHA-256 in the manifest,"
                    + " so the artifact is damaged: " + String.join(", ", damaged.subList(0, Math.min(5, damaged.size())))
                    + (damaged.size() > 5 ? " ..." : "") + "; convert or download it again");
        }
    }

    /** The SHA-256 of every tensor's bytes as stored, in manifest order, hashed from the file in parallel. */
    public Map<String, String> hashes() {
        Map<String, String> hashes = new ConcurrentHashMap<>();
        tensors.values().parallelStream().forEach(located -> hashes.put(located.tensor.name(), hash(located)));
        Map<String, String> ordered = new LinkedHashMap<>();
        tensors.keySet().forEach(name -> ordered.put(name, hashes.get(name)));
        return ordered;
    }

    private String hash(Located located) {
        MessageDigest digest = Sha256.newDigest();
        ByteBuffer buffer = ByteBuffer.allocate((int) Math.min(HASH_CHUNK, located.length));
        try {
            for (long at = located.offset, end = located.offset + located.length; at < end; ) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), end - at));
                int read = channel.read(buffer, at);
                if (read < 0) {
                    throw new BadInputException(path, "ends inside tensor '" + located.tensor.name()
                            + "': the artifact is truncated");
                }
                digest.update(buffer.flip());
                at += read;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read tensor '" + located.tensor.name() + "' of " + path, e);
        }
        return Sha256.hex(digest);
    }

    public Manifest manifest() {
        return manifest;
    }

    public Optional<Manifest.Tensor> tensor(String name) {
        return Optional.ofNullable(tensors.get(name)).map(Located::tensor);
    }

    /**
     * A small file stored beside the tensors (config.json, tokenizer/tokenizer.json, ...), if present, checked
     * against its CRC-32.
     */
    public Optional<byte[]> file(String entryName) {
        ZipArchiveEntry entry = zip.getEntry(entryName);
        if (entry == null || entry.isDirectory()) {
            return Optional.empty();
        }
        return Optional.of(readChecked(path, zip, entry));
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
