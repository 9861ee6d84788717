package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.artifact.Sha256;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fetches one file over HTTP into {@code <target>.part}, resuming from what the part already holds with a
 * range request, retrying failures with growing pauses, and renaming the part onto the target only once it
 * has the expected size and SHA-256. A crashed or cut transfer leaves the part, and the next fetch resumes it;
 * a file that does not match its checksum is deleted, never renamed.
 */
public final class Downloader {
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-\\d+/(\\d+|\\*)");
    private static final int MAX_REDIRECTS = 10;

    /**
     * How hard to try.
     *
     * @param attempts        tries per file, the first included; each resumes where the last stopped
     * @param firstPause      the pause after the first failure, doubled after each further one
     * @param maxPause        the longest pause
     * @param connectTimeout  to open a connection
     * @param responseTimeout from the request to the response's headers
     * @param stallTimeout    the longest wait for the next bytes of a body before the transfer counts as failed
     */
    public record Policy(int attempts, Duration firstPause, Duration maxPause, Duration connectTimeout,
                         Duration responseTimeout, Duration stallTimeout) {
        public static Policy defaults() {
            return new Policy(6, Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(30),
                    Duration.ofSeconds(60), Duration.ofSeconds(60));
        }
    }

    private final HttpClient client;
    private final Policy policy;
    private final String token;
    private final String tokenHost;

