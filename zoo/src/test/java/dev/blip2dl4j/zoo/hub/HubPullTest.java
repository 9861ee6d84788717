package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.Caption;
import dev.blip2dl4j.zoo.MemoryCheck;
import dev.blip2dl4j.arrays.ReferenceBundle;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pulling a model by name from a loopback hub: download, check, convert, cache, and offline use afterwards. */
class HubPullTest {
    private static final String WEIGHTS = "model.safetensors";
    /** In the catalogue without an exact size or a SHA-256, as the hub shows none for small files. */
    private static final String MERGES = "merges.txt";
    private static final Path OPT_FILES = Fixtures.root().resolve("blip2-tiny-opt");

    @TempDir
    Path cache;
    private LoopbackHub server;
    private final List<String> messages = new CopyOnWriteArrayList<>();
    private final PullListener listener = new PullListener() {
        @Override
        public void message(String text) {
            messages.add(text);
        }
    };

    @BeforeEach
    void start() throws IOException {
        server = new LoopbackHub();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private Hub offline() {
        return new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withOffline(true));
    }

    @Test
    void pullsChecksConvertsCachesAndIsUsedOfflineAfterwards() throws IOException {
        Path artifact = server.hub(cache).pull("tiny-opt", listener);

        assertEquals(cache.resolve("tiny-opt.b2z"), artifact);
        assertFalse(Files.exists(cache.resolve("downloads/tiny-opt")), "the raw files are deleted once converted");
        assertEquals(1, server.requestsFor(WEIGHTS).size());
        assertEquals(1, server.requestsFor("tokenizer.json").size(), "the optional file was asked for, and was absent");
        CatalogueEntry entry = LoopbackHub.catalogue().require("tiny-opt");
        try (Artifact a = Artifact.open(artifact)) {
            Manifest.SourceFile weights = a.manifest().source().files().stream()
                    .filter(f -> f.name().equals(WEIGHTS)).findFirst().orElseThrow();
            assertEquals(entry.files().stream().filter(f -> f.path().equals(WEIGHTS)).findFirst().orElseThrow().sha256(),
                    weights.sha256(), "the artifact records what it was converted from");
        }

        server.close();
        int asked = server.requests().size();
        Path dir = Fixtures.root().resolve("blip2-tiny-opt");
        JsonNode reference = ReferenceBundle.open(dir).json();
        try (Blip2 blip2 = Blip2.pretrained("tiny-opt", offline(), MemoryCheck.system(), listener)) {
            Caption caption = blip2.caption(Fixtures.root().resolve("common/merlion.png"), reference.get("prompt").asText(),
                    blip2.generationDefaults().withMaxNewTokens(10));
            long[] expected = StreamSupport.stream(reference.get("generation").get("greedy").get("sequences").spliterator(), false)
                    .mapToLong(JsonNode::asLong).toArray();
            assertArrayEquals(expected, caption.sequences().get(0).ids(), "transformers' greedy ids, from the pulled model");
        }
        assertEquals(asked, server.requests().size(), "offline: no request");
    }

    @Test
    void pullsALavisReleaseFromAFilesMirrorToTheSameTensorsAsTheHubsConversion() throws IOException {
        Hub hub = server.hub(cache);
        Path lavis = hub.pull("tiny-opt-lavis", listener);
        assertEquals(1, server.requestsFor("blip2_opt_tiny.pth").size());
        assertEquals(1, server.requestsFor("config.json").stream()
                .filter(r -> r.path().startsWith("/sfr-vision-language-research/")).count(), "the companion config");
        Path huggingFace = hub.pull("tiny-opt", listener);
        try (Artifact fromLavis = Artifact.open(lavis); Artifact fromHub = Artifact.open(huggingFace)) {
            assertEquals(hashes(fromHub), hashes(fromLavis), "LAVIS's .pth and the hub's safetensors, the same model");
            assertTrue(fromLavis.manifest().source().format().contains("lavis"), fromLavis.manifest().source().format());
        }
    }

