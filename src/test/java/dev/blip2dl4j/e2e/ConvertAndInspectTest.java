package dev.blip2dl4j.e2e;

import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What the README's first command does: convert the bundled tiny models and inspect the artifacts. */
class ConvertAndInspectTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5", "itm"})
    void inspectHashesMatchTheSafetensorsBytes(String model) throws Exception {
        Path fixture = Fixtures.root().resolve("blip2-tiny-" + model);
        Path artifact = dir.resolve(model + ".b2z");
        CliRun convert = CliRun.of("convert", fixture.toString(), "-o", artifact.toString(), "--quiet");
        assertEquals(0, convert.exitCode(), convert.toString());
        assertTrue(convert.out().contains("wrote " + artifact), convert.toString());

        CliRun inspect = CliRun.of("inspect", artifact.toString(), "--json");
        assertEquals(0, inspect.exitCode(), inspect.toString());
        JsonNode json = new ObjectMapper().readTree(inspect.out());
        Map<String, String> listed = new TreeMap<>();
        for (JsonNode t : json.get("tensors")) {
            listed.put(t.get("name").asText(), t.get("sha256").asText());
            assertTrue(t.get("matches_manifest").asBoolean(), t.toString());
        }
        assertEquals(independentHashes(fixture.resolve("model.safetensors")), listed);
        assertEquals("blip2-dl4j", json.get("manifest").get("format").asText());
        assertTrue(json.get("files").toString().contains("config.json"));
        assertTrue(json.get("files").toString().contains("tokenizer/tokenizer.json"), json.get("files").toString());
    }

    @Test
    void tableOutputListsTensorsAndManifest() {
        Path artifact = dir.resolve("opt.b2z");
        assertEquals(0, CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-opt").toString(), "-o",
                artifact.toString(), "--quiet").exitCode());
        CliRun inspect = CliRun.of("inspect", artifact.toString());
        assertEquals(0, inspect.exitCode(), inspect.toString());
        assertTrue(inspect.out().contains("Blip2ForConditionalGeneration (opt), F32, 113 tensors"), inspect.out());
        assertTrue(inspect.out().matches("(?s).*\\nlanguage_model\\.model\\.decoder\\.embed_tokens\\.weight +F32 +\\[50272, 12\\] +[0-9a-f]{64}\\n.*"),
                inspect.out());
        assertTrue(inspect.out().contains("source (hf):\n    model.safetensors  2,644,264 bytes  sha256 "), inspect.out());
    }

    /** SHA-256 of each tensor's bytes in the checkpoint, hashed here rather than by the artifact code. */
    static Map<String, String> independentHashes(Path safetensors) throws NoSuchAlgorithmException {
        Map<String, String> hashes = new TreeMap<>();
        for (SourceTensor t : SafetensorsFile.open(safetensors).tensors()) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(t.readFully());
            hashes.put(t.name(), HexFormat.of().formatHex(sha.digest()));
        }
        assertFalse(hashes.isEmpty());
        return hashes;
    }
}
