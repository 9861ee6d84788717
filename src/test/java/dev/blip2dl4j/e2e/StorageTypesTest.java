package dev.blip2dl4j.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every fixture converted to bfloat16 and int8 runs through the command line: the generation models answer with
 * transformers' greedy ids and caption, the retrieval model matches (float16 too), `blip2 verify` passes under the
 * type's tolerance (the training step's loss and gradients included), and a fine-tuned export of an int8 base, OPT or
 * Flan-T5, keeps its storage types.
 */
class StorageTypesTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();

    @TempDir
    Path dir;

    @Test
    void optAnswersCaptionsAndVerifiesInEachType() throws IOException {
        answersCaptionsAndVerifies("blip2-tiny-opt", Map.of("bfloat16", 19, "int8", 10));
    }

    @Test
    void t5AnswersCaptionsAndVerifiesInEachType() throws IOException {
        // int8: the eager path from the image and the prompt, and the training step (eager, as every type's)
        answersCaptionsAndVerifies("blip2-tiny-t5", Map.of("bfloat16", 22, "int8", 9));
    }

    @Test
    void retrievalMatchesAndVerifiesInEachType() throws IOException {
        Path fixture = Fixtures.root().resolve("blip2-tiny-itm");
        Map<String, Path> artifacts = new HashMap<>();
        for (String type : List.of("bfloat16", "float16", "int8")) {
            Path artifact = convert(fixture, type);
            artifacts.put(type, artifact);
            CliRun match = CliRun.of("match", "--model", artifact.toString(), "-t",
                    "a merlion fountain spouting water in a city", "-t", "a dog sitting on the beach", MERLION, "--json");
            assertEquals(0, match.exitCode(), match.toString());
            // the float32 probabilities (CaptionVqaMatchTest) within the type's tolerance
            JsonNode results = new ObjectMapper().readTree(match.out());
            assertEquals(0.7073943, results.get(0).get("itm_probability").asDouble(), 2e-2, type);
            assertEquals(0.5212039, results.get(1).get("itm_probability").asDouble(), 2e-2, type);
        }
        verify(artifacts.get("bfloat16"), fixture, 15);
        // int8: the graphs' outputs are not checked, matching from the image file and the captions is
        CliRun int8 = verify(artifacts.get("int8"), fixture, 5);
        assertTrue(int8.out().contains("the graphs read float32 weights"), int8.out());
        assertTrue(int8.out().contains("itm_probabilities (from the captions)"), int8.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"blip2-tiny-opt", "blip2-tiny-t5"})
    void aFineTunedInt8ModelKeepsItsStorageTypes(String fixture) throws IOException {
        Path base = convert(Fixtures.root().resolve(fixture), "int8");
        Path images = dir.resolve("images");
        Files.createDirectories(images);
        Path train = VqaShapes.jsonl(dir.resolve("train.jsonl"), VqaShapes.write(images, "train", 2, 1));
        Path tuned = dir.resolve("tuned.b2z");
        CliRun run = CliRun.of("finetune", "--model", base.toString(), "--train", train.toString(), "-o",
                tuned.toString(), "--no-augment", "--epochs", "1", "--batch-size", "4", "--warmup", "0");
        assertEquals(0, run.exitCode(), run.toString());
        try (Artifact before = Artifact.open(base); Artifact after = Artifact.open(tuned)) {
            Map<String, String> types = types(before.manifest());
            assertEquals(types, types(after.manifest()), "every tensor in the base's type");
            assertTrue(types.containsValue("I8"), types.toString());
            assertEquals(before.manifest().formatVersion(), after.manifest().formatVersion());
            for (Manifest.Tensor t : before.manifest().tensors()) {
                if (t.quantization() != null) {
                    assertEquals(t.quantization(), after.tensor(t.name()).orElseThrow().quantization(), t.name());
                }
            }
        }
        CliRun vqa = CliRun.of("vqa", "--model", tuned.toString(), "-q", "what color is it?", MERLION);
        assertEquals(0, vqa.exitCode(), vqa.toString());
    }

    private void answersCaptionsAndVerifies(String name, Map<String, Integer> compared) throws IOException {
        Path fixture = Fixtures.root().resolve(name);
        JsonNode reference = new ObjectMapper().readTree(fixture.resolve("reference.json").toFile());
        for (String type : List.of("bfloat16", "int8")) {
            Path artifact = convert(fixture, type);
            CliRun vqa = CliRun.of("vqa", "--model", artifact.toString(), "-q", "which city is this?", MERLION,
                    "--max-new-tokens", "10", "--json");
            assertEquals(0, vqa.exitCode(), vqa.toString());
            if (name.contains("opt")) { // the reference's greedy run has this prompt (T5's has its own)
                assertEquals(reference.get("generation").get("greedy").get("sequences").toString(),
                        new ObjectMapper().readTree(vqa.out()).get(0).get("sequences").get(0).get("ids").toString(), type);
            }
            CliRun caption = CliRun.of("caption", "--model", artifact.toString(), MERLION, MERLION, "--batch-size", "2");
            assertEquals(0, caption.exitCode(), caption.toString());
            assertEquals(2, caption.out().lines().count(), caption.out());
            verify(artifact, fixture, compared.get(type));
        }
    }

    private Path convert(Path fixture, String type) {
        Path artifact = dir.resolve(fixture.getFileName() + "-" + type + ".b2z");
        CliRun run = CliRun.of("convert", fixture.toString(), "--dtype", type, "-o", artifact.toString(), "--quiet");
        assertEquals(0, run.exitCode(), run.toString());
        return artifact;
    }

    private static CliRun verify(Path artifact, Path fixture, int compared) {
        CliRun run = CliRun.of("verify", "--model", artifact.toString(), "--reference", fixture.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains(compared + " outputs compared, 0 failed"), run.out());
        return run;
    }

    private static Map<String, String> types(Manifest manifest) {
        return manifest.tensors().stream().collect(Collectors.toMap(Manifest.Tensor::name, Manifest.Tensor::dtype));
    }
}
