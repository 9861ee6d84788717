package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The tiny fixture models on a loopback Hugging Face hub, as fixtures/hub/catalogue.json names them:
 * {@code /blip2-dl4j-tests/blip2-tiny-X/resolve/REVISION/FILE}. Plain whole-file answers; the zoo module's
 * tests cover ranges, retries and faults.
 */
final class FixtureHub implements AutoCloseable {
    private static final Pattern RESOLVE = Pattern.compile("/blip2-dl4j-tests/(blip2-tiny-[a-z0-9]+)/resolve/[0-9a-f]{40}/(.+)");

    private final HttpServer server;
    private final AtomicInteger requests = new AtomicInteger();

    FixtureHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    String endpoint() {
        return "http://127.0.0.1:" + server.getAddress().getPort();
    }

    int requests() {
        return requests.get();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            requests.incrementAndGet();
            Matcher m = RESOLVE.matcher(exchange.getRequestURI().getPath());
            Path file = m.matches() ? Fixtures.root().resolve(m.group(1)).resolve(m.group(2)) : null;
            if (file == null || !Files.isRegularFile(file)) {
                exchange.sendResponseHeaders(404, -1);
                return;
            }
            byte[] bytes = Files.readAllBytes(file);
            exchange.sendResponseHeaders(200, bytes.length);
            exchange.getResponseBody().write(bytes);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