    /**
     * @param token     a bearer token (Hugging Face's HF_TOKEN) or null; sent only to {@code tokenHost}, never
     *                  along a redirect to another host (the hub sends large files on to a CDN)
     * @param tokenHost the host of the hub endpoint
     */
    public Downloader(Policy policy, String token, String tokenHost) {
        this.policy = policy;
        this.token = token;
        this.tokenHost = tokenHost;
        this.client = HttpClient.newBuilder().connectTimeout(policy.connectTimeout())
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /**
     * Downloads {@code uri} to {@code target} and checks it against {@code expected}. Returns false only for
     * an optional file the server does not have.
     */
    public boolean fetch(URI uri, Path target, RemoteFile expected, PullListener listener) {
        Path part = partOf(target);
        IOException last = null;
        for (int attempt = 1; ; attempt++) {
            try {
                if (!attempt(uri, part, target.getFileName().toString(), expected.optional(), listener)) {
                    return false;
                }
                verifyAndCommit(uri, part, target, expected);
                listener.downloadFinished(target.getFileName().toString());
                return true;
            } catch (IOException e) {
                last = e;
            }
            if (attempt >= policy.attempts()) {
                throw new DownloadException(uri + ": failed after " + attempt + " attempts, the last with: "
                        + describe(last) + ". What was received is kept in " + part
                        + "; run the pull again to resume it.", last);
            }
            Duration pause = pause(attempt);
            listener.message(target.getFileName() + ": " + describe(last) + "; retrying in " + pause.toMillis() + " ms ("
                    + attempt + " of " + policy.attempts() + " attempts made)");
            sleep(pause);
        }
    }

    /**
     * Why {@code file} is not the expected one (size, then SHA-256), or empty if it is. Hashes the whole file
     * when a SHA-256 is expected.
     */
    public static Optional<String> mismatch(Path file, RemoteFile expected) {
        try {
            long size = Files.size(file);
            if (expected.size() != null && size != expected.size()) {
                return Optional.of("it has " + size + " bytes where " + expected.size() + " are expected");
            }
            if (expected.sha256() != null) {
                String actual = Sha256.ofFile(file);
                if (!actual.equals(expected.sha256())) {
                    return Optional.of("its SHA-256 is " + actual + " where the catalogue says " + expected.sha256());
                }
            }
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static Path partOf(Path target) {
        return target.resolveSibling(target.getFileName() + ".part");
    }

    private void verifyAndCommit(URI uri, Path part, Path target, RemoteFile expected) throws IOException {
        Optional<String> problem = mismatch(part, expected);
        if (problem.isPresent()) {
            Files.deleteIfExists(part);
            throw new DownloadException(uri + " was downloaded but " + problem.get() + ", so it was deleted. "
                    + "The server (or a mirror) serves a different file than the catalogue pins, or the transfer was "
                    + "corrupted; pulling again downloads it afresh.");
        }
        Files.move(part, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * One request, following redirects: true once the part holds the whole body, false for an optional file
     * the server does not have. Failures worth retrying are IOExceptions; the others, DownloadExceptions.
     */
    private boolean attempt(URI uri, Path part, String name, boolean optional, PullListener listener) throws IOException {
        long have = Files.exists(part) ? Files.size(part) : 0;
        URI current = uri;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(current).timeout(policy.responseTimeout())
                    .header("User-Agent", Version.TEXT.replace(' ', '/'));
            if (have > 0) {
                request.header("Range", "bytes=" + have + "-");
            }
            if (token != null && current.getHost() != null && current.getHost().equalsIgnoreCase(tokenHost)) {
                request.header("Authorization", "Bearer " + token);
            }
            PartHandler handler = new PartHandler(part, have, name, listener);
            HttpResponse<Void> response = await(client.sendAsync(request.build(), handler), handler);
            int status = response.statusCode();
            if (status >= 300 && status < 400 && response.headers().firstValue("Location").isPresent()) {
                current = current.resolve(response.headers().firstValue("Location").get());
                continue;
            }
            if (handler.restart) {
                Files.deleteIfExists(part);
                throw new IOException("the server resumed at another byte than asked for; starting over");
            }
            if (status == 200 || status == 206) {
                return true;
            }
            if (status == 416 && have > 0) {
                // the range starts at or past the end: the part is already whole, which the checks will confirm
                return true;
            }
            String detail = response.headers().firstValue("X-Error-Message").map(m -> " (" + m + ")").orElse("");
            if (status == 404) {
                if (optional) {
                    return false;
                }
                throw new DownloadException(current + ": not found (HTTP 404)" + detail + ". The pinned revision or "
                        + "file may be gone from the publisher, or the mirror (--endpoint, HF_ENDPOINT) does not have it.");
            }
            if (status == 401 || status == 403) {
                throw new DownloadException(current + ": access refused (HTTP " + status + ")" + detail + ". A gated "
                        + "or private repository, or a mirror that wants a token: set HF_TOKEN to a Hugging Face "
                        + "access token that may read it.");
            }
            if (status == 408 || status == 429 || status >= 500) {
                throw new IOException("HTTP " + status + detail);
            }
            throw new DownloadException(current + ": the server answered HTTP " + status + detail);
        }
        throw new DownloadException(uri + ": more than " + MAX_REDIRECTS + " redirects");
    }

    /** Waits for the response, failing the transfer when its body stops arriving for the stall timeout. */
    private HttpResponse<Void> await(CompletableFuture<HttpResponse<Void>> response, PartHandler handler) throws IOException {
        long stallNanos = policy.stallTimeout().toNanos();
        try {
            while (true) {
                try {
                    return response.get(Math.min(200, policy.stallTimeout().toMillis()), TimeUnit.MILLISECONDS);
                } catch (TimeoutException e) {
                    PartWriter writer = handler.writer;
                    if (writer != null && writer.idleNanos() > stallNanos) {
                        writer.abort(new IOException("no data for " + policy.stallTimeout().toSeconds() + " s"));
                    }
                }
            }
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException runtime) {
                throw runtime;
            }
            throw new IOException(cause);
        } catch (InterruptedException e) {
            response.cancel(true);
            Thread.currentThread().interrupt();
            throw new DownloadException("the download was interrupted", e);
        }
    }

    /** Decides from the status and headers where the body goes: appended to the part, over it, or nowhere. */
    private static final class PartHandler implements HttpResponse.BodyHandler<Void> {
        private final Path part;
        private final long have;
        private final String name;
        private final PullListener listener;
        volatile PartWriter writer;
        volatile boolean restart;

        PartHandler(Path part, long have, String name, PullListener listener) {
            this.part = part;
            this.have = have;
            this.name = name;
            this.listener = listener;
        }

        @Override
        public HttpResponse.BodySubscriber<Void> apply(HttpResponse.ResponseInfo info) {
            int status = info.statusCode();
            if (status == 200) {
                long total = info.headers().firstValueAsLong("Content-Length").orElse(-1);
                listener.downloadStarted(name, total, 0);
                writer = new PartWriter(part, false, listener);
                return writer;
            }
            if (status == 206) {
                Matcher range = CONTENT_RANGE.matcher(info.headers().firstValue("Content-Range").orElse(""));
                if (!range.matches() || Long.parseLong(range.group(1)) != have) {
                    restart = true;
                    return HttpResponse.BodySubscribers.replacing(null);
                }
                listener.downloadStarted(name, range.group(2).equals("*") ? -1 : Long.parseLong(range.group(2)), have);
                writer = new PartWriter(part, true, listener);
                return writer;
            }
            return HttpResponse.BodySubscribers.replacing(null);
        }
    }

    private Duration pause(int failures) {
        long millis = policy.firstPause().toMillis() << Math.min(failures - 1, 20);
        return Duration.ofMillis(Math.min(millis, policy.maxPause().toMillis()));
    }

    private static void sleep(Duration pause) {
        try {
            Thread.sleep(pause.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new DownloadException("the download was interrupted", e);
        }
    }

    private static String describe(IOException e) {
        if (e == null) {
            return "no answer";
        }
        String message = e.getMessage();
        return e.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }
}
