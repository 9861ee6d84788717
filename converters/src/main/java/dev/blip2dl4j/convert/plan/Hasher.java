package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.artifact.Sha256;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * SHA-256 on a thread of its own, in the order asked: one digest may be fed from several blocks while the caller
 * goes on. Conversion runs two: one for the weight files, one for the tensors as stored; on one thread, the two
 * digests of a float32 copy (every byte hashed twice) were what the conversion waited for (bench/README.md).
 */
final class Hasher implements Closeable {
    private final ExecutorService thread;

    Hasher(String name) {
        thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }

    /** Hashes the buffer's remaining bytes (which must not change until the future is done) into {@code digest}. */
    Future<?> update(MessageDigest digest, ByteBuffer bytes) {
        return thread.submit(() -> digest.update(bytes));
    }

    /** The digest's SHA-256 in hex, once everything submitted before is hashed. */
    Future<String> hex(MessageDigest digest) {
        return thread.submit(() -> Sha256.hex(digest));
    }

    static <T> T await(Future<T> future) {
        try {
            return future.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while hashing", e);
        } catch (ExecutionException e) {
            throw new IllegalStateException("hashing failed", e.getCause());
        }
    }

    /**
     * Waits for what was submitted, then ends the thread: a digest's {@link #hex} may be awaited after the
     * conversion's streaming is over (the artifact's manifest is written last), so queued work must not be dropped.
     */
    @Override
    public void close() {
        thread.shutdown();
        try {
            thread.awaitTermination(Long.MAX_VALUE, TimeUnit.NANOSECONDS); // bounded by what was read
        } catch (InterruptedException e) {
            thread.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
