package dev.blip2dl4j.finetune;

import dev.blip2dl4j.OutputFile;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.finetune.eval.VqaEvaluation;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.generate.GenerationConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** What a run records of itself: the metrics log's settings line and times, and what resume says differs. */
class RunRecordTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private static FinetuneSettings settings(double lr, long seed, boolean augment) {
        FinetuneSettings d = FinetuneSettings.lavisDefaults();
        return new FinetuneSettings(d.epochs(), d.maxSteps(), d.batchSize(), d.accumulation(), lr, d.minLearningRate(),
                d.warmupSteps(), d.warmupStartRate(), d.weightDecay(), d.decayGroups(), d.maxGradientNorm(), seed, augment,
                d.template(), d.maxQuestionWords(), d.checkpointEvery(), d.evaluateEvery(), d.evalBeams(),
                d.evalMaxNewTokens());
    }

    @Test
    void resumeNamesOnlyTheSettingsThatDiffer() {
        JsonNode recorded = JSON.valueToTree(settings(1e-5, 42, true).training());
        assertEquals(List.of(), FinetuneSettings.differences(recorded, JSON.valueToTree(settings(1e-5, 42, true).training())));
        assertEquals(List.of("--lr: 1e-5 in the checkpoint, 2e-5 now"),
                FinetuneSettings.differences(recorded, JSON.valueToTree(settings(2e-5, 42, true).training())));
        assertEquals(List.of("--lr: 1e-5 in the checkpoint, 0.001 now", "--seed: 42 in the checkpoint, 7 now",
                        "--no-augment: not given in the checkpoint, given now"),
                FinetuneSettings.differences(recorded, JSON.valueToTree(settings(1e-3, 7, false).training())));
        // a long seed read back from JSON as an int is the same number
        assertEquals(List.of(), FinetuneSettings.differences(JSON.valueToTree(Map.of("seed", 42L)),
                JSON.valueToTree(Map.of("seed", 42))));
        assertEquals(List.of("train.jsonl: 'ab' in the checkpoint, 'cd' now", "val.jsonl: 'ef' in the checkpoint, not set now"),
                FinetuneSettings.differences(JSON.valueToTree(Map.of("train.jsonl", "ab", "val.jsonl", "ef")),
                        JSON.valueToTree(Map.of("train.jsonl", "cd"))).stream().sorted().toList());
    }

    @Test
    void theMetricsLogStartsWithTheSettingsAndTimesEveryLine() throws IOException {
        Path file = dir.resolve("m.jsonl");
        FinetuneSettings settings = settings(1e-4, 42, true);
        Finetuner.Provenance provenance = new Finetuner.Provenance(Map.of("train.jsonl", "ab12"), "base-sha");
        Instant before = Instant.now();
        try (MetricsLog log = new MetricsLog(OutputFile.check(file, List.of(), false), settings, provenance)) {
            log.started(0, 3);
            for (int step = 1; step <= 3; step++) {
                log.stepped(new Finetuner.StepRecord(step, 3, 0, 1.0, 1e-4, 0.5, 0.1));
            }
        }
        List<JsonNode> lines = read(file);
        assertEquals(4, lines.size());
        JsonNode first = lines.get(0);
        assertEquals("settings", first.get("kind").asText());
        assertEquals(List.of(), FinetuneSettings.differences(JSON.valueToTree(settings.all()), first.get("settings")));
        assertEquals(19, first.get("settings").size());
        assertEquals("ab12", first.get("data").get("train.jsonl").asText());
        assertEquals("base-sha", first.get("base_model").asText());
        assertEquals(3, first.get("total_steps").asInt());
        for (JsonNode line : lines) {
            Instant time = Instant.parse(line.get("time").asText());
            assertTrue(!time.isBefore(before.minusSeconds(1)) && !time.isAfter(Instant.now()), line.toString());
        }

        // resumed after step 1: the first run's settings line and step 1 stay, steps 2 and 3 are redone
        try (MetricsLog log = new MetricsLog(OutputFile.check(file, List.of(), true), settings, provenance)) {
            log.started(1, 3);
            log.stepped(new Finetuner.StepRecord(2, 3, 0, 1.0, 1e-4, 0.5, 0.1));
        }
        List<String> kinds = read(file).stream().map(l -> l.get("kind").asText() + l.path("step").asInt(-1)).toList();
        assertEquals(List.of("settings-1", "train1", "settings-1", "train2"), kinds);
        assertEquals(1, read(file).get(2).get("first_step").asInt());
    }

    @Test
    void optAnswersEndAtTheNewlineTrainingEndsThemWithAsLavisPredictAnswers() {
        try (Blip2 fixture = Blip2.load(Fixtures.root().resolve("blip2-tiny-opt"))) {
            GenerationConfig generation = VqaEvaluation.generation(fixture, 5, 10);
            assertEquals(1, generation.eosTokenIds().size());
            long end = generation.eosTokenIds().get(0);
            assertEquals("\n", fixture.tokenizer().decode(new long[]{end}, false));
            assertEquals(5, generation.numBeams());
            assertEquals(10, generation.maxNewTokens());
            assertEquals(1, generation.minNewTokens(), "an empty answer is never given");
            assertEquals(0.0, generation.lengthPenalty());
        }
        try (Blip2 fixture = Blip2.load(Fixtures.root().resolve("blip2-tiny-t5"))) {
            GenerationConfig generation = VqaEvaluation.generation(fixture, 5, 10);
            assertEquals(fixture.generationDefaults().eosTokenIds(), generation.eosTokenIds());
            assertEquals(-1.0, generation.lengthPenalty());
        }
    }

    private static List<JsonNode> read(Path file) throws IOException {
        List<JsonNode> lines = new ArrayList<>();
        for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            lines.add(JSON.readTree(line));
        }
        return lines;
    }
}
