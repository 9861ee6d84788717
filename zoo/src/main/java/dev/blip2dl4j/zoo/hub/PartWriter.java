package dev.blip2dl4j.zoo.hub;

import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Flow;

/**
 * A response body written straight into a download's part file as it arrives, one buffer list at a time
 * (the next is asked for only once the last is on disk), remembering when data last came so that a
 * stalled transfer can be aborted from outside, and stopping a file that grows past its bound.
 */
final class PartWriter implements HttpResponse.BodySubscriber<Void> {
    /** The file would exceed the bytes it may have; the message says what the server offers or sent. */
    static final class TooLarge extends IOException {
        TooLarge(String bytes) {
            super(bytes);
        }
    }

    private final Path part;
    private final long start;
    private final long announced;
    private final long limit;
    private final PullListener listener;
    private final CompletableFuture<Void> body = new CompletableFuture<>();
    private volatile long lastData = System.nanoTime();
    private Flow.Subscription subscription;
    private FileChannel channel;
    private long size;

    /**
     * @param start     the bytes the part holds, to continue (a 206 for the range asked); 0: write it from its
     *                  start (a 200)
     * @param announced the whole file's length as the server announced it, or -1
     * @param limit     the most bytes the whole file may have
     */
    PartWriter(Path part, long start, long announced, long limit, PullListener listener) {
        this.part = part;
        this.start = start;
        this.announced = announced;
        this.limit = limit;
        this.listener = listener;
    }

    @Override
    public synchronized void onSubscribe(Flow.Subscription s) {
        subscription = s;
        if (announced > limit) {
            abort(new TooLarge("offers " + announced + " bytes"));
            return;
        }
        size = start;
        try {
            channel = start > 0
                    ? FileChannel.open(part, StandardOpenOption.WRITE, StandardOpenOption.CREATE, StandardOpenOption.APPEND)
                    : FileChannel.open(part, StandardOpenOption.WRITE, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING);
        } catch (IOException e) {
            abort(e);
            return;
        }
        s.request(1);
    }

    @Override
    public synchronized void onNext(List<ByteBuffer> buffers) {
        if (body.isDone()) {
            return;
        }
        long incoming = buffers.stream().mapToLong(ByteBuffer::remaining).sum();
        if (size + incoming > limit) {
            abort(new TooLarge("sent more than " + limit + " bytes"));
            return;
        }
        size += incoming;
        try {
            long written = 0;
            for (ByteBuffer buffer : buffers) {
                while (buffer.hasRemaining()) {
                    written += channel.write(buffer);
                }
            }
            lastData = System.nanoTime();
            listener.downloaded(written);
        } catch (IOException e) {
            abort(e);
            return;
        }
        subscription.request(1);
    }

    @Override
    public synchronized void onError(Throwable error) {
        close();
        body.completeExceptionally(error);
    }

    @Override
    public synchronized void onComplete() {
        try {
            channel.force(false);
        } catch (IOException e) {
            abort(e);
            return;
        }
        close();
        body.complete(null);
    }

    @Override
    public CompletionStage<Void> getBody() {
        return body;
    }

    /** Nanoseconds since the last data arrived (or since the body started). */
    long idleNanos() {
        return System.nanoTime() - lastData;
    }

    /** Stops the transfer: what was written so far stays in the part, for the next attempt to resume. */
    synchronized void abort(IOException reason) {
        if (subscription != null) {
            subscription.cancel();
        }
        close();
        body.completeExceptionally(reason);
    }

    private void close() {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // the part is whatever reached the disk; the size and SHA-256 checks judge it
            }
        }
    }
}
