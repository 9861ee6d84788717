package dev.blip2dl4j.convert.plan;

import java.io.Closeable;
import dev.blip2dl4j.convert.Sha256;

import java.security.MessageDigest;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Hashes a file's bytes on a second thread while the converting thread reads, converts, hashes and
 * writes the same bytes: SHA-256 runs at ~1.2 GB/s per core here, so hashing both the source file and
 * every tensor on one thread would double a conversion's time. Chunks are handed over in a ring of
 * buffers; a buffer is reused only once its digest step is done.
 */
final class FileDigester implements Closeable {
    private static final int RING = 4;

    private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "file-sha256");
        t.setDaemon(true);
        return t;
    });
    private final byte[][] buffers;
    @SuppressWarnings("unchecked")
    private final Future<?>[] pending = new Future<?>[RING];
    private int next;
    private MessageDigest digest;

    FileDigester(int chunkBytes) {
        buffers = new byte[RING][chunkBytes];
    }

    /** Starts hashing a new file. */
    void begin() {
        awaitAll();
        digest = Sha256.newDigest();
    }

    /** A buffer to read the next chunk into; waits until its previous digest step is done. */
    byte[] buffer() {
        await(next);
        return buffers[next];
    }

    /** Hashes the first {@code length} bytes of the buffer last returned by {@link #buffer()}. */
    void submit(int length) {
        byte[] chunk = buffers[next];
        MessageDigest target = digest;
        pending[next] = thread.submit(() -> target.update(chunk, 0, length));
        next = (next + 1) % RING;
    }

    /** The SHA-256 of everything submitted since {@link #begin()}, in hex. */
    String finish() {
        awaitAll();
        return Sha256.hex(digest);
    }

    private void awaitAll() {
        for (int i = 0; i < RING; i++) {
            await(i);
        }
    }

    private void await(int slot) {
        Future<?> f = pending[slot];
        if (f == null) {
            return;
        }
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while hashing", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("hashing failed", e.getCause());
        }
        pending[slot] = null;
    }

    @Override
    public void close() {
        thread.shutdownNow();
    }
}
