package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.artifact.Sha256;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.UnresolvedAddressException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.Locale;
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
 * has the expected size and SHA-256 and the length the server announced. A crashed or cut transfer leaves the
 * part, and the next fetch resumes it; a file that does not match its checksum, or grows past what the
 * catalogue allows, is deleted, never renamed. Redirects are followed to http and https only, and the token
 * goes to the endpoint's origin (scheme, host and port) only.
 */
public final class Downloader {
    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-\\d+/(\\d+|\\*)");
    private static final Pattern UNSATISFIED_RANGE = Pattern.compile("bytes \\*/(\\d+)");
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
            // a hub that answers at all connects within a few seconds; waiting longer only delays the error
            return new Policy(6, Duration.ofSeconds(1), Duration.ofSeconds(30), Duration.ofSeconds(10),
                    Duration.ofSeconds(60), Duration.ofSeconds(60));
        }
    }

    private final HttpClient client;
    private final Policy policy;
    private final String token;
    private final URI tokenOrigin;
    /** Whether any server has answered: until one has, a failed connection is the setup's fault, not a blip. */
    private volatile boolean reached;

    /**
     * @param token       a bearer token (Hugging Face's HF_TOKEN) or null; sent only to {@code tokenOrigin},
     *                    never along a redirect to another host, port or scheme (the hub sends large files on
     *                    to a CDN; a downgrade to http would show the token to the network)
     * @param tokenOrigin the hub endpoint
     */
    public Downloader(Policy policy, String token, URI tokenOrigin) {
        this.policy = policy;
        this.token = token;
        this.tokenOrigin = tokenOrigin;
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
                if (!attempt(uri, part, target.getFileName().toString(), expected, listener)) {
                    return false;
                }
                verifyAndCommit(uri, part, target, expected);
                listener.downloadFinished(target.getFileName().toString());
                return true;
            } catch (PartWriter.TooLarge e) {
                delete(part);
                throw new DownloadException(uri + ": the server " + e.getMessage() + " for " + target.getFileName()
                        + ", where the catalogue expects about " + expected.approxSize() + " (at most "
                        + expected.maxBytes() + "), so the download was stopped and deleted. The server or mirror "
                        + "(--endpoint, HF_ENDPOINT) serves another file, or the catalogue's size is wrong.", e);
            } catch (HttpConnectTimeoutException | ConnectException e) {
                if (!reached) {
                    throw unreachable(uri, e);
                }
                last = e;
            } catch (IOException e) {
                last = e;
            }
            if (attempt >= policy.attempts()) {
                throw new DownloadException(uri + ": failed after " + attempt + " attempts, the last with: "
                        + describe(last) + "." + (ModelCache.sizeOf(part) > 0 ? " What was received is kept in " + part
                        + "; run the pull again to resume it." : " Run the pull again later."), last);
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
            if (size > expected.maxBytes()) {
                return Optional.of("it has " + size + " bytes, more than the " + expected.maxBytes()
                        + " the catalogue allows (it expects about " + expected.approxSize() + ")");
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
    private boolean attempt(URI uri, Path part, String name, RemoteFile expected, PullListener listener) throws IOException {
        long have = Files.exists(part) ? Files.size(part) : 0;
        URI current = uri;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(current).timeout(policy.responseTimeout())
                    .header("User-Agent", Version.TEXT.replace(' ', '/'));
            if (have > 0) {
                request.header("Range", "bytes=" + have + "-");
            }
            if (token != null && sameOrigin(current, tokenOrigin)) {
                request.header("Authorization", "Bearer " + token);
            }
            PartHandler handler = new PartHandler(part, have, name, expected.maxBytes(), listener);
            HttpResponse<Void> response = await(client.sendAsync(request.build(), handler), handler);
            reached = true;
            int status = response.statusCode();
            Optional<String> location = response.headers().firstValue("Location");
            if (status >= 300 && status < 400 && location.isPresent()) {
                current = redirect(current, location.get());
                continue;
            }
            if (handler.restart) {
                Files.deleteIfExists(part);
                throw new IOException("the server resumed at another byte than asked for; starting over");
            }
            if (status == 200 || status == 206) {
                long received = Files.size(part);
                if (handler.total >= 0 && received != handler.total) {
                    throw new IOException("the server announced " + handler.total + " bytes, the part holds " + received);
                }
                return true;
            }
            if (status == 416 && have > 0) {
                // the range starts at or past the end: whole only if the server's length is exactly what the part holds
                Matcher length = UNSATISFIED_RANGE.matcher(response.headers().firstValue("Content-Range").orElse(""));
                if (length.matches() && Long.parseLong(length.group(1)) == have) {
                    return true;
                }
                Files.deleteIfExists(part);
                throw new IOException("the part held " + have + " bytes, which the server does not confirm as the whole "
                        + "file (" + response.headers().firstValue("Content-Range").orElse("no length given") + "); starting over");
            }
            String detail = response.headers().firstValue("X-Error-Message").map(m -> " (" + m + ")").orElse("");
            if (status == 404) {
                if (expected.optional()) {
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

    /** Where a redirect leads: http or https on a named host, or a DownloadException that says what the server sent. */
    static URI redirect(URI from, String location) {
        URI next;
        try {
            next = from.resolve(new URI(location));
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw new DownloadException(from + ": the server redirected to '" + location + "', which is not a valid "
                    + "address. The server or mirror is broken; try again later or use another (--endpoint, HF_ENDPOINT).");
        }
        String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https") || next.getHost() == null) {
            throw new DownloadException(from + ": the server redirected to '" + location + "'; downloads follow only "
                    + "http and https addresses with a host name, so it was not followed. Check the endpoint "
                    + "(--endpoint, HF_ENDPOINT): it should be a Hugging Face hub or a mirror of one.");
        }
        return next;
    }

    /** RFC 6454's origin: the same scheme, host and port (a missing port is the scheme's default). */
    static boolean sameOrigin(URI a, URI b) {
        return a.getScheme() != null && a.getScheme().equalsIgnoreCase(b.getScheme())
                && a.getHost() != null && a.getHost().equalsIgnoreCase(b.getHost()) && port(a) == port(b);
    }

    private static int port(URI uri) {
        if (uri.getPort() >= 0) {
            return uri.getPort();
        }
        return "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
    }

    /** A connection that could not be opened before any server answered: no network, a wrong endpoint, or a firewall. */
    private DownloadException unreachable(URI uri, IOException e) {
        String why = e instanceof HttpConnectTimeoutException ? "no answer within " + policy.connectTimeout().toSeconds() + " s"
                : e.getCause() instanceof UnresolvedAddressException ? "the host name does not resolve"
                : "the connection was refused or failed";
        return new DownloadException("cannot connect to " + uri.getHost() + (uri.getPort() >= 0 ? ":" + uri.getPort() : "")
                + " (" + why + ") to download " + uri + ". Check the network connection. Without one, --offline "
                + "(BLIP2_OFFLINE=1) uses the models already in the cache; a mirror of the hub is set with --endpoint or "
                + "HF_ENDPOINT (LAVIS's files: --files-endpoint, BLIP2_FILES_ENDPOINT).", e);
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
        private final long maxBytes;
        private final PullListener listener;
        volatile PartWriter writer;
        volatile boolean restart;
        /** The whole file's length as the server announced it, or -1. */
        volatile long total = -1;

        PartHandler(Path part, long have, String name, long maxBytes, PullListener listener) {
            this.part = part;
            this.have = have;
            this.name = name;
            this.maxBytes = maxBytes;
            this.listener = listener;
        }

        @Override
        public HttpResponse.BodySubscriber<Void> apply(HttpResponse.ResponseInfo info) {
            int status = info.statusCode();
            if (status == 200) {
                total = info.headers().firstValueAsLong("Content-Length").orElse(-1);
                listener.downloadStarted(name, total, 0);
                writer = new PartWriter(part, 0, total, maxBytes, listener);
                return writer;
            }
            if (status == 206) {
                Matcher range = CONTENT_RANGE.matcher(info.headers().firstValue("Content-Range").orElse(""));
                if (!range.matches() || Long.parseLong(range.group(1)) != have) {
                    restart = true;
                    return HttpResponse.BodySubscribers.replacing(null);
                }
                total = range.group(2).equals("*") ? -1 : Long.parseLong(range.group(2));
                listener.downloadStarted(name, total, have);
                writer = new PartWriter(part, have, total, maxBytes, listener);
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

    private static void delete(Path file) {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + file, e);
        }
    }

    private static String describe(IOException e) {
        if (e == null) {
            return "no answer";
        }
        String message = e.getMessage() != null ? e.getMessage()
                : e.getCause() != null ? e.getCause().getClass().getSimpleName() : null;
        return e.getClass().getSimpleName() + (message == null ? "" : ": " + message);
    }
}
