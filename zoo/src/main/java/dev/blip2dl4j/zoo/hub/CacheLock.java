package dev.blip2dl4j.zoo.hub;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * An exclusive lock on a lock file, between processes and between the threads of one process. The operating
 * system's file lock keeps other processes out, and is released when a process dies, so a crash never leaves
 * the cache locked; but Java holds file locks for the whole JVM (a second lock of the same file from another
 * thread throws), so threads first queue on an in-process lock per file.
 */
public final class CacheLock implements AutoCloseable {
    private static final ConcurrentHashMap<Path, ReentrantLock> IN_PROCESS = new ConcurrentHashMap<>();

    private final ReentrantLock local;
    private final FileChannel channel;
    private final FileLock lock;

    private CacheLock(ReentrantLock local, FileChannel channel, FileLock lock) {
        this.local = local;
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the lock, waiting as long as it takes; {@code onWait} hears once that someone else holds it. */
    public static CacheLock acquire(Path file, Consumer<String> onWait) {
        Path key = file.toAbsolutePath().normalize();
        ReentrantLock local = IN_PROCESS.computeIfAbsent(key, k -> new ReentrantLock());
        if (local.isHeldByCurrentThread()) {
            throw new IllegalStateException(file + " is already locked by this thread");
        }
        boolean waited = false;
        if (!local.tryLock()) {
            onWait.accept("waiting for another pull in this process (" + file + ")");
            waited = true;
            local.lock();
        }
        FileChannel channel = null;
        try {
            Files.createDirectories(key.getParent());
            channel = FileChannel.open(key, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock = channel.tryLock();
            if (lock == null) {
                if (!waited) {
                    onWait.accept("waiting for another process that holds " + file);
                }
                lock = channel.lock();
            }
            return new CacheLock(local, channel, lock);
        } catch (IOException | RuntimeException e) {
            closeQuietly(channel);
            local.unlock();
            throw e instanceof IOException io ? new UncheckedIOException("cannot lock " + file, io) : (RuntimeException) e;
        }
    }

    @Override
    public void close() {
        try {
            lock.release();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            closeQuietly(channel);
            local.unlock();
        }
    }

    private static void closeQuietly(FileChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing releases the OS lock too; nothing else to undo
            }
        }
    }
}