    private static Map<String, String> hashes(Artifact artifact) {
        Map<String, String> hashes = new TreeMap<>();
        artifact.manifest().tensors().forEach(t -> hashes.put(t.name(), t.sha256()));
        return hashes;
    }

    @Test
    void offlineWithoutTheModelSaysWhatIsMissing() {
        DownloadException e = assertThrows(DownloadException.class, () -> offline().pull("tiny-opt", listener));

        assertTrue(e.getMessage().contains("tiny-opt is not in the cache") && e.getMessage().contains("offline"), e.getMessage());
        assertTrue(e.getMessage().contains(cache.resolve("downloads/tiny-opt/blip2-dl4j-tests-blip2-tiny-opt/model.safetensors")
                + " (3 MB)"), e.getMessage());
        assertFalse(e.getMessage().contains("tokenizer.json"), "an optional file is not missing");
        assertTrue(server.requests().isEmpty(), "offline never touches the network");
    }

    @Test
    void offlineConvertsFilesPutInTheCacheBeforehand() throws IOException {
        CatalogueEntry entry = LoopbackHub.catalogue().require("tiny-opt");
        Hub hub = offline();
        for (RemoteFile file : entry.sources().get(0).files()) {
            Path from = Fixtures.root().resolve("blip2-tiny-opt").resolve(file.path());
            if (Files.exists(from)) {
                Path to = hub.cache().file(entry, entry.sources().get(0), file);
                Files.createDirectories(to.getParent());
                Files.copy(from, to);
            }
        }
        assertTrue(Files.isRegularFile(hub.pull("tiny-opt", listener)));
        assertTrue(server.requests().isEmpty());
    }

