package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.Sha256;
import dev.blip2dl4j.convert.artifact.ArtifactWriter;
import dev.blip2dl4j.convert.tensor.DType;
import dev.blip2dl4j.convert.tensor.FloatConversion;
import dev.blip2dl4j.convert.tensor.SourceTensor;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Executes a {@link ConversionPlan}: reads each weight file once, front to back, in chunks; every chunk
 * is hashed into the file's SHA-256 (on a second thread) and, where it belongs to a tensor, converted
 * to the stored type, hashed into the tensor's SHA-256 and written into the artifact. Memory stays at a
 * few chunks whatever the checkpoint's size. Tensors that cannot be streamed in file order (fused
 * slots, strided views, a second view of a shared storage) are read separately afterwards.
 */
public final class TensorStreamer {
    /** A multiple of every element size, so that chunks never split an element. */
    private static final int CHUNK = 8 << 20;

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
    public static long totalBytes(ConversionPlan plan) throws IOException {
        long total = 0;
        for (Path file : plan.weightFiles()) {
            total += java.nio.file.Files.size(file);
        }
        return total;
    }

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
    private final Map<String, String> storedHashes = new HashMap<>();
    private final Map<TiedCopy, String> tiedHashes = new LinkedHashMap<>();
    private final byte[] converted;

    private TensorStreamer(ConversionPlan plan, ArtifactWriter writer, Progress progress) {
        this.plan = plan;
        this.writer = writer;
        this.progress = progress;
        this.converted = new byte[CHUNK * 4];
    }

    public static Result stream(ConversionPlan plan, ArtifactWriter writer, Progress progress) {
        return new TensorStreamer(plan, writer, progress).run();
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
        try (FileDigester digester = new FileDigester(CHUNK)) {
            for (Map.Entry<Path, List<Region>> file : sequential.entrySet()) {
                fileHashes.put(file.getKey(), scan(file.getKey(), file.getValue(), later, digester));
            }
        }
        byte[] buffer = new byte[CHUNK];
        for (Region region : later) {
            try (FileChannel channel = FileChannel.open(region.source.view().file(), StandardOpenOption.READ)) {
                copy(channel, region, buffer, null);
            } catch (IOException e) {
                throw unreadable(region.source.view().file(), e);
            }
        }
        for (PlannedTensor t : fused) {
            writeFused(t, (PlannedTensor.Fused) t.origin());
        }
        return new Result(fileHashes, tiedCopyWarnings());
    }

    private static void route(Region region, Map<Path, List<Region>> sequential, List<Region> later) {
        List<Region> inFile = sequential.get(key(region.source.view().file()));
        if (region.source.isContiguous() && inFile != null) {
            inFile.add(region);
        } else {
            later.add(region);
        }
    }

    private static Path key(Path file) {
        return file.toAbsolutePath().normalize();
    }

