package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.cli.Blip2Command;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A fine-tuning process killed after a checkpoint and resumed ends with the same weights, bit for bit, as a
 * run never stopped: with augmentation on, so the random state is carried over too, and gradient
 * accumulation, warmup and a step limit inside the 20 steps the epochs would take; OPT and Flan-T5.
 */
class FinetuneResumeTest {
    private static final int STEPS = 16;

    @TempDir
    Path dir;

    private List<String> finetune(Path out) {
        return new ArrayList<>(List.of("finetune", "--model", dir.resolve("base.b2z").toString(), "--train",
                dir.resolve("train.jsonl").toString(), "-o", out.toString(), "--lr", "5e-3", "--warmup", "3",
                "--epochs", "10", "--batch-size", "2", "--grad-accum", "2", "--max-steps", "" + STEPS,
                "--checkpoint-every", "3", "--seed", "7"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"blip2-tiny-opt", "blip2-tiny-t5"})
    void aKilledRunResumedEndsWithTheWeightsOfARunNeverStopped(String fixture) throws Exception {
        VqaShapes.jsonl(dir.resolve("train.jsonl"), VqaShapes.write(Files.createDirectories(dir.resolve("images")), "", 4, 3));
        CliRun convert = CliRun.of("convert", Fixtures.root().resolve(fixture).toString(), "-o",
                dir.resolve("base.b2z").toString(), "--quiet");
        assertEquals(0, convert.exitCode(), convert.toString());

        Path whole = dir.resolve("whole.b2z");
        CliRun uninterrupted = CliRun.of(finetune(whole).toArray(String[]::new));
        assertEquals(0, uninterrupted.exitCode(), uninterrupted.toString());

        Path resumed = dir.resolve("resumed.b2z");
        Path checkpoint = dir.resolve("resumed.checkpoints/checkpoint.ckpt");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), Blip2Command.class.getName()));
        command.addAll(finetune(resumed));
        Process process = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("killed.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (!Files.exists(checkpoint)) {
            assertTrue(process.isAlive(), "the run is alive until its first checkpoint:\n" + log());
            assertTrue(System.nanoTime() < deadline, "a checkpoint within two minutes:\n" + log());
            Thread.sleep(10);
        }
        process.destroyForcibly().waitFor();

        List<String> resume = finetune(resumed);
        resume.add("--resume");
        CliRun continued = CliRun.of(resume.toArray(String[]::new));
        assertEquals(0, continued.exitCode(), continued.toString());
        Matcher after = Pattern.compile("resuming after step (\\d+)").matcher(continued.err());
        assertTrue(after.find(), continued.err());
        int step = Integer.parseInt(after.group(1));
        assertTrue(step > 0 && step < STEPS, "killed mid-run, after step " + step);
        System.out.printf("killed after the checkpoint of step %d of %d; resumed%n", step, STEPS);

        Map<String, String> expected = FinetuneCliTest.inspectHashes(whole);
        Map<String, String> actual = FinetuneCliTest.inspectHashes(resumed);
        assertEquals(expected, actual, "every tensor, trained ones included, bit for bit");
        assertTrue(!expected.equals(FinetuneCliTest.inspectHashes(dir.resolve("base.b2z"))), "and training changed some");
        // the metrics log holds each step once: the killed run's steps after its checkpoint were dropped and redone
        long trainLines = Files.readAllLines(dir.resolve("resumed.metrics.jsonl"), StandardCharsets.UTF_8).stream()
                .filter(l -> l.contains("\"train\"")).count();
        assertEquals(STEPS, trainLines);
        try (var left = Files.list(checkpoint.getParent())) {
            assertEquals(List.of("checkpoint.ckpt", "checkpoint.ckpt.previous"),
                    left.map(p -> p.getFileName().toString()).sorted().toList(),
                    "the latest checkpoint and the one before it, nothing half-written");
        }

        // a checkpoint continues only the run it belongs to
        List<String> otherRate = finetune(resumed);
        otherRate.set(otherRate.indexOf("--lr") + 1, "1e-3");
        otherRate.add("--resume");
        CliRun refused = CliRun.of(otherRate.toArray(String[]::new));
        assertEquals(3, refused.exitCode(), refused.toString());
        assertTrue(refused.err().contains("was made with other settings: --lr: 0.005 in the checkpoint, 0.001 now. "),
                refused.err());
        assertTrue(!refused.err().contains("seed") && !refused.err().contains("batch_size"),
                "only the difference is named: " + refused.err());
        // the log: the first run's settings line and the resumed run's, every line with its time
        List<String> log = Files.readAllLines(dir.resolve("resumed.metrics.jsonl"), StandardCharsets.UTF_8);
        assertTrue(log.get(0).startsWith("{\"kind\":\"settings\"") && log.get(0).contains("\"lr\":0.005"), log.get(0));
        assertEquals(2, log.stream().filter(l -> l.startsWith("{\"kind\":\"settings\"")).count());
        assertTrue(log.stream().allMatch(l -> l.matches(".*\"time\":\"\\d{4}-\\d\\d-\\d\\dT[^\"]+Z\".*")), log.toString());
    }

    private String log() throws java.io.IOException {
        Path log = dir.resolve("killed.log");
        return Files.exists(log) ? Files.readString(log) : "";
    }
}
