package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code blip2 finetune}, {@code eval}, {@code plot} and the fine-tuned artifact through {@code vqa}, on the
 * tiny OPT fixture and a synthetic set of coloured squares ({@link VqaShapes}).
 */
class FinetuneCliTest {
    /** Validation and `blip2 vqa` answer with one greedy token: the answers are one token each. */
    private static final String[] ONE_TOKEN = {"--eval-beams", "1", "--eval-max-new-tokens", "1"};

    @TempDir
    static Path dir;
    private static Path base;
    private static List<VqaShapes.Example> validation;
    private static Path train;
    private static Path val;

    @BeforeAll
    static void data() throws IOException {
        Path images = Files.createDirectories(dir.resolve("data/images"));
        train = VqaShapes.jsonl(dir.resolve("data/train.jsonl"), VqaShapes.write(images, "train", 8, 1));
        validation = VqaShapes.write(images, "val", 4, 2);
        val = VqaShapes.jsonl(dir.resolve("data/val.jsonl"), validation);
        base = dir.resolve("base.b2z");
        CliRun convert = CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-opt").toString(), "-o",
                base.toString(), "--quiet");
        assertEquals(0, convert.exitCode(), convert.toString());
    }

    @Test
    void fineTuningTeachesTheAnswersAndTheArtifactAnswersBetterThroughVqa() throws IOException {
        Path tuned = dir.resolve("tuned.b2z");
        List<String> args = new ArrayList<>(List.of("finetune", "--model", base.toString(), "--train", train.toString(),
                "--val", val.toString(), "-o", tuned.toString(), "--no-augment", "--lr", "5e-3", "--min-lr", "5e-4",
                "--warmup", "0", "--epochs", "10", "--batch-size", "8", "--eval-every", "10"));
        args.addAll(List.of(ONE_TOKEN));
        long started = System.nanoTime();
        CliRun run = CliRun.of(args.toArray(String[]::new));
        double seconds = (System.nanoTime() - started) / 1e9;
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.err().contains("step 1/20") && run.err().contains("it/s") && run.err().contains("ETA"), run.err());

        List<JsonNode> validations = new ArrayList<>();
        int trainLines = 0;
        int settingsLines = 0;
        for (String line : Files.readAllLines(dir.resolve("tuned.metrics.jsonl"), StandardCharsets.UTF_8)) {
            JsonNode m = new ObjectMapper().readTree(line);
            if (m.get("kind").asText().equals("validation")) {
                validations.add(m);
            } else if (m.get("kind").asText().equals("train")) {
                trainLines++;
            } else {
                settingsLines++;
            }
        }
        assertEquals(20, trainLines);
        assertEquals(1, settingsLines, "the run's settings, on the first line");
        double before = validations.get(0).get("accuracy").asDouble();
        double after = validations.get(validations.size() - 1).get("accuracy").asDouble();
        System.out.printf("fine-tuning: validation accuracy %.3f -> %.3f in %.1f s%n", before, after, seconds);
        assertTrue(after >= before + 0.5, "validation accuracy " + before + " -> " + after + "\n" + run);
        assertTrue(validations.get(validations.size() - 1).get("loss").asDouble() < validations.get(0).get("loss").asDouble());
        byte[] png = Files.readAllBytes(dir.resolve("tuned.metrics.png"));
        assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(png, 4));

        // the artifact: every command loads it, and it answers better than the model it came from
        assertTrue(correctAnswers(tuned) >= correctAnswers(base) + validation.size() / 2);
        CliRun evalTuned = CliRun.of("eval", "--model", tuned.toString(), "--data", val.toString(), "--num-beams", "1",
                "--max-new-tokens", "1", "--json");
        assertEquals(0, evalTuned.exitCode(), evalTuned.toString());
        assertEquals(after, new ObjectMapper().readTree(evalTuned.out()).get("accuracy").asDouble(), 1e-9,
                "eval scores as validation did");

        // frozen weights untouched: every tensor but the Q-Former, query tokens and projection hashes as before
        Map<String, String> baseHashes = inspectHashes(base);
        Map<String, String> tunedHashes = inspectHashes(tuned);
        assertEquals(baseHashes.keySet(), tunedHashes.keySet());
        int trained = 0;
        for (String name : baseHashes.keySet()) {
            boolean trains = name.equals("query_tokens") || name.startsWith("qformer.") || name.startsWith("language_projection.");
            if (!trains) {
                assertEquals(baseHashes.get(name), tunedHashes.get(name), name + " is frozen");
            } else if (!baseHashes.get(name).equals(tunedHashes.get(name))) {
                trained++;
            }
        }
        assertTrue(trained > 10, trained + " trained tensors changed");

        CliRun plot = CliRun.of("plot", dir.resolve("tuned.metrics.jsonl").toString(), "-o", dir.resolve("again.png").toString());
        assertEquals(0, plot.exitCode(), plot.toString());
        assertTrue(Files.size(dir.resolve("again.png")) > 1000);
    }

    /**
     * A row too long for the model (the tiny OPT has 128 positions, 8 of them for the image queries) is found when
     * the data is read, before the first step: training rows with their answer, validation and eval rows with
     * the new tokens of their answers; {@code fail} names its file and line, {@code skip} leaves it out and counts it.
     */
    @Test
    void aRowTooLongForTheModelIsFoundBeforeTheFirstStep() throws IOException {
        String image = new ObjectMapper().readTree(Files.readString(train).lines().findFirst().orElseThrow())
                .get("image").asText();
        Path data = dir.resolve("data/long.jsonl");
        Files.writeString(data, Files.readString(train) + "{\"image\": \"" + image + "\", \"question\": \"q\", "
                + "\"answer\": \"" + "red ".repeat(150).strip() + "\"}\n");
        int line = (int) Files.readString(data).lines().count();
        String[] common = {"finetune", "--model", base.toString(), "--train", data.toString(), "-o",
                dir.resolve("long.b2z").toString(), "--no-augment", "--max-steps", "1", "--batch-size", "4"};
        CliRun failed = CliRun.of(common);
        assertEquals(3, failed.exitCode(), failed.toString());
        assertTrue(failed.err().contains(data + ": line " + line + ": the question and answer take ")
                && failed.err().contains("more than OPT's 128 positions"), failed.err());
        assertFalse(failed.err().contains("training:"), "found before training starts: " + failed.err());

        List<String> skip = new ArrayList<>(List.of(common));
        skip.addAll(List.of("--on-bad-row", "skip"));
        CliRun skipped = CliRun.of(skip.toArray(String[]::new));
        assertEquals(0, skipped.exitCode(), skipped.toString());
        assertTrue(skipped.err().contains("skipped 1 bad row:") && skipped.err().contains(data + " line " + line),
                skipped.err());

        // a question of 50 words (the most the prompt keeps) leaves no room for 80 new tokens: in validation and in eval alike
        Path questions = dir.resolve("data/long-question.jsonl");
        Files.writeString(questions, Files.readString(val) + "{\"image\": \"" + image + "\", \"question\": \""
                + "what ".repeat(50).strip() + "?\", \"answer\": \"red\"}\n");
        int questionLine = (int) Files.readString(questions).lines().count();
        List<String> validate = new ArrayList<>(List.of(common));
        validate.set(validate.indexOf("--train") + 1, train.toString());
        validate.set(validate.indexOf("-o") + 1, dir.resolve("long-question.b2z").toString()); // long.b2z is the skip run's
        validate.addAll(List.of("--val", questions.toString(), "--eval-max-new-tokens", "80"));
        CliRun validated = CliRun.of(validate.toArray(String[]::new));
        assertEquals(3, validated.exitCode(), validated.toString());
        assertTrue(validated.err().contains(questions + ": line " + questionLine + ": the question takes ")
                && validated.err().contains("80 new tokens"), validated.err());
        CliRun eval = CliRun.of("eval", "--model", base.toString(), "--data", questions.toString(),
                "--max-new-tokens", "80", "--num-beams", "1", "--on-bad-row", "skip", "--json");
        assertEquals(0, eval.exitCode(), eval.toString());
        assertTrue(eval.err().contains("skipped 1 bad row:") && eval.err().contains(questions + " line " + questionLine),
                eval.err());
        assertEquals(validation.size(), new ObjectMapper().readTree(eval.out()).get("questions").asInt());
    }

    /** How many validation images `blip2 vqa` answers right with the model. */
    private static int correctAnswers(Path model) {
        List<String> args = new ArrayList<>(List.of("vqa", "--model", model.toString(), "-q", VqaShapes.QUESTION,
                "--max-new-tokens", "1"));
        validation.forEach(e -> args.add(e.image().toString()));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, run.exitCode(), run.toString());
        int correct = 0;
        for (VqaShapes.Example e : validation) {
            String line = run.out().lines().filter(l -> l.startsWith(e.image() + ": ")).findFirst().orElseThrow();
            correct += line.substring(line.indexOf(": ") + 2).strip().equals(e.answer()) ? 1 : 0;
        }
        System.out.printf("blip2 vqa with %s: %d of %d right%n", model.getFileName(), correct, validation.size());
        return correct;
    }

    /** SHA-256 of every tensor as `blip2 inspect` hashes it from the file (checked against the manifest). */
    static Map<String, String> inspectHashes(Path artifact) throws IOException {
        CliRun inspect = CliRun.of("inspect", artifact.toString(), "--json");
        assertEquals(0, inspect.exitCode(), inspect.toString());
        Map<String, String> hashes = new TreeMap<>();
        for (JsonNode t : new ObjectMapper().readTree(inspect.out()).get("tensors")) {
            assertTrue(t.get("matches_manifest").asBoolean(), t.toString());
            hashes.put(t.get("name").asText(), t.get("sha256").asText());
        }
        return hashes;
    }

    @Test
    void theTrainStepBenchmarkRuns() {
        CliRun bench = CliRun.of("bench", base.toString(), "--stages", "train_step", "--repeats", "1", "--warmup", "0");
        assertEquals(0, bench.exitCode(), bench.toString());
        assertTrue(bench.out().contains("{\"name\": \"train_step\", \"median_s\": "), bench.out());
    }

    @Test
    void aBadRowNamesItsFileAndLineOrIsSkippedAndCounted() throws IOException {
        Path data = dir.resolve("data/bad.jsonl");
        Files.writeString(data, Files.readString(train)
                + "{\"image\": \"images/missing.png\", \"question\": \"q\", \"answer\": \"a\"}\n");
        int line = (int) Files.readString(data).lines().count();
        String[] common = {"finetune", "--model", base.toString(), "--train", data.toString(), "-o",
                dir.resolve("bad.b2z").toString(), "--no-augment", "--max-steps", "1", "--batch-size", "4"};
        CliRun failed = CliRun.of(common);
        assertEquals(3, failed.exitCode(), failed.toString());
        assertTrue(failed.err().contains(data + ": line " + line + ": image ") && failed.err().contains("not found"),
                failed.err());

        List<String> skip = new ArrayList<>(List.of(common));
        skip.addAll(List.of("--on-bad-row", "skip"));
        CliRun skipped = CliRun.of(skip.toArray(String[]::new));
        assertEquals(0, skipped.exitCode(), skipped.toString());
        assertTrue(skipped.err().contains("skipped 1 bad row:") && skipped.err().contains(data + " line " + line),
                skipped.err());
    }
}
