package dev.blip2dl4j.convert.plan;

import com.sun.nio.file.ExtendedOpenOption;
import dev.blip2dl4j.artifact.Sha256;

import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;

/**
 * Reads one file front to back in blocks, on a background thread, and hashes every block on another,
 * while the caller works on the blocks in order. Three things matter at checkpoint sizes:
 * <ul>
 *   <li>a file that is not wholly in the page cache is read around it (O_DIRECT) where the file system allows:
 *   a 15 GB checkpoint and its 15 GB artifact do not fit in the cache together, and evicting one for the other
 *   cost more kernel time than the copy itself (bench/README.md); a file the cache holds whole (just downloaded
 *   or written) is read from it, as {@code cp} would: reading it from the disk again cost the disk's time, which
 *   the artifact's writing needs;</li>
 *   <li>SHA-256 (slower per core than the disk, bench/README.md) runs on its own thread for the file, and on
 *   another ({@link #hash}, the caller's {@link Hasher}) for the tensors the caller streams from it, while the
 *   caller's thread writes: writing through the page cache costs as much CPU here as hashing does;</li>
 *   <li>reading runs ahead of the caller by a ring of a few blocks, so the disk is never idle.</li>
 * </ul>
 */
final class FileScan implements Closeable {
    /** Blocks in flight; memory is RING x block size, outside the Java heap. */
    private static final int RING = 4;
    private static final int ALIGNMENT = 4096;
    private static final long RESIDENCY_SLICE = 1L << 30;

    /** One block of the file: its offset and its bytes (position 0, limit = length read). */
    static final class Block {
        private final long offset;
        private final ByteBuffer data;
        /** The file's hashing of this block, and the last tensor hashing step that reads its bytes. */
        private final Future<?> fileHashed;
        private Future<?> tensorHashed;

        private Block(long offset, ByteBuffer data, Future<?> fileHashed) {
            this.offset = offset;
            this.data = data;
            this.fileHashed = fileHashed;
        }

        long offset() {
            return offset;
        }

        ByteBuffer data() {
            return data;
        }
    }

    private final Path file;
    private final long size;
    private final int blockSize;
    private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(RING);
    private final BlockingQueue<Object> ready = new ArrayBlockingQueue<>(RING + 1);
    private final Hasher fileHasher = new Hasher("sha256-file");
    private final Hasher tensorHasher;
    private final MessageDigest digest = Sha256.newDigest();
    private final Thread reader;

    /**
     * @param blockSize    a multiple of 4096
     * @param tensorHasher where {@link #hash} hashes the tensors' bytes
     */
    FileScan(Path file, int blockSize, Hasher tensorHasher) throws IOException {
        this.file = file;
        this.size = Files.size(file);
        this.blockSize = blockSize;
        this.tensorHasher = tensorHasher;
        for (int i = 0; i < RING; i++) {
            free.add(ByteBuffer.allocateDirect(blockSize + ALIGNMENT).alignedSlice(ALIGNMENT));
        }
        reader = daemon("file-reader").newThread(this::readAll);
        reader.start();
    }

    long size() {
        return size;
    }

    /** The next block, or null after the last. Give each back with {@link #release} once used. */
    Block next() throws IOException {
        Object item = take(ready);
        if (item instanceof IOException e) {
            throw new IOException(e.getMessage(), e);
        }
        return item == END ? null : (Block) item;
    }

    /**
     * Hashes {@code length} bytes of a block from {@code from} into another digest (a tensor's), on the
     * tensor hasher, after everything submitted before: a tensor spanning blocks is hashed in order.
     */
    void hash(MessageDigest tensorDigest, Block block, int from, int length) {
        ByteBuffer slice = block.data.duplicate().position(from).limit(from + length);
        block.tensorHashed = tensorHasher.update(tensorDigest, slice);
    }

    /** Returns a block's buffer for reuse, once every hash of its bytes is done. */
    void release(Block block) {
        await(block.fileHashed);
        if (block.tensorHashed != null) {
            await(block.tensorHashed);
        }
        free.add(block.data.clear());
    }

    /** The file's SHA-256 in hex; call after {@link #next()} has returned null. */
    String sha256() {
        return await(fileHasher.hex(digest)); // one thread, in order: every block before is done
    }

    private static final Object END = new Object();

    private void readAll() {
        try (FileChannel channel = open()) {
            for (long offset = 0; offset < size; ) {
                ByteBuffer buffer = take(free);
                while (buffer.hasRemaining() && offset + buffer.position() < size) {
                    if (channel.read(buffer, offset + buffer.position()) < 0) {
                        throw new IOException("the file ended at byte " + (offset + buffer.position())
                                + " although its size is " + size + " (it changed while being read?)");
                    }
                }
                int length = (int) Math.min(buffer.position(), size - offset);
                ByteBuffer data = buffer.flip().limit(length);
                ByteBuffer forDigest = data.duplicate();
                Future<?> digested = fileHasher.update(digest, forDigest);
                ready.put(new Block(offset, data, digested));
                offset += length;
            }
            ready.put(END);
        } catch (IOException e) {
            putQuietly(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException e) {
            putQuietly(new IOException(e.toString(), e));
        }
    }

    /**
     * Through the page cache where it holds the whole file; else O_DIRECT where the file system supports it (not
     * tmpfs, for one); else the page cache.
     */
    private FileChannel open() throws IOException {
        FileChannel cached = FileChannel.open(file, StandardOpenOption.READ);
        if (inPageCache(cached, size)) {
            return cached;
        }
        try {
            FileChannel direct = FileChannel.open(file, StandardOpenOption.READ, ExtendedOpenOption.DIRECT);
            cached.close();
            return direct;
        } catch (IOException | UnsupportedOperationException e) {
            return cached;
        }
    }

    /** Whether every page of the file is cached (mincore(2) over mappings that are never touched). */
    private static boolean inPageCache(FileChannel channel, long size) throws IOException {
        for (long at = 0; at < size; at += RESIDENCY_SLICE) {
            if (!channel.map(FileChannel.MapMode.READ_ONLY, at, Math.min(RESIDENCY_SLICE, size - at)).isLoaded()) {
                return false;
            }
        }
        return true;
    }

    private void putQuietly(Object item) {
        try {
            ready.put(item);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        reader.interrupt();
        fileHasher.close();
    }

    private static <T> T take(BlockingQueue<T> queue) {
        try {
            return queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while reading", e);
        }
    }

    private <T> T await(Future<T> f) {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while hashing", e);
        } catch (ExecutionException e) {
            throw new UncheckedIOException(new IOException("hashing " + file + " failed", e.getCause()));
        }
    }

    private static ThreadFactory daemon(String name) {
        return r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        };
    }
}