    /** Reads one file front to back; returns its SHA-256. */
    private String scan(Path file, List<Region> regions, List<Region> later, FileDigester digester) {
        regions.sort(Comparator.comparingLong(Region::start));
        digester.begin();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long position = 0;
            for (Region region : regions) {
                if (region.start() < position) {
                    later.add(region); // a second view of bytes already passed: read it again afterwards
                    continue;
                }
                hashOnly(channel, position, region.start(), digester);
                copy(channel, region, null, digester);
                position = region.end();
            }
            hashOnly(channel, position, channel.size(), digester);
            return digester.finish();
        } catch (IOException e) {
            throw unreadable(file, e);
        }
    }

    private void hashOnly(FileChannel channel, long from, long to, FileDigester digester) throws IOException {
        for (long at = from; at < to; ) {
            int length = (int) Math.min(CHUNK, to - at);
            byte[] chunk = digester.buffer();
            readFully(channel, chunk, length, at);
            digester.submit(length);
            progress.advance(length);
            at += length;
        }
    }

    /**
     * Streams one contiguous tensor: into the artifact (a planned tensor) or only into a hash (a tied
     * copy). With a digester the chunks also feed the file's hash; without, {@code buffer} is used.
     */
    private void copy(FileChannel channel, Region region, byte[] buffer, FileDigester digester) throws IOException {
        SourceTensor source = region.source;
        boolean planned = region.target != null;
        DType to = planned ? region.target.dtype() : plan.dtype();
        boolean roundThroughHalf = planned && ((PlannedTensor.Copy) region.target.origin()).roundThroughHalf();
        ArtifactWriter.TensorOutput output = planned ? writer.beginTensor(region.target.name(), to, region.target.shape()) : null;
        MessageDigest tiedDigest = planned ? null : Sha256.newDigest();
        if (!source.isContiguous()) {
            byte[] bytes = toArray(source.readFully());
            emit(bytes, bytes.length, source.dtype(), to, roundThroughHalf, output, tiedDigest);
        } else {
            for (long done = 0; done < source.byteSize(); ) {
                int length = (int) Math.min(CHUNK, source.byteSize() - done);
                byte[] chunk = digester != null ? digester.buffer() : buffer;
                readFully(channel, chunk, length, source.dataOffset() + done);
                emit(chunk, length, source.dtype(), to, roundThroughHalf, output, tiedDigest);
                if (digester != null) {
                    digester.submit(length);
                    progress.advance(length);
                }
                done += length;
            }
        }
        if (planned) {
            storedHashes.put(region.target.name(), output.finish());
        } else {
            tiedHashes.put(region.tied, Sha256.hex(tiedDigest));
        }
    }

    private void emit(byte[] chunk, int length, DType from, DType to, boolean roundThroughHalf,
                      ArtifactWriter.TensorOutput output, MessageDigest digest) {
        byte[] bytes = chunk;
        int outLength = length;
        if (from != to || roundThroughHalf) {
            int count = length / from.size();
            outLength = count * to.size();
            bytes = outLength <= converted.length ? converted : new byte[outLength];
            FloatConversion.convert(chunk, 0, from, bytes, 0, to, count, roundThroughHalf);
        }
        if (output != null) {
            output.write(bytes, 0, outLength);
        } else {
            digest.update(bytes, 0, outLength);
        }
    }

    private void writeFused(PlannedTensor target, PlannedTensor.Fused fused) {
        int total = Math.toIntExact(target.byteSize());
        int slotBytes = total / fused.slots().size();
        byte[] bytes = new byte[total];
        for (int i = 0; i < fused.slots().size(); i++) {
            Optional<SourceTensor> slot = fused.slots().get(i);
            if (slot.isPresent()) {
                SourceTensor source = slot.get();
                byte[] raw = toArray(source.readFully());
                int count = (int) source.numel();
                FloatConversion.convert(raw, 0, source.dtype(), bytes, i * slotBytes, target.dtype(), count, false);
            }
        }
        ArtifactWriter.TensorOutput output = writer.beginTensor(target.name(), target.dtype(), target.shape());
        output.write(bytes, 0, bytes.length);
        storedHashes.put(target.name(), output.finish());
    }

    private List<String> tiedCopyWarnings() {
        List<String> warnings = new ArrayList<>();
        tiedHashes.forEach((tied, hash) -> {
            String tiedToHash = storedHashes.get(tied.tiedTo());
            if (!hash.equals(tiedToHash)) {
                warnings.add(tied.source().name() + " differs from " + tied.tiedTo() + ", to which the model ties it; "
                        + "the model uses " + tied.tiedTo() + " (as transformers does) and the copy is not stored");
            }
        });
        return warnings;
    }

    private static void readFully(FileChannel channel, byte[] into, int length, long position) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(into, 0, length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) {
                throw new IOException("the file ended at byte " + (position + buffer.position())
                        + " (it was truncated while converting?)");
            }
        }
    }

    private static byte[] toArray(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        return bytes;
    }

    private static BadInputException unreadable(Path file, IOException e) {
        return new BadInputException(file, "cannot read (" + e.getMessage() + ")", e);
    }

}
