package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.testing.Fixtures;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face hub on loopback, serving the tiny fixture models as {@code
 * /blip2-dl4j-tests/blip2-tiny-X/resolve/REVISION/FILE} with range requests (and, as a mirror of LAVIS's
 * files, the tiny OPT model's LAVIS {@code .pth} and config), and misbehaving on demand: a
 * file can be cut mid-transfer, answered with an error status, stalled, corrupted, throttled, sent without a
 * length, answered 416 whatever the range, or redirected (to another host name, or anywhere a test says).
 * It listens on two ports, the second to stand for another origin on the same host. It records every
 * request, for tests to check what was asked for.
 */
final class LoopbackHub implements AutoCloseable {
    static final String REVISION = "4b1d0c5e0f0b2a7c9d3e6f8a1b2c3d4e5f607182";
    private static final Pattern RESOLVE = Pattern.compile("/blip2-dl4j-tests/(blip2-tiny-[a-z0-9]+)/resolve/([^/]+)/(.+)");
    /** LAVIS's files on Google Cloud Storage, as a mirror keeping their paths serves them: the tiny OPT model's. */
    private static final Pattern LAVIS_FILES = Pattern.compile("/sfr-vision-language-research/LAVIS/models/BLIP2/tiny/([^/]+)");
    private static final Pattern RANGE = Pattern.compile("bytes=(\\d+)-");

    /** What one request for a file gets, in place of the file. */
    sealed interface Trouble {
    }

    /** Headers for the whole file, then only {@code bytes} of it, then the connection closes. */
    record Cut(long bytes) implements Trouble {
    }

    record Status(int code) implements Trouble {
    }

    /** Headers and {@code bytes} of the body, then nothing for {@code millis}. */
    record Stall(long bytes, long millis) implements Trouble {
    }

    /** Nothing, not even headers, for {@code millis}. */
    record Silence(long millis) implements Trouble {
    }

    /** The file with one byte changed. */
    record Corrupt() implements Trouble {
    }

    /** A 302 to the same path on another host name of this server (as the hub sends large files to a CDN). */
    record RedirectToOtherHost() implements Trouble {
    }

    /** A 302 to {@code location}, as given: a test's own address, or a broken one. */
    record Redirect(String location) implements Trouble {
    }

    /** The file without a Content-Length (chunked), so that only its bytes tell how long it is. */
    record Chunked() implements Trouble {
    }

    /** 416 with {@code Content-Range: bytes *}{@code /length} whatever the range asked (or none, if length < 0). */
    record Unsatisfiable(long length) implements Trouble {
    }

    /** One request as the server saw it: the Host header and the port it came in on. */
    record Request(String host, int port, String path, String range, String authorization) {
    }

    private final HttpServer server;
    private final HttpServer otherPort;
    private final ExecutorService threads = Executors.newCachedThreadPool();
    private final Map<String, ConcurrentLinkedQueue<Trouble>> troubles = new ConcurrentHashMap<>();
    private final List<Request> requests = Collections.synchronizedList(new ArrayList<>());
    private final Map<String, Long> bytesPerSecond = new ConcurrentHashMap<>();

    LoopbackHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(threads);
        server.createContext("/", this::handle);
        server.start();
        otherPort = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        otherPort.setExecutor(threads);
        otherPort.createContext("/", this::handle);
        otherPort.start();
    }

    /** The hub's endpoint, as {@code --endpoint} takes it. */
    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    /** The same server on its second port: another origin on the same host name. */
    URI otherOrigin() {
        return URI.create("http://127.0.0.1:" + otherPort.getAddress().getPort());
    }

    /** The tiny models' catalogue (fixtures/hub/catalogue.json), whose repositories this server serves. */
    static Catalogue catalogue() {
        return Catalogue.read(Fixtures.root().resolve("hub/catalogue.json"));
    }

    /** Retries and timeouts short enough for tests: 3 attempts, pauses of 10-40 ms, stalls of half a second. */
    static Downloader.Policy quickPolicy() {
        return new Downloader.Policy(3, Duration.ofMillis(10), Duration.ofMillis(40), Duration.ofSeconds(2),
                Duration.ofSeconds(2), Duration.ofMillis(500));
    }

    /** A hub pulling the tiny models from this server into {@code cache}, with the environment ignored. */
    Hub hub(Path cache) {
        return new Hub(catalogue(), HubSettings.fromEnvironment(Map.of(), cache.toString()).withCacheDir(cache)
                .withEndpoint(endpoint()).withFilesEndpoint(endpoint()).withPolicy(quickPolicy()));
    }

    /** The next request for {@code file} (a path in the repository) gets {@code trouble}; queued in order. */
    LoopbackHub trouble(String file, Trouble trouble) {
        troubles.computeIfAbsent(file, f -> new ConcurrentLinkedQueue<>()).add(trouble);
        return this;
    }

    /** Every request for {@code file} gets {@code trouble}, {@code times} times. */
    LoopbackHub trouble(String file, Trouble trouble, int times) {
        for (int i = 0; i < times; i++) {
            trouble(file, trouble);
        }
        return this;
    }

    /** Slows the bodies of {@code file} to about this rate (0: as fast as it goes). */
    LoopbackHub throttle(String file, long bytesPerSecond) {
        this.bytesPerSecond.put(file, bytesPerSecond);
        return this;
    }

    List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    List<Request> requestsFor(String file) {
        return requests().stream().filter(r -> r.path().endsWith("/" + file)).toList();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String path = exchange.getRequestURI().getPath();
            String range = exchange.getRequestHeaders().getFirst("Range");
            requests.add(new Request(exchange.getRequestHeaders().getFirst("Host"), exchange.getLocalAddress().getPort(),
                    path, range, exchange.getRequestHeaders().getFirst("Authorization")));
            Matcher m = RESOLVE.matcher(path);
            Matcher lavis = LAVIS_FILES.matcher(path);
            Path file;
            String name;
            if (m.matches() && m.group(2).equals(REVISION)) {
                file = Fixtures.root().resolve(m.group(1)).resolve(m.group(3));
                name = m.group(3);
            } else if (lavis.matches()) {
                Path model = Fixtures.root().resolve("blip2-tiny-opt");
                name = lavis.group(1);
                file = Files.isRegularFile(model.resolve("lavis").resolve(name)) ? model.resolve("lavis").resolve(name)
                        : model.resolve(name);
            } else {
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            if (!Files.isRegularFile(file)) {
                exchange.getResponseHeaders().add("X-Error-Message", "Entry not found");
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            ConcurrentLinkedQueue<Trouble> queue = troubles.get(name);
            Trouble trouble = queue == null ? null : queue.poll();
            byte[] bytes = Files.readAllBytes(file);
            serve(exchange, bytes, range, trouble, bytesPerSecond.getOrDefault(name, 0L));
        } catch (IOException e) {
            // the client went away (a test aborting a transfer): nothing to answer
        }
    }

    private void serve(HttpExchange exchange, byte[] bytes, String range, Trouble trouble, long rate) throws IOException {
        if (trouble instanceof Status s) {
            exchange.sendResponseHeaders(s.code(), -1);
            return;
        }
        if (trouble instanceof Silence s) {
            sleep(s.millis());
            return;
        }
        if (trouble instanceof RedirectToOtherHost) {
            String other = exchange.getRequestHeaders().getFirst("Host").startsWith("localhost") ? "127.0.0.1" : "localhost";
            exchange.getResponseHeaders().add("Location", "http://" + other + ":" + server.getAddress().getPort()
                    + exchange.getRequestURI().getRawPath());
            exchange.sendResponseHeaders(302, -1);
            return;
        }
        if (trouble instanceof Redirect r) {
            exchange.getResponseHeaders().add("Location", r.location());
            exchange.sendResponseHeaders(302, -1);
            return;
        }
        if (trouble instanceof Unsatisfiable u) {
            if (u.length() >= 0) {
                exchange.getResponseHeaders().add("Content-Range", "bytes */" + u.length());
            }
            exchange.sendResponseHeaders(416, -1);
            return;
        }
        if (trouble instanceof Chunked) {
            exchange.sendResponseHeaders(200, 0);
            write(exchange.getResponseBody(), bytes, 0, bytes.length, rate);
            return;
        }
        if (trouble instanceof Corrupt) {
            bytes = bytes.clone();
            bytes[bytes.length / 2] ^= 1;
        }
        long start = 0;
        if (range != null) {
            Matcher r = RANGE.matcher(range);
            if (r.matches()) {
                start = Long.parseLong(r.group(1));
            }
        }
        if (start >= bytes.length && start > 0) {
            exchange.getResponseHeaders().add("Content-Range", "bytes */" + bytes.length);
            exchange.sendResponseHeaders(416, -1);
            return;
        }
        int from = (int) start;
        if (range != null) {
            exchange.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + (bytes.length - 1) + "/" + bytes.length);
            exchange.sendResponseHeaders(206, bytes.length - from);
        } else {
            exchange.sendResponseHeaders(200, bytes.length);
        }
        long limit = bytes.length - from;
        if (trouble instanceof Cut c) {
            limit = Math.min(limit, c.bytes());
        } else if (trouble instanceof Stall s) {
            limit = Math.min(limit, s.bytes());
        }
        OutputStream body = exchange.getResponseBody();
        write(body, bytes, from, (int) limit, rate);
        if (trouble instanceof Stall s) {
            sleep(s.millis());
        }
        if (limit < bytes.length - from) {
            // too few bytes for the length announced: the server closes the connection under the client
            throw new IOException("cut");
        }
    }

    private void write(OutputStream body, byte[] bytes, int from, int length, long rate) throws IOException {
        int chunk = 64 * 1024;
        for (int off = 0; off < length; off += chunk) {
            int n = Math.min(chunk, length - off);
            body.write(bytes, from + off, n);
            body.flush();
            if (rate > 0) {
                sleep(n * 1000L / rate);
            }
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        server.stop(0);
        otherPort.stop(0);
        threads.shutdownNow();
    }
}
