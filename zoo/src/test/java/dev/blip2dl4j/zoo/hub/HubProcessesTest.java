package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.artifact.Artifact;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pulls in separate JVMs sharing one cache: the file lock between them, and a killed pull resumed. */
class HubProcessesTest {
    private static final String WEIGHTS = "model.safetensors";

    @TempDir
    Path cache;
    private LoopbackHub server;

    @BeforeEach
    void start() throws IOException {
        server = new LoopbackHub();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private Process pull() throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        return new ProcessBuilder(java, "-Xmx256m", "-cp", System.getProperty("java.class.path"),
                HubPullProcess.class.getName(), Fixtures.root().resolve("hub/catalogue.json").toString(), cache.toString(),
                server.endpoint().toString(), "tiny-opt").start();
    }

    /** Waits until the pull's part of the weights holds more than {@code bytes}, and returns the part. */
    private Path awaitPart(Process process, long bytes) throws Exception {
        Path part = cache.resolve("downloads/tiny-opt/blip2-dl4j-tests-blip2-tiny-opt/model.safetensors.part");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!(Files.exists(part) && Files.size(part) > bytes)) {
            assertTrue(process.isAlive() && System.nanoTime() < deadline, "the pull reaches the weights");
            Thread.sleep(20);
        }
        return part;
    }

    /** What a finished pull process printed: the artifact's path, and its messages. */
    private record Finished(String out, String err) {
    }

    private static Finished finish(Process process) throws Exception {
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the pull finishes");
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        String err = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(0, process.exitValue(), err);
        return new Finished(out, err);
    }

    @Test
    void twoProcessesPullingAtOnceEndWithOneGoodCacheEntry() throws Exception {
        server.throttle(WEIGHTS, 500_000);
        Process first = pull();
        awaitPart(first, 1);
        Process second = pull();  // while the first holds the lock: the weights take it ~5 s more
        Finished a = finish(first);
        Finished b = finish(second);

        assertEquals(cache.resolve("tiny-opt.b2z").toString(), a.out());
        assertEquals(a.out(), b.out());
        assertTrue((a.err() + b.err()).contains("waiting for another process"), a.err() + "\n" + b.err());
        assertEquals(1, server.requestsFor(WEIGHTS).size(), "downloaded once: the other process waited for the lock");
        try (Artifact artifact = Artifact.open(Path.of(a.out()))) {
            assertFalse(artifact.manifest().tensors().isEmpty());
        }
        try (Stream<Path> files = Files.walk(cache)) {
            List<String> left = files.filter(Files::isRegularFile).map(p -> cache.relativize(p).toString()).sorted().toList();
            assertEquals(List.of(".locks/tiny-opt.lock", "tiny-opt.b2z"), left, "no part, temporary or download left");
        }
    }

    @Test
    void aKilledPullLeavesItsPartAndTheNextPullResumesIt() throws Exception {
        server.throttle(WEIGHTS, 400_000);
        Process killed = pull();
        Path part = awaitPart(killed, 300_000);
        killed.destroyForcibly().waitFor();
        long kept = Files.size(part);
        assertTrue(kept > 300_000, "the killed pull's part stays: " + kept);

        server.throttle(WEIGHTS, 0);
        assertEquals(cache.resolve("tiny-opt.b2z").toString(), finish(pull()).out());
        List<LoopbackHub.Request> asked = server.requestsFor(WEIGHTS);
        String resumedAt = asked.get(asked.size() - 1).range();
        assertTrue(resumedAt != null && Long.parseLong(resumedAt.replaceAll("\\D", "")) >= kept,
                "resumed from the part, not from 0: " + resumedAt + " after " + kept + " bytes");
    }
}
