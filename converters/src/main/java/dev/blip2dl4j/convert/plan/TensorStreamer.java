package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.convert.tensor.SourceTensor;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Executes a {@link ConversionPlan}: reads each weight file once, front to back (see {@link FileScan},
 * which also hashes the file); the bytes of every tensor are converted to the stored type, hashed and
 * written into the artifact as they pass. Memory stays at a few blocks whatever the checkpoint's size.
 * Tensors that cannot be streamed in file order (fused slots, strided views, a second view of a shared
 * storage) are read separately afterwards; they are small or rare.
 */
public final class TensorStreamer {
    /** A multiple of the 4096-byte alignment direct I/O needs. */
    private static final int BLOCK = 8 << 20;
    /**
     * Bytes handed to the artifact per write: the copy out of the block, the zip's CRC and the channel's copy into
     * its own direct buffer then work within the core's second-level cache (bench/README.md).
     */
    private static final int STEP = 1 << 20;

    /** Told how many more source bytes have been processed. */
    @FunctionalInterface
    public interface Progress {
        void advance(long bytes);
    }

    /**
     * @param fileSha256 the SHA-256 of every weight file
     * @param warnings   tied copies that differ from the tensor they are tied to
     */
    public record Result(Map<Path, String> fileSha256, List<String> warnings) {
    }

