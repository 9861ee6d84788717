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
 * stalled transfer can be aborted from outside.
 */
final class PartWriter implements HttpResponse.BodySubscriber<Void> {
    private final Path part;
    private final boolean append;
    private final PullListener listener;
    private final CompletableFuture<Void> body = new CompletableFuture<>();
    private volatile long lastData = System.nanoTime();
    private Flow.Subscription subscription;
    private FileChannel channel;

    /** @param append continue the part (a 206 for the range asked); otherwise write it from its start (a 200) */
    PartWriter(Path part, boolean append, PullListener listener) {
        this.part = part;
        this.append = append;
        this.listener = listener;
    }

    @Override
    public synchronized void onSubscribe(Flow.Subscription s) {
        subscription = s;
        try {
            channel = append
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
