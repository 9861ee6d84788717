package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.artifact.Sha256;
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
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One file over HTTP from a loopback hub: resumed, retried within bounds, checked, never half-renamed. */
class DownloaderTest {
    private static final String WEIGHTS = "model.safetensors";
    private static final Path ORIGINAL = Fixtures.root().resolve("blip2-tiny-opt/model.safetensors");
    /** A file the catalogue gives no exact size and no SHA-256, as the hub shows none for small files. */
    private static final String MERGES = "merges.txt";

    @TempDir
    Path dir;
    private LoopbackHub server;
    private RemoteSource source;
    private RemoteFile weights;
    private final List<String> messages = new ArrayList<>();
    private final PullListener listener = new PullListener() {
        @Override
        public void message(String text) {
            messages.add(text);
        }
    };

    @BeforeEach
    void start() throws IOException {
        server = new LoopbackHub();
        source = LoopbackHub.catalogue().require("tiny-opt").sources().get(0);
        weights = source.files().stream().filter(f -> f.path().equals(WEIGHTS)).findFirst().orElseThrow();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private URI uri(String file) {
        return source.uri(new RemoteFile(file, null, null, null, false), server.endpoint(), null);
    }

    private Downloader downloader() {
        return new Downloader(LoopbackHub.quickPolicy(), null, server.endpoint());
    }

    @Test
    void aTransferCutInTheMiddleResumesWithARangeRequest() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Cut(1_000_000));
        Path target = dir.resolve(WEIGHTS);
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertArrayEquals(Files.readAllBytes(ORIGINAL), Files.readAllBytes(target));
        assertFalse(Files.exists(Downloader.partOf(target)));
        List<LoopbackHub.Request> asked = server.requestsFor(WEIGHTS);
        assertEquals(2, asked.size(), asked.toString());
        assertNull(asked.get(0).range());
        assertEquals("bytes=1000000-", asked.get(1).range(), "the second request asks only for what is missing");
    }

    @Test
    void aPartLeftByAnEarlierRunIsResumed() throws IOException {
        Path target = dir.resolve(WEIGHTS);
        byte[] original = Files.readAllBytes(ORIGINAL);
        Files.write(Downloader.partOf(target), Arrays.copyOf(original, 123_456));
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertArrayEquals(original, Files.readAllBytes(target));
        assertEquals(List.of("bytes=123456-"), server.requestsFor(WEIGHTS).stream().map(LoopbackHub.Request::range).toList());
    }

    @Test
    void aCompletePartIsCheckedAndKeptWhenTheServerSaysThereIsNothingLeft() throws IOException {
        Path target = dir.resolve(WEIGHTS);
        Files.copy(ORIGINAL, Downloader.partOf(target));
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));
        assertEquals(weights.sha256(), Sha256.ofFile(target));
        assertEquals(1, server.requestsFor(WEIGHTS).size(), "one request, answered 416");
    }

    @Test
    void aFileWhoseSha256DoesNotMatchIsRejectedAndRemoved() {
        server.trouble(WEIGHTS, new LoopbackHub.Corrupt());
        Path target = dir.resolve(WEIGHTS);
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertTrue(e.getMessage().contains("SHA-256") && e.getMessage().contains(weights.sha256())
                && e.getMessage().contains("deleted"), e.getMessage());
        assertFalse(Files.exists(target));
        assertFalse(Files.exists(Downloader.partOf(target)));
    }

    @Test
    void aFileOfTheWrongSizeIsRejected() {
        RemoteFile wrongSize = new RemoteFile(WEIGHTS, weights.size() + 1, null, null, false);
        Path target = dir.resolve(WEIGHTS);
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, wrongSize, listener));
        assertTrue(e.getMessage().contains((weights.size() + 1) + " are expected"), e.getMessage());
        assertFalse(Files.exists(target));
    }

    @Test
    void serverErrorsAreRetriedThenGiveAClearError() {
        server.trouble(WEIGHTS, new LoopbackHub.Status(500), 3);
        Path target = dir.resolve(WEIGHTS);
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertTrue(e.getMessage().contains("failed after 3 attempts") && e.getMessage().contains("HTTP 500"), e.getMessage());
        assertEquals(3, server.requestsFor(WEIGHTS).size());
        assertEquals(2, messages.stream().filter(m -> m.contains("retrying")).count(), messages.toString());
    }

    @Test
    void aServerErrorThatPassesIsRetriedToSuccess() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Status(503)).trouble(WEIGHTS, new LoopbackHub.Status(429));
        Path target = dir.resolve(WEIGHTS);
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));
        assertArrayEquals(Files.readAllBytes(ORIGINAL), Files.readAllBytes(target));
    }

    @Test
    void notFoundIsNotRetried() {
        Path target = dir.resolve("absent.bin");
        DownloadException e = assertThrows(DownloadException.class, () -> downloader().fetch(uri("absent.bin"), target,
                new RemoteFile("absent.bin", null, null, null, false), listener));

        assertTrue(e.getMessage().contains("not found (HTTP 404)") && e.getMessage().contains("Entry not found"), e.getMessage());
        assertEquals(1, server.requestsFor("absent.bin").size());
    }

    @Test
    void anOptionalFileTheServerLacksIsSkipped() {
        Path target = dir.resolve("tokenizer.json");
        assertFalse(downloader().fetch(uri("tokenizer.json"), target,
                new RemoteFile("tokenizer.json", null, null, null, true), listener));
        assertFalse(Files.exists(target));
    }

    @Test
    void refusedAccessSaysToSetHfToken() {
        server.trouble(WEIGHTS, new LoopbackHub.Status(401));
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), dir.resolve(WEIGHTS), weights, listener));
        assertTrue(e.getMessage().contains("HTTP 401") && e.getMessage().contains("HF_TOKEN"), e.getMessage());
        assertEquals(1, server.requestsFor(WEIGHTS).size());
    }

    @Test
    void aStalledBodyIsAbandonedAndResumed() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Stall(700_000, 3_000));
        Path target = dir.resolve(WEIGHTS);
        long started = System.nanoTime();
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertTrue(System.nanoTime() - started < 2_500_000_000L, "gave up on the stall after ~0.5 s, not 3 s");
        assertArrayEquals(Files.readAllBytes(ORIGINAL), Files.readAllBytes(target));
        assertEquals("bytes=700000-", server.requestsFor(WEIGHTS).get(1).range());
    }

    @Test
    void slowResponsesGiveAClearErrorAfterBoundedRetries() {
        server.trouble(WEIGHTS, new LoopbackHub.Silence(10_000), 3);
        Path target = dir.resolve(WEIGHTS);
        long started = System.nanoTime();
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, weights, listener));

        assertTrue(e.getMessage().contains("failed after 3 attempts") && e.getMessage().contains("HttpTimeoutException"),
                e.getMessage());
        assertTrue(System.nanoTime() - started < 9_000_000_000L, "3 tries of 2 s, not the server's 10 s");
    }

    @Test
    void theTokenGoesToTheHubButNotAlongARedirectToAnotherHost() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.RedirectToOtherHost());
        Downloader downloader = new Downloader(LoopbackHub.quickPolicy(), "hf_secret", server.endpoint());
        Path target = dir.resolve(WEIGHTS);
        assertTrue(downloader.fetch(uri(WEIGHTS), target, weights, listener));

        List<LoopbackHub.Request> asked = server.requestsFor(WEIGHTS);
        assertEquals(2, asked.size());
        assertEquals("Bearer hf_secret", asked.get(0).authorization());
        assertTrue(asked.get(1).host().startsWith("localhost"), asked.get(1).host());
        assertNull(asked.get(1).authorization(), "not sent to the other host");
        assertArrayEquals(Files.readAllBytes(ORIGINAL), Files.readAllBytes(target));
    }

    private RemoteFile merges() {
        return source.files().stream().filter(f -> f.path().equals(MERGES)).findFirst().orElseThrow();
    }

    @Test
    void theTokenIsNotSentToAnotherPortOfTheSameHost() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Redirect(server.otherOrigin() + uri(WEIGHTS).getRawPath()));
        Downloader downloader = new Downloader(LoopbackHub.quickPolicy(), "hf_secret", server.endpoint());
        assertTrue(downloader.fetch(uri(WEIGHTS), dir.resolve(WEIGHTS), weights, listener));

        List<LoopbackHub.Request> asked = server.requestsFor(WEIGHTS);
        assertEquals(2, asked.size());
        assertEquals("Bearer hf_secret", asked.get(0).authorization());
        assertEquals(server.otherOrigin().getPort(), asked.get(1).port());
        assertNull(asked.get(1).authorization(), "the same host name on another port is another origin");
    }

    @Test
    void theTokenFollowsARedirectWithinTheEndpointsOrigin() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Redirect(uri(WEIGHTS).getRawPath()));
        Downloader downloader = new Downloader(LoopbackHub.quickPolicy(), "hf_secret", server.endpoint());
        assertTrue(downloader.fetch(uri(WEIGHTS), dir.resolve(WEIGHTS), weights, listener));

        assertEquals(List.of("Bearer hf_secret", "Bearer hf_secret"),
                server.requestsFor(WEIGHTS).stream().map(LoopbackHub.Request::authorization).toList());
    }

    @Test
    void anOriginIsTheSchemeTheHostAndThePort() {
        URI hub = URI.create("https://huggingface.co");
        assertTrue(Downloader.sameOrigin(URI.create("https://HuggingFace.co:443/a/resolve/main/x"), hub));
        assertFalse(Downloader.sameOrigin(URI.create("http://huggingface.co/a/resolve/main/x"), hub), "a downgrade to http");
        assertFalse(Downloader.sameOrigin(URI.create("https://huggingface.co:8443/x"), hub), "another port");
        assertFalse(Downloader.sameOrigin(URI.create("https://cdn-lfs.huggingface.co/x"), hub), "another host");
        assertFalse(Downloader.sameOrigin(URI.create("https://huggingface.co.example.com/x"), hub), "a look-alike host");
        assertTrue(Downloader.sameOrigin(URI.create("http://127.0.0.1/x"), URI.create("http://127.0.0.1:80")));
        assertFalse(Downloader.sameOrigin(URI.create("http://127.0.0.1:8080/x"), URI.create("http://127.0.0.1")));
    }

    @Test
    void redirectsToAnythingButHttpOrToBrokenAddressesAreRefusedWithAClearError() {
        List<String> locations = List.of("file:///etc/passwd", "ftp://127.0.0.1/model.safetensors",
                "jar:file:/tmp/x.jar!/model.safetensors", "mailto:someone@example.com", "http://[::1",
                "https://exa mple.com/x", "http:///no-host", "http://");
        for (String location : locations) {
            server.trouble(WEIGHTS, new LoopbackHub.Redirect(location));
            Path target = dir.resolve(WEIGHTS);
            DownloadException e = assertThrows(DownloadException.class,
                    () -> downloader().fetch(uri(WEIGHTS), target, weights, listener), location);
            assertTrue(e.getMessage().contains("redirected to '" + location + "'"), e.getMessage());
            assertFalse(Files.exists(target));
            assertFalse(Files.exists(Downloader.partOf(target)));
        }
        assertEquals(locations.size(), server.requestsFor(WEIGHTS).size(), "each refused at once, none retried");
    }

    @Test
    void a416ForAPartTheServersLengthDoesNotConfirmIsNeverCommitted() throws IOException {
        byte[] original = Files.readAllBytes(Fixtures.root().resolve("blip2-tiny-opt").resolve(MERGES));
        Path target = dir.resolve(MERGES);
        Files.write(Downloader.partOf(target), Arrays.copyOf(original, 1000));
        server.trouble(MERGES, new LoopbackHub.Unsatisfiable(original.length));
        assertTrue(downloader().fetch(uri(MERGES), target, merges(), listener));

        assertArrayEquals(original, Files.readAllBytes(target), "not the 1000 bytes the part had");
        assertEquals(Arrays.asList("bytes=1000-", null),
                server.requestsFor(MERGES).stream().map(LoopbackHub.Request::range).toList(), "started over");
    }

    @Test
    void a416WithoutTheServersLengthIsNotTakenForAWholeFile() throws IOException {
        byte[] original = Files.readAllBytes(Fixtures.root().resolve("blip2-tiny-opt").resolve(MERGES));
        Path target = dir.resolve(MERGES);
        Files.write(Downloader.partOf(target), Arrays.copyOf(original, 1000));
        server.trouble(MERGES, new LoopbackHub.Unsatisfiable(-1));
        assertTrue(downloader().fetch(uri(MERGES), target, merges(), listener));
        assertArrayEquals(original, Files.readAllBytes(target));
    }

    @Test
    void aPartLongerThanTheServersFileIsStartedOver() throws IOException {
        byte[] original = Files.readAllBytes(Fixtures.root().resolve("blip2-tiny-opt").resolve(MERGES));
        Path target = dir.resolve(MERGES);
        Files.write(Downloader.partOf(target), Arrays.copyOf(original, original.length + 10));
        assertTrue(downloader().fetch(uri(MERGES), target, merges(), listener));
        assertArrayEquals(original, Files.readAllBytes(target));
    }

    @Test
    void aFileFarLargerThanTheCatalogueSaysIsRefusedBeforeAByteIsWritten() {
        RemoteFile small = new RemoteFile(WEIGHTS, null, 100L, null, false);
        Path target = dir.resolve(WEIGHTS);
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, small, listener));

        assertTrue(e.getMessage().contains("offers " + weights.size() + " bytes") && e.getMessage().contains("about 100"),
                e.getMessage());
        assertFalse(Files.exists(target));
        assertFalse(Files.exists(Downloader.partOf(target)));
        assertEquals(1, server.requestsFor(WEIGHTS).size(), "not retried");
    }

    @Test
    void aBodyWithoutALengthIsStoppedOnceItGrowsPastTheBound() {
        server.trouble(WEIGHTS, new LoopbackHub.Chunked());
        RemoteFile small = new RemoteFile(WEIGHTS, null, 100L, null, false);
        Path target = dir.resolve(WEIGHTS);
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader().fetch(uri(WEIGHTS), target, small, listener));

        assertTrue(e.getMessage().contains("sent more than " + small.maxBytes() + " bytes"), e.getMessage());
        assertFalse(Files.exists(target));
        assertFalse(Files.exists(Downloader.partOf(target)));
    }

    @Test
    void aBodyWithoutALengthWithinItsBoundIsKept() throws IOException {
        server.trouble(WEIGHTS, new LoopbackHub.Chunked());
        Path target = dir.resolve(WEIGHTS);
        assertTrue(downloader().fetch(uri(WEIGHTS), target, weights, listener));
        assertArrayEquals(Files.readAllBytes(ORIGINAL), Files.readAllBytes(target));
    }

    @Test
    void anEndpointThatCannotBeReachedFailsAtOnceAndSaysWhatToDo() throws IOException {
        int closed;
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        for (URI nowhere : List.of(URI.create("http://127.0.0.1:" + closed + "/x/" + WEIGHTS),
                URI.create("http://no-such-host.invalid/x/" + WEIGHTS))) {
            Path target = dir.resolve(WEIGHTS);
            long started = System.nanoTime();
            DownloadException e = assertThrows(DownloadException.class,
                    () -> downloader().fetch(nowhere, target, weights, listener));

            assertTrue(System.nanoTime() - started < 2_000_000_000L, "no retries when nothing was ever reached");
            assertTrue(e.getMessage().startsWith("cannot connect to " + nowhere.getHost()) && e.getMessage().contains("--offline")
                    && e.getMessage().contains("HF_ENDPOINT"), e.getMessage());
            assertFalse(e.getMessage().contains(".part"), "there is no part to speak of");
            assertFalse(Files.exists(Downloader.partOf(target)));
        }
        assertTrue(messages.stream().noneMatch(m -> m.contains("retrying")), messages.toString());
    }

    @Test
    void aServerLostAfterItAnsweredIsRetriedAndNoAbsentPartIsMentioned() throws IOException {
        Downloader downloader = downloader();
        assertTrue(downloader.fetch(uri(MERGES), dir.resolve(MERGES), merges(), listener));
        URI weightsUri = uri(WEIGHTS);
        server.close();
        DownloadException e = assertThrows(DownloadException.class,
                () -> downloader.fetch(weightsUri, dir.resolve(WEIGHTS), weights, listener));

        assertTrue(e.getMessage().contains("failed after 3 attempts") && e.getMessage().contains("ConnectException"),
                e.getMessage());
        assertFalse(e.getMessage().contains(".part"), e.getMessage());
    }
}
