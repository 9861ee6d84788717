package dev.blip2dl4j.e2e;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.MemoryCheck;
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

/** blip2 pull --dtype, models and rm per storage type, and the memory check in the type asked. */
class PullStorageCliTest {
    @TempDir
    Path cache;
    @TempDir
    Path work;
    private FixtureHub hub;
    private Path catalogue;

    @BeforeEach
    void start() throws IOException {
        hub = new FixtureHub();
        // tiny-opt's files, with a parameter count that fits this machine in int8 only (int8 x 1.2 = 2/3 of it)
        ObjectMapper json = new ObjectMapper();
        ObjectNode tree = (ObjectNode) json.readTree(Fixtures.root().resolve("hub/catalogue.json").toFile());
        ObjectNode big = ((ObjectNode) tree.get("models").get(0)).deepCopy();
        big.put("name", "big-opt").put("parameters", MemoryCheck.physicalMemory() * 10 / 18);
        ((ArrayNode) tree.get("models")).add(big);
        catalogue = Files.writeString(work.resolve("catalogue.json"), tree.toString());
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    private CliRun run(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--catalogue", catalogue.toString(), "--cache-dir", cache.toString(), "--endpoint", hub.endpoint()));
        return CliRun.of(all.toArray(String[]::new));
    }

    @Test
    void pullEachTypeListThemRemoveOne() {
        CliRun int8 = run("pull", "tiny-opt", "--dtype", "int8", "--quiet");
        assertEquals(0, int8.exitCode(), int8.toString());
        assertTrue(int8.out().startsWith("tiny-opt: " + cache.resolve("tiny-opt@int8.b2z") + " ("), int8.out());
        CliRun mixed = run("pull", "tiny-opt", "--dtype", "int8", "--vision-dtype", "bfloat16", "--quiet");
        assertTrue(mixed.out().startsWith("tiny-opt: " + cache.resolve("tiny-opt@vision-bfloat16.lm-int8.b2z")), mixed.toString());
        CliRun float32 = run("pull", "tiny-opt", "--quiet");
        assertTrue(float32.out().startsWith("tiny-opt: " + cache.resolve("tiny-opt.b2z")), float32.toString());
        assertTrue(run("pull", "tiny-opt", "--dtype", "int8").out().contains("already cached at"));

        String listed = run("models").out();
        assertTrue(listed.matches("(?s).*\ntiny-opt .* cached, 4 MB float32, \\d+ MB int8, \\d+ MB vision-bfloat16\\.lm-int8\n.*"), listed);
        String described = run("models", "tiny-opt").out();
        assertTrue(described.contains("    int8: " + cache.resolve("tiny-opt@int8.b2z")), described);

        CliRun removed = run("rm", "tiny-opt", "--dtype", "int8");
        assertTrue(removed.out().startsWith("removed tiny-opt@int8.b2z ("), removed.toString());
        assertFalse(Files.exists(cache.resolve("tiny-opt@int8.b2z")));
        assertTrue(Files.exists(cache.resolve("tiny-opt.b2z")) && Files.exists(cache.resolve("tiny-opt@vision-bfloat16.lm-int8.b2z")));
        assertTrue(run("rm", "tiny-opt", "--dtype", "int8").out().startsWith("tiny-opt is not in the cache as int8"));
        CliRun all = run("rm", "tiny-opt");
        assertTrue(all.out().startsWith("removed tiny-opt ("), all.toString());
        assertFalse(Files.exists(cache.resolve("tiny-opt.b2z")) || Files.exists(cache.resolve("tiny-opt@vision-bfloat16.lm-int8.b2z")));
    }

    @Test
    void captionByNameTakesTheTypeAsPullDoesAndAFileRefusesIt() {
        CliRun int8 = run("caption", "--model", "tiny-opt", "--dtype", "int8", "--max-new-tokens", "3",
                Fixtures.root().resolve("common/merlion.png").toString());
        assertEquals(0, int8.exitCode(), int8.toString());
        assertTrue(Files.isRegularFile(cache.resolve("tiny-opt@int8.b2z")) && !Files.exists(cache.resolve("tiny-opt.b2z")),
                "pulled as int8 only");
        CliRun file = run("caption", "--model", cache.resolve("tiny-opt@int8.b2z").toString(), "--dtype", "bfloat16",
                Fixtures.root().resolve("common/merlion.png").toString());
        assertEquals(3, file.exitCode(), file.toString());
        assertTrue(file.err().contains("is a file: its storage types are the ones it was converted to"), file.err());
    }

    @Test
    void aModelTooLargeInTheTypeAskedIsRefusedBeforeAnyDownloadNamingTheTypeThatFits() {
        CliRun float32 = run("pull", "big-opt", "--quiet");
        assertEquals(3, float32.exitCode(), float32.toString());
        assertTrue(float32.err().startsWith("error: big-opt needs about") && float32.err().contains("stored as float32")
                && float32.err().contains("It fits with its weights stored as int8")
                && float32.err().contains("blip2 pull big-opt --dtype int8"), float32.err());
        assertEquals(0, hub.requests(), "nothing downloaded");
        assertEquals(3, run("pull", "big-opt", "--dtype", "bfloat16").exitCode(), "bfloat16 does not fit either");

        CliRun int8 = run("pull", "big-opt", "--dtype", "int8", "--quiet");
        assertEquals(0, int8.exitCode(), int8.toString());
        assertTrue(Files.isRegularFile(cache.resolve("big-opt@int8.b2z")));
        CliRun anyway = run("pull", "big-opt", "--no-memory-check", "--quiet");
        assertEquals(0, anyway.exitCode(), anyway.toString());
    }
}
