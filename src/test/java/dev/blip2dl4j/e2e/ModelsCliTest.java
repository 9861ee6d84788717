package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** blip2 models, pull and rm, and --model NAME, against the tiny models on a loopback hub. */
class ModelsCliTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();

    @TempDir
    Path cache;
    private FixtureHub hub;

    @BeforeEach
    void start() throws IOException {
        hub = new FixtureHub();
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    /** The command with the tiny catalogue, this test's cache and the loopback hub. */
    private CliRun run(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--catalogue", Fixtures.root().resolve("hub/catalogue.json").toString(),
                "--cache-dir", cache.toString(), "--endpoint", hub.endpoint()));
        return CliRun.of(all.toArray(String[]::new));
    }

    @Test
    void pullThenCaptionByNameOfflineThenRemove() {
        CliRun listed = run("models");
        assertEquals(0, listed.exitCode(), listed.toString());
        assertTrue(listed.out().matches("(?s).*tiny-opt +caption,vqa +0\\.00B +4 MB +3 MB +2 MB +789 kB +1/10 +not cached.*"), listed.out());

        CliRun pulled = run("pull", "tiny-opt", "--quiet");
        assertEquals(0, pulled.exitCode(), pulled.toString());
        assertTrue(pulled.out().startsWith("tiny-opt: " + cache.resolve("tiny-opt.b2z") + " ("), pulled.out());
        String listedAgain = run("models").out();
        assertTrue(listedAgain.matches("(?s).*tiny-opt .* cached, 4 MB.*"), listedAgain);
        CliRun again = run("pull", "tiny-opt");
        assertTrue(again.out().contains("already cached at"), again.toString());

        hub.close();
        CliRun byName = run("caption", "--model", "tiny-opt", "--offline", MERLION, "--max-new-tokens", "5");
        CliRun byPath = CliRun.of("caption", "--model", Fixtures.root().resolve("blip2-tiny-opt").toString(), MERLION,
                "--max-new-tokens", "5");
        assertEquals(0, byName.exitCode(), byName.toString());
        assertEquals(byPath.out(), byName.out(), "the pulled model captions as the checkpoint does");

        CliRun removed = run("rm", "tiny-opt");
        assertTrue(removed.out().startsWith("removed tiny-opt (4 MB freed)"), removed.toString());
        assertFalse(Files.exists(cache.resolve("tiny-opt.b2z")));
        CliRun missing = run("caption", "--model", "tiny-opt", "--offline", MERLION);
        assertEquals(5, missing.exitCode(), missing.toString());
        assertTrue(missing.err().startsWith("error: tiny-opt is not in the cache"), missing.err());
    }

    @Test
    void matchPullsTheModelOnFirstUse() {
        CliRun run = run("match", "--model", "tiny-itm", "--text", "a fountain", MERLION, "--json");
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(Files.isRegularFile(cache.resolve("tiny-itm.b2z")));
        assertTrue(hub.requests() > 0);
        assertFalse(Files.exists(cache.resolve("downloads/tiny-itm")), "the raw files are gone");
    }

    @Test
    void aNameThatIsNeitherAFileNorInTheCatalogueIsABadInput() {
        CliRun run = run("caption", "--model", "blip2-opt-27b", MERLION);
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().contains("blip2-opt-27b: is neither a file nor a model name"), run.err());
        CliRun pull = run("pull", "blip2-opt-27b");
        assertEquals(3, pull.exitCode());
        assertTrue(pull.err().contains("no model is called 'blip2-opt-27b'") && pull.err().contains("tiny-opt, tiny-itm"),
                pull.err());
    }

    @Test
    void theBuiltInCatalogueListsEveryModelWithItsFilesAndWhatIsUnverified() throws IOException {
        CliRun table = CliRun.of("models", "--cache-dir", cache.toString());
        assertEquals(0, table.exitCode(), table.toString());
        for (String name : List.of("blip2-opt-2.7b", "blip2-flan-t5-xxl", "blip2-itm-vit-g-coco", "lavis-pretrain_opt2.7b", "lavis-coco")) {
            assertTrue(table.out().contains("\n" + name + " "), name + "\n" + table.out());
        }
        assertTrue(table.out().matches("(?s).*\nblip2-flan-t5-xxl +caption,vqa +12\\.\\d\\dB +[\\d.]+ GB\\+ +58\\.\\d GB!? "
                        + "+29\\.\\d GB!? +1[5-6]\\.\\d GB .*"), table.out());

        CliRun detail = CliRun.of("models", "blip2-opt-2.7b", "--cache-dir", cache.toString());
        assertTrue(detail.out().contains("Salesforce/blip2-opt-2.7b@c7d6c9f37354a91481abf26893b22ffcb6d10878"), detail.out());
        assertTrue(detail.out().contains("sha256 b81228c9ac1b3dee1731ee71d51fe3b2c34f915019c44c25a793b51300ae24fc"), detail.out());
        assertTrue(detail.out().contains("not verified:"), detail.out());

        JsonNode json = new ObjectMapper().readTree(CliRun.of("models", "--json", "--cache-dir", cache.toString()).out());
        assertEquals(18, json.size());
        assertFalse(json.get(0).get("cached").asBoolean());
    }
}