    /** Bytes the progress bar counts: every weight file once. */
    public static long totalBytes(ConversionPlan plan) {
        long total = 0;
        for (Path file : plan.weightFiles()) {
            try {
                total += Files.size(file);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + file, e);
            }
        }
        return total;
    }

    /** A contiguous run of a file holding one tensor: stored (target) or only checked (tied). */
    private record Region(SourceTensor source, PlannedTensor target, TiedCopy tied) {
        long start() {
            return source.dataOffset();
        }

        long end() {
            return source.dataOffset() + source.byteSize();
        }
    }

    private final ConversionPlan plan;
    private final ArtifactWriter writer;
    private final Progress progress;
    private final Map<String, Supplier<String>> storedHashes = new HashMap<>();
    private final Map<TiedCopy, Supplier<String>> tiedHashes = new LinkedHashMap<>();
    private final int blockSize;
    private final int step;
    /** What one sink at a time copies out of a block, or converts it into. */
    private final byte[] staging;
    /** The tensors' hashing, beside the file's (FileScan's own thread). */
    private final Hasher tensorHasher = new Hasher("sha256-tensors");

    private TensorStreamer(ConversionPlan plan, ArtifactWriter writer, Progress progress, int blockSize, int step) {
        this.plan = plan;
        this.writer = writer;
        this.progress = progress;
        this.blockSize = blockSize;
        this.step = step;
        this.staging = new byte[step];
    }

    public static Result stream(ConversionPlan plan, ArtifactWriter writer, Progress progress) {
        return stream(plan, writer, progress, BLOCK, STEP);
    }

    /** With other sizes: tests split elements across blocks and steps. A step holds at least one element of any type. */
    static Result stream(ConversionPlan plan, ArtifactWriter writer, Progress progress, int blockSize, int step) {
        TensorStreamer streamer = new TensorStreamer(plan, writer, progress, blockSize, step);
        try {
            return streamer.run();
        } finally {
            streamer.tensorHasher.close();
        }
    }

    private Result run() {
        Map<Path, List<Region>> sequential = new LinkedHashMap<>();
        plan.weightFiles().forEach(f -> sequential.put(key(f), new ArrayList<>()));
        List<Region> later = new ArrayList<>();
        List<PlannedTensor> fused = new ArrayList<>();
        for (PlannedTensor t : plan.tensors()) {
            if (t.origin() instanceof PlannedTensor.Copy copy) {
                route(new Region(copy.source(), t, null), sequential, later);
            } else {
                fused.add(t);
            }
        }
        for (TiedCopy tied : plan.tiedCopies()) {
            route(new Region(tied.source(), null, tied), sequential, later);
        }
        Map<Path, String> fileHashes = new LinkedHashMap<>();
        sequential.forEach((file, regions) -> fileHashes.put(file, scan(file, regions, later)));
        for (Region region : later) {
            Sink sink = sink(region, null);
            sink.accept(region.source.readFully());
            sink.finish();
        }
        for (PlannedTensor t : fused) {
            writeFused(t);
        }
        return new Result(fileHashes, tiedCopyWarnings());
    }

    private static void route(Region region, Map<Path, List<Region>> sequential, List<Region> later) {
        List<Region> inFile = sequential.get(key(region.source.view().file()));
        if (region.source.isContiguous() && region.source.byteSize() > 0 && inFile != null) {
            inFile.add(region);
        } else {
            later.add(region);
        }
    }

    private static Path key(Path file) {
        return file.toAbsolutePath().normalize();
    }

    /** Reads one file front to back, feeding each region's bytes to its sink; returns the file's SHA-256. */
    private String scan(Path file, List<Region> regions, List<Region> later) {
        regions.sort(Comparator.comparingLong(Region::start));
        List<Region> inOrder = new ArrayList<>();
        long end = 0;
        for (Region region : regions) {
            if (region.start() < end) {
                later.add(region); // a second view of bytes already passed: read it again afterwards
            } else {
                inOrder.add(region);
                end = region.end();
            }
        }
        try (FileScan scan = new FileScan(file, blockSize, tensorHasher)) {
            int next = 0;
            Sink open = null;
            for (FileScan.Block block; (block = scan.next()) != null; ) {
                long blockStart = block.offset();
                long blockEnd = blockStart + block.data().limit();
                while (next < inOrder.size() && inOrder.get(next).start() < blockEnd) {
                    Region region = inOrder.get(next);
                    if (open == null) {
                        open = sink(region, scan);
                    }
                    long from = Math.max(region.start(), blockStart);
                    long to = Math.min(region.end(), blockEnd);
                    int length = (int) (to - from);
                    if (open.hashedByScan()) {
                        scan.hash(open.digest, block, (int) (from - blockStart), length);
                    }
                    open.accept(block.data().slice((int) (from - blockStart), length));
                    if (to < region.end()) {
                        break; // the region goes on in the next block
                    }
                    open.finish();
                    open = null;
                    next++;
                }
                progress.advance(block.data().limit());
                scan.release(block);
            }
            if (next < inOrder.size()) {
                throw new BadInputException(file, "ended before tensor '" + inOrder.get(next).source.name() + "'");
            }
            return scan.sha256();
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read (" + e.getMessage() + ")", e);
        }
    }

    /**
     * Where a region's bytes go. In a scan, bytes stored unchanged are hashed on the scan's hashing
     * thread straight from its blocks, so that this thread only writes; converted bytes, and bytes read
     * outside a scan, are hashed here.
     */
    private Sink sink(Region region, FileScan scan) {
        DType to = region.target != null ? region.target.dtype() : storedType(region.tied.tiedTo());
        boolean roundThroughHalf = region.target != null && ((PlannedTensor.Copy) region.target.origin()).roundThroughHalf();
        if (region.target != null && to == DType.I8) {
            // the sink widens to float32 without hashing; the rows are hashed as int8, as stored
            PlannedTensor t = region.target;
            int blockSize = plan.storage().blockSize(t.shape());
            Int8Rows rows = new Int8Rows(t.name(), t.shape(), blockSize, writer.beginQuantized(t.name(), t.shape(), blockSize),
                    tensorHasher);
            return new Sink(region.source.dtype(), DType.F32, roundThroughHalf, null, false, rows::accept,
                    ignored -> storedHashes.put(t.name(), rows.finish()));
        }
        boolean hashedByScan = scan != null && region.source.dtype() == to && !roundThroughHalf;
        if (region.target != null) {
            PlannedTensor t = region.target;
            ArtifactWriter.TensorOutput output = writer.beginTensor(t.name(), to, t.shape());
            return new Sink(region.source.dtype(), to, roundThroughHalf, hashedByScan ? scan : null, true, output::write,
                    sha256 -> {
                        output.finish(sha256);
                        storedHashes.put(t.name(), sha256);
                    });
        }
        return new Sink(region.source.dtype(), to, false, hashedByScan ? scan : null, true, (bytes, offset, length) -> {
        }, sha256 -> tiedHashes.put(region.tied, sha256));
    }

    /** The type a tensor is stored in: a tied copy is compared with its target as stored. */
    private DType storedType(String name) {
        return plan.tensors().stream().filter(t -> t.name().equals(name)).findFirst().map(PlannedTensor::dtype)
                .orElse(DType.F32);
    }

    /** Where bytes go: into an artifact entry, or nowhere (a tied copy is only hashed). */
    @FunctionalInterface
    private interface ByteConsumer {
        void accept(byte[] bytes, int offset, int length);
    }

    /**
     * One tensor's bytes on their way out, converted to the stored type when it differs, and hashed.
     * Blocks split the file at arbitrary offsets, so an element may straddle two calls: its first bytes
     * wait here.
     */
    private final class Sink {
        private final DType from;
        private final DType to;
        private final boolean roundThroughHalf;
        /** The scan hashing this tensor's bytes from its blocks, or null to hash them here. */
        private final FileScan hashingScan;
        /** False where the consumer hashes what it makes of the bytes (int8). */
        private final boolean hashes;
        private final ByteConsumer out;
        private final Consumer<Supplier<String>> onFinish;
        private final MessageDigest digest = Sha256.newDigest();
        private final byte[] pending;
        private int pendingBytes;

        Sink(DType from, DType to, boolean roundThroughHalf, FileScan hashingScan, boolean hashes, ByteConsumer out,
             Consumer<Supplier<String>> onFinish) {
            this.from = from;
            this.to = to;
            this.roundThroughHalf = roundThroughHalf;
            this.hashingScan = hashingScan;
            this.hashes = hashes;
            this.out = out;
            this.onFinish = onFinish;
            this.pending = new byte[from.size()];
        }

        /** Whether the scan hashes this tensor (its bytes are stored as read). */
        boolean hashedByScan() {
            return hashingScan != null;
        }

        /** Takes the buffer's remaining bytes, in steps of at most {@link #step}. */
        void accept(ByteBuffer bytes) {
            if (from == to && !roundThroughHalf) {
                while (bytes.hasRemaining()) {
                    int length = Math.min(bytes.remaining(), step);
                    bytes.get(staging, 0, length);
                    out.accept(staging, 0, length);
                    if (hashingScan == null && hashes) {
                        digest.update(staging, 0, length);
                    }
                }
                return;
            }
            while (pendingBytes > 0 && bytes.hasRemaining()) {
                pending[pendingBytes++] = bytes.get();
                if (pendingBytes == pending.length) {
                    convert(ByteBuffer.wrap(pending), 1);
                    pendingBytes = 0;
                }
            }
            int perStep = step / Math.max(from.size(), to.size());
            for (int whole; (whole = bytes.remaining() / from.size()) > 0; ) {
                convert(bytes, Math.min(whole, perStep));
            }
            pendingBytes = bytes.remaining();
            bytes.get(pending, 0, pendingBytes);
        }

        /** Converts {@code count} elements from the buffer's position, advancing it. */
        private void convert(ByteBuffer bytes, int count) {
            int outBytes = count * to.size();
            FloatConversion.convert(bytes, from, staging, 0, to, count, roundThroughHalf);
            out.accept(staging, 0, outBytes);
            if (hashes) {
                digest.update(staging, 0, outBytes);
            }
        }

        void finish() {
            if (pendingBytes != 0) {
                throw new IllegalStateException("a tensor ended inside an element");
            }
            if (hashingScan != null) {
                Future<String> hex = tensorHasher.hex(digest);
                onFinish.accept(() -> Hasher.await(hex));
            } else {
                String hex = Sha256.hex(digest);
                onFinish.accept(() -> hex);
            }
        }
    }

    /** Fused tensors are biases, which the storage policy keeps in a floating-point type. */
    private void writeFused(PlannedTensor target) {
        byte[] bytes = target.readAll();
        ArtifactWriter.TensorOutput output = writer.beginTensor(target.name(), target.dtype(), target.shape());
        output.write(bytes, 0, bytes.length);
        String hex = Sha256.of(bytes);
        output.finish(() -> hex);
        storedHashes.put(target.name(), () -> hex);
    }

    private List<String> tiedCopyWarnings() {
        List<String> warnings = new ArrayList<>();
        tiedHashes.forEach((tied, hash) -> {
            Supplier<String> tiedTo = storedHashes.get(tied.tiedTo());
            if (tiedTo == null || !hash.get().equals(tiedTo.get())) {
                warnings.add(tied.source().name() + " differs from " + tied.tiedTo() + ", to which the model ties it; "
                        + "the model uses " + tied.tiedTo() + " (as transformers does) and the copy is not stored");
            }
        });
        return warnings;
    }
}