    @Test
    void keepSourceKeepsTheDownloadedFiles() {
        Hub hub = new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withKeepSource(true));
        hub.pull("tiny-itm", listener);
        assertTrue(Files.isRegularFile(cache.resolve("downloads/tiny-itm/blip2-dl4j-tests-blip2-tiny-itm/model.safetensors")));
    }

    @Test
    void aPullThatDiedResumesWhereItStopped() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Cut(1_000_000));
        Hub once = new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withPolicy(
                new Downloader.Policy(1, LoopbackHub.quickPolicy().firstPause(), LoopbackHub.quickPolicy().maxPause(),
                        LoopbackHub.quickPolicy().connectTimeout(), LoopbackHub.quickPolicy().responseTimeout(),
                        LoopbackHub.quickPolicy().stallTimeout())));
        DownloadException e = assertThrows(DownloadException.class, () -> once.pull("tiny-opt", listener));
        assertTrue(e.getMessage().contains("run the pull again to resume"), e.getMessage());
        Path part = cache.resolve("downloads/tiny-opt/blip2-dl4j-tests-blip2-tiny-opt/model.safetensors.part");
        assertEquals(1_000_000, Files.size(part));
        assertFalse(Files.exists(cache.resolve("tiny-opt.b2z")));

        server.hub(cache).pull("tiny-opt", listener);
        assertEquals("bytes=1000000-", server.requestsFor(WEIGHTS).get(1).range());
        assertFalse(Files.exists(part));
    }

    @Test
    void aDamagedFileInTheCacheIsDownloadedAgain() throws IOException {
        Path damaged = cache.resolve("downloads/tiny-itm/blip2-dl4j-tests-blip2-tiny-itm/model.safetensors");
        Files.createDirectories(damaged.getParent());
        Files.write(damaged, new byte[]{1, 2, 3});
        server.hub(cache).pull("tiny-itm", listener);

        assertTrue(messages.stream().anyMatch(m -> m.contains("is not the expected file")), messages.toString());
        assertEquals(1, server.requestsFor(WEIGHTS).size());
    }

    @Test
    void removeDeletesTheArtifactAndTheDownloads() throws IOException {
        Hub hub = new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withKeepSource(true));
        Path artifact = hub.pull("tiny-itm", listener);
        assertTrue(hub.remove("tiny-itm", listener::message));
        assertFalse(Files.exists(artifact));
        assertFalse(Files.exists(cache.resolve("downloads/tiny-itm")));
        assertFalse(hub.remove("tiny-itm", listener::message), "nothing left to remove");
    }

    /** The partial a conversion killed by {@code kill -9} left in the cache (named for the dead process). */
    private Path partialOfAKilledConversion(String name) throws Exception {
        Process killed = new ProcessBuilder("sleep", "60").start();
        killed.destroyForcibly().waitFor();
        Files.createDirectories(cache);
        return Files.write(cache.resolve("." + name + ".b2z." + killed.pid() + ".partial"), new byte[100_000]);
    }

    @Test
    void theNextPullDeletesWhatAKilledConversionLeft() throws Exception {
        Path left = partialOfAKilledConversion("tiny-itm");
        server.hub(cache).pull("tiny-itm", listener);
        assertFalse(Files.exists(left));
    }

    @Test
    void removeDeletesWhatAKilledConversionLeftEvenWithoutAnArtifact() throws Exception {
        Path left = partialOfAKilledConversion("tiny-itm");
        Hub hub = server.hub(cache);
        assertTrue(hub.remove("tiny-itm", listener::message), "something was removed");
        assertFalse(Files.exists(left));
    }

    @Test
    void anArtifactPlaceThatCannotBeWrittenStopsThePullBeforeAnyDownload() throws IOException {
        Files.createDirectories(cache.resolve("tiny-itm.b2z"));
        BadInputException e = assertThrows(BadInputException.class, () -> server.hub(cache).pull("tiny-itm", listener));
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
        assertEquals(List.of(), server.requests(), "nothing was downloaded");
    }

    @Test
    void twoThreadsPullingAtOnceDownloadOnce() throws Exception {
        server.throttle(WEIGHTS, 2_000_000);
        Hub hub = server.hub(cache);
        ExecutorService threads = Executors.newFixedThreadPool(2);
        try {
            Future<Path> first = threads.submit(() -> hub.pull("tiny-opt", listener));
            Future<Path> second = threads.submit(() -> hub.pull("tiny-opt", listener));
            assertEquals(first.get(), second.get());
        } finally {
            threads.shutdownNow();
        }
        assertEquals(1, server.requestsFor(WEIGHTS).size(), "one download; the other pull waited and found it cached");
        assertTrue(messages.stream().anyMatch(m -> m.contains("waiting for another pull in this process")), messages.toString());
        assertTrue(messages.stream().anyMatch(m -> m.contains("pulled meanwhile")), messages.toString());
    }

    @Test
    void aModelTooLargeForTheMemoryIsRefusedBeforeAnyDownload() {
        BadInputException e = assertThrows(BadInputException.class,
                () -> Blip2.pretrained("tiny-opt", server.hub(cache), MemoryCheck.limit(1_000_000), listener));

        assertTrue(e.getMessage().startsWith("tiny-opt needs about") && e.getMessage().contains("this machine has")
                && e.getMessage().contains("--no-memory-check"), e.getMessage());
        assertTrue(server.requests().isEmpty());
    }

    @Test
    void anUnknownNameListsTheKnownOnes() {
        BadInputException e = assertThrows(BadInputException.class, () -> server.hub(cache).pull("tiny-bert", listener));
        assertTrue(e.getMessage().contains("tiny-opt, tiny-itm"), e.getMessage());
    }

    private Path downloaded(String file) {
        return cache.resolve("downloads/tiny-opt/blip2-dl4j-tests-blip2-tiny-opt").resolve(file);
    }

    private Hub keepingSources() {
        return new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withKeepSource(true));
    }

    @Test
    void aTruncatedFileWithoutSizeOrShaLeftInTheCacheIsCompletedNotConverted() throws IOException {
        byte[] original = Files.readAllBytes(OPT_FILES.resolve(MERGES));
        Files.createDirectories(downloaded(MERGES).getParent());
        Files.write(downloaded(MERGES), Arrays.copyOf(original, 1000));
        keepingSources().pull("tiny-opt", listener);

        assertArrayEquals(original, Files.readAllBytes(downloaded(MERGES)));
        assertEquals(List.of("bytes=1000-"), server.requestsFor(MERGES).stream().map(LoopbackHub.Request::range).toList());
    }

    @Test
    void aWholeFileWithoutSizeOrShaLeftInTheCacheCostsOneRequestAndNoBytes() throws IOException {
        Files.createDirectories(downloaded(MERGES).getParent());
        Files.copy(OPT_FILES.resolve(MERGES), downloaded(MERGES));
        keepingSources().pull("tiny-opt", listener);

        assertEquals(List.of("bytes=" + Files.size(OPT_FILES.resolve(MERGES)) + "-"),
                server.requestsFor(MERGES).stream().map(LoopbackHub.Request::range).toList(), "answered 416: it is whole");
        assertArrayEquals(Files.readAllBytes(OPT_FILES.resolve(MERGES)), Files.readAllBytes(downloaded(MERGES)));
    }

    @Test
    void anOversizedFileLeftInTheCacheIsDeletedAndFetchedAgain() throws IOException {
        byte[] original = Files.readAllBytes(OPT_FILES.resolve("config.json"));
        Files.createDirectories(downloaded("config.json").getParent());
        // the catalogue expects about 1042 bytes: at most 2 x 1042 + 1 MB
        Files.write(downloaded("config.json"), new byte[3_000_000]);
        keepingSources().pull("tiny-opt", listener);

        assertTrue(messages.stream().anyMatch(m -> m.contains("config.json is not the expected file")
                && m.contains("more than the")), messages.toString());
        assertArrayEquals(original, Files.readAllBytes(downloaded("config.json")));
    }

    @Test
    void downloadedFilesThatCannotBeConvertedSayHowToRecover() throws IOException {
        CatalogueEntry entry = LoopbackHub.catalogue().require("tiny-opt");
        for (RemoteFile file : entry.sources().get(0).files()) {
            if (Files.exists(OPT_FILES.resolve(file.path()))) {
                Files.createDirectories(downloaded(file.path()).getParent());
                Files.copy(OPT_FILES.resolve(file.path()), downloaded(file.path()));
            }
        }
        Files.writeString(downloaded("config.json"), "{\"model_type\": \"blip-2\", \"vision_config\": ");
        DownloadException e = assertThrows(DownloadException.class, () -> offline().pull("tiny-opt", listener));

        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("blip2 rm tiny-opt")
                && e.getMessage().contains(cache.resolve("downloads/tiny-opt").toString()), e.getMessage());
        assertFalse(Files.exists(cache.resolve("tiny-opt.b2z")));

        new Hub(LoopbackHub.catalogue(), server.hub(cache).settings()).remove("tiny-opt", listener::message);
        assertTrue(Files.isRegularFile(server.hub(cache).pull("tiny-opt", listener)), "the hint works");
    }

    @Test
    void aPullWithoutNetworkFailsAtOnceNamingTheEndpointAndTheWayOut() throws IOException {
        int closed;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        Hub hub = new Hub(LoopbackHub.catalogue(),
                server.hub(cache).settings().withEndpoint(URI.create("http://127.0.0.1:" + closed)));
        long started = System.nanoTime();
        DownloadException e = assertThrows(DownloadException.class, () -> hub.pull("tiny-opt", listener));

        assertTrue(System.nanoTime() - started < 2_000_000_000L);
        assertTrue(e.getMessage().startsWith("cannot connect to 127.0.0.1:" + closed) && e.getMessage().contains("--offline")
                && e.getMessage().contains("HF_ENDPOINT"), e.getMessage());
        assertFalse(e.getMessage().contains(".part"), e.getMessage());
    }
}
