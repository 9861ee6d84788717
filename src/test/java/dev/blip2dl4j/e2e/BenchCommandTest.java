package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code blip2 bench} runs every stage, eager and graph, and the training step, and reports them as the peer's JSON lines. */
class BenchCommandTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void everyStageReportsOneJsonLine(String model) throws Exception {
        Path artifact = dir.resolve(model + ".b2z");
        assertEquals(0, CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-" + model).toString(), "-o",
                artifact.toString(), "--quiet").exitCode());
        for (String variant : new String[]{"--verbose", "--graph", "--resident"}) {
            CliRun bench = CliRun.of("bench", artifact.toString(), "--repeats", "2", "--warmup", "0", variant);
            assertEquals(0, bench.exitCode(), bench.toString());
            Map<String, JsonNode> stages = new HashMap<>();
            for (String line : bench.out().split("\n")) {
                if (line.startsWith("{")) {
                    JsonNode json = new ObjectMapper().readTree(line);
                    stages.put(json.get("name").asText(), json);
                }
            }
            for (String stage : new String[]{"load_weights", "vision", "qformer", "lm_prefill", "lm_decode_per_token",
                    "caption_end_to_end", "full_forward"}) {
                assertTrue(stages.containsKey(stage), stage + " missing: " + bench);
                assertTrue(stages.get(stage).get("median_s").asDouble() > 0, stages.get(stage).toString());
            }
            assertEquals(variant.equals("--graph") ? "graph" : "eager", stages.get("vision").get("execution").asText());
            assertEquals(variant.equals("--resident") ? "resident" : "mapped",
                    stages.get("caption_end_to_end").get("weights").asText());
            assertEquals(20, stages.get("lm_decode_per_token").get("step_median_s").size());
        }
        CliRun train = CliRun.of("bench", artifact.toString(), "--repeats", "1", "--warmup", "0", "--stages",
                "train_step", "--batch", "2");
        assertEquals(0, train.exitCode(), train.toString());
        JsonNode step = new ObjectMapper().readTree(train.out().lines().filter(l -> l.contains("\"train_step\""))
                .findFirst().orElseThrow(() -> new AssertionError(train.toString())));
        assertEquals(2, step.get("batch").asInt());
        assertTrue(step.get("median_s").asDouble() > 0);
    }

    @Test
    void theLogitsErrorComparesAgainstTheNamedReference() throws Exception {
        Path reference = dir.resolve("opt.b2z");
        Path int8 = dir.resolve("opt-int8.b2z");
        String fixture = Fixtures.root().resolve("blip2-tiny-opt").toString();
        assertEquals(0, CliRun.of("convert", fixture, "-o", reference.toString(), "--quiet").exitCode());
        assertEquals(0, CliRun.of("convert", fixture, "--dtype", "int8", "-o", int8.toString(), "--quiet").exitCode());
        CliRun bench = CliRun.of("bench", int8.toString(), "--stages", "lm_logits_error", "--reference",
                reference.toString());
        assertEquals(0, bench.exitCode(), bench.toString());
        JsonNode line = new ObjectMapper().readTree(bench.out().lines().filter(l -> l.contains("\"lm_logits_error\""))
                .findFirst().orElseThrow(() -> new AssertionError(bench.toString())));
        assertTrue(line.get("relative_rms").asDouble() > 0, line.toString());
        assertTrue(line.get("top1_agreement").asDouble() <= 1, line.toString());

        CliRun missing = CliRun.of("bench", int8.toString(), "--stages", "lm_logits_error");
        assertEquals(3, missing.exitCode(), missing.toString());
        assertTrue(missing.err().contains("--reference") && !missing.err().contains("\tat "), missing.toString());
    }
}
