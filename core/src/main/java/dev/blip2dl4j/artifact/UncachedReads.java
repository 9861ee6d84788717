package dev.blip2dl4j.artifact;

import com.sun.nio.file.ExtendedOpenOption;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Optional;

/**
 * Byte ranges of a file read with direct I/O ({@code O_DIRECT}), around the page cache. Copying gigabytes of weights
 * into process memory through ordinary reads leaves as many gigabytes of cached file pages behind: the kernel then
 * spends the next seconds reclaiming them and compacting memory for huge pages while the model runs, several times
 * slower meanwhile (bench/README.md). Where the file system refuses
 * direct I/O, ordinary reads.
 */
final class UncachedReads implements Closeable {
    /** Bytes per direct read: large enough for the disk, small enough for a bounce buffer. */
    private static final int CHUNK = 8 << 20;

    private final FileChannel direct;
    private final int block;
    private ByteBuffer bounce;

    private UncachedReads(FileChannel direct, int block) {
        this.direct = direct;
        this.block = block;
    }

    /** Direct reads of {@code path}, or empty where its file system does not do them. */
    static Optional<UncachedReads> open(Path path) {
        try {
            int block = Math.toIntExact(Files.getFileStore(path).getBlockSize());
            return Optional.of(new UncachedReads(FileChannel.open(path, StandardOpenOption.READ,
                    ExtendedOpenOption.DIRECT), block));
        } catch (IOException | UnsupportedOperationException | ArithmeticException e) {
            return Optional.empty();
        }
    }

    /**
     * Fills {@code target} from its position to its limit with the bytes at {@code offset}: block-aligned reads into
     * an aligned buffer (as direct I/O requires), the wanted part copied out.
     */
    synchronized void read(long offset, ByteBuffer target) throws IOException {
        if (bounce == null) {
            bounce = ByteBuffer.allocateDirect(CHUNK + block).alignedSlice(block);
        }
        long position = offset;
        while (target.hasRemaining()) {
            long alignedStart = position - position % block;
            int skip = (int) (position - alignedStart);
            int wanted = (int) Math.min((long) target.remaining() + skip, CHUNK);
            bounce.clear().limit((wanted + block - 1) / block * block);
            int read = 0;
            while (bounce.hasRemaining()) {
                int n = direct.read(bounce, alignedStart + read);
                if (n <= 0) {
                    break; // the end of the file: the last block is short
                }
                read += n;
            }
            int usable = Math.min(read - skip, target.remaining());
            if (usable <= 0) {
                throw new EOFException("the file ends at " + (alignedStart + read) + ", before byte " + position);
            }
            bounce.limit(skip + usable).position(skip);
            target.put(bounce);
            position += usable;
        }
    }

    @Override
    public void close() throws IOException {
        direct.close();
    }
}
