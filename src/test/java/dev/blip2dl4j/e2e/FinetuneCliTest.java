package dev.blip2dl4j.e2e;

import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.testing.ScriptedOpt;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.text.Tokenizer;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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

    /**
     * A fine-tuned OPT ends its answers at the newline training ended them with, as LAVIS generates: its
     * generation_config.json names it as the end, over a base whose own end is {@code </s>}, and {@code vqa},
     * {@code eval} and validation stop there with answers of two and three tokens. The base's frozen language
     * model is a script ({@link ScriptedOpt}: "... color" red square, "... shape" small green box, each then a
     * newline and " blue" over and over), which the training of the Q-Former and projection leaves as it is.
     */
    @Test
    void aFineTunedOptEndsItsAnswersAtTheNewlineInVqaEvalAndValidation() throws IOException {
        long newline;
        Map<Long, Long> next;
        try (Blip2 fixture = Blip2.load(Fixtures.model("opt"))) {
            Tokenizer t = fixture.tokenizer();
            newline = token(t, "\n");
            next = Map.of(token(t, " color"), token(t, " red"), token(t, " red"), token(t, " square"),
                    token(t, " square"), newline, token(t, " shape"), token(t, " small"), token(t, " small"),
                    token(t, " green"), token(t, " green"), token(t, " box"), token(t, " box"), newline,
                    newline, token(t, " blue"));
        }
        Path scriptedBase = dir.resolve("scripted-base.b2z");
        try (Artifact from = Artifact.open(base)) {
            ObjectNode endsAtS = (ObjectNode) new ObjectMapper().readTree(from.file("generation_config.json").orElseThrow());
            endsAtS.put("eos_token_id", 2);
            rewrite(from, ScriptedOpt.weights((OptConfig) from.config().text(), next),
                    Map.of("generation_config.json", endsAtS.toString().getBytes(StandardCharsets.UTF_8)), scriptedBase);
        }
        Path image = validation.get(0).image();
        Path data = dir.resolve("data/multi-token.jsonl");
        Files.writeString(data, "{\"image\": \"" + image + "\", \"question\": \"What is its Color.\", \"answer\": \"red square\"}\n"
                + "{\"image\": \"" + image + "\", \"question\": \"what is its color\", \"answer\": \"red\"}\n"
                + "{\"image\": \"" + image + "\", \"question\": \"what is its shape\", \"answer\": \"small green box\"}\n");
        String template = "Question: {}";

        // trained one step with validation as LAVIS's predict_answers generates (5 beams, 10 new tokens, the defaults)
        Path tuned = dir.resolve("scripted-tuned.b2z");
        CliRun finetune = CliRun.of("finetune", "--model", scriptedBase.toString(), "--train", train.toString(), "--val",
                data.toString(), "-o", tuned.toString(), "--template", template, "--no-augment", "--max-steps", "1",
                "--batch-size", "8");
        assertEquals(0, finetune.exitCode(), finetune.toString());
        List<Double> accuracies = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("scripted-tuned.metrics.jsonl"), StandardCharsets.UTF_8)) {
            JsonNode m = new ObjectMapper().readTree(line);
            if (m.get("kind").asText().equals("validation")) {
                accuracies.add(m.get("accuracy").asDouble());
            }
        }
        assertEquals(List.of(2.0 / 3, 2.0 / 3), accuracies, "validation before and after the step: 2 of 3 answered whole");

        // the recorded end: the newline's id, where the base said </s>; the rest of the base's settings kept
        try (Artifact b = Artifact.open(scriptedBase); Artifact a = Artifact.open(tuned)) {
            JsonNode before = new ObjectMapper().readTree(b.file("generation_config.json").orElseThrow());
            JsonNode after = new ObjectMapper().readTree(a.file("generation_config.json").orElseThrow());
            assertEquals(2, before.get("eos_token_id").asLong());
            assertEquals(newline, after.get("eos_token_id").asLong());
            assertEquals(before.get("pad_token_id"), after.get("pad_token_id"));
            assertEquals(before.get("bos_token_id"), after.get("bos_token_id"));
        }

        // vqa stops there with the model's own settings; the base runs on past it to the token limit
        assertEquals(image + ": red square", vqa(tuned, "what is its color", template));
        assertEquals(image + ": small green box", vqa(tuned, "what is its shape", template));
        assertTrue(vqa(scriptedBase, "what is its color", template).startsWith(image + ": red square\n blue blue"));

        CliRun eval = CliRun.of("eval", "--model", tuned.toString(), "--data", data.toString(), "--template", template,
                "--json");
        assertEquals(0, eval.exitCode(), eval.toString());
        JsonNode scored = new ObjectMapper().readTree(eval.out());
        assertEquals(2.0 / 3, scored.get("accuracy").asDouble(), 1e-9);
        List<String> answers = new ArrayList<>();
        scored.get("predictions").forEach(p -> answers.add(p.get("answer").asText()));
        assertEquals(List.of("red square", "red square", "small green box"), answers);
    }

    /** The id of a text the tokenizer makes one token of (after the {@code </s>} it puts in front of any text). */
    private static long token(Tokenizer tokenizer, String text) {
        long[] prefix = tokenizer.encode("");
        long[] ids = tokenizer.encode(text);
        assertEquals(prefix.length + 1, ids.length, "'" + text + "' is one token");
        return ids[prefix.length];
    }

    /** `blip2 vqa`'s line for the first validation image. */
    private static String vqa(Path model, String question, String template) {
        CliRun run = CliRun.of("vqa", "--model", model.toString(), "-q", question, "--template", template,
                validation.get(0).image().toString());
        assertEquals(0, run.exitCode(), run.toString());
        return run.out().strip();
    }

    /** A copy of {@code from} with some tensors (float32) and files replaced. */
    private static void rewrite(Artifact from, Map<String, INDArray> tensors, Map<String, byte[]> files, Path to) {
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(to, List.of(), false))) {
            for (String name : from.fileNames()) {
                if (!name.equals(ArtifactWriter.MANIFEST)) {
                    writer.addFile(name, files.getOrDefault(name, from.file(name).orElseThrow()));
                }
            }
            List<Manifest.Tensor> written = new ArrayList<>();
            for (Manifest.Tensor t : from.manifest().tensors()) {
                INDArray replaced = tensors.get(t.name());
                byte[] bytes;
                if (replaced != null) {
                    ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(replaced.length() * 4)).order(ByteOrder.LITTLE_ENDIAN);
                    b.asFloatBuffer().put(replaced.castTo(DataType.FLOAT).dup('c').data().asFloat());
                    bytes = b.array();
                } else {
                    ByteBuffer mapped = from.map(t.name());
                    bytes = new byte[mapped.remaining()];
                    mapped.get(bytes);
                }
                ArtifactWriter.TensorOutput out = writer.beginTensor(t.name(), from.dtype(t.name()), t.shape());
                out.write(bytes, 0, bytes.length);
                String sha = Sha256.of(bytes);
                out.finish(() -> sha);
            }
            Manifest m = from.manifest();
            writer.commit(new Manifest(m.format(), m.formatVersion(), m.modelClass(), m.languageModel(), m.converter(),
                    m.source(), m.dtype(), List.of(), m.notes()));
        }
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
