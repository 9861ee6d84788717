package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@code -o} (and every other output) will not overwrite, through the command line: an input of the same
 * command, a device or a pipe, an existing file without {@code --overwrite} (or, for finetune, {@code --resume});
 * each refused with exit code 3 naming the path, before any work; and a damaged checkpoint never resumed silently.
 */
class OutputFilesTest {
    @TempDir
    static Path dir;
    private static Path base;
    private static Path train;

    @BeforeAll
    static void data() throws IOException {
        train = VqaShapes.jsonl(dir.resolve("train.jsonl"),
                VqaShapes.write(Files.createDirectories(dir.resolve("images")), "", 4, 1));
        base = dir.resolve("base.b2z");
        CliRun convert = CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-opt").toString(), "-o",
                base.toString(), "--quiet");
        assertEquals(0, convert.exitCode(), convert.toString());
    }

    private static void assertRefused(CliRun run, Path path, String problem) {
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().startsWith("error: " + path.toAbsolutePath()) || run.err().startsWith("error: " + path),
                run.err());
        assertTrue(run.err().contains(problem), run.err());
        assertFalse(run.err().contains("\tat "), run.err());
        assertFalse(run.err().contains("training:"), "refused before training: " + run.err());
    }

    private static List<String> finetune(Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("finetune", "--model", base.toString(), "--train", train.toString(),
                "-o", out.toString(), "--no-augment", "--max-steps", "2", "--batch-size", "2", "--warmup", "0"));
        args.addAll(Arrays.asList(more));
        return args;
    }

    private static CliRun run(List<String> args) {
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void convertNeverWritesOverTheCheckpointItReads() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("checkpoint"));
        for (String name : List.of("model.safetensors", "config.json")) {
            Files.copy(Fixtures.root().resolve("blip2-tiny-itm").resolve(name), folder.resolve(name));
        }
        Path weights = folder.resolve("model.safetensors");
        byte[] before = Files.readAllBytes(weights);
        for (String overwrite : List.of("--quiet", "--overwrite")) {
            CliRun run = CliRun.of("convert", folder.toString(), "-o", weights.toString(), overwrite);
            assertRefused(run, weights, "input");
        }
        assertArrayEquals(before, Files.readAllBytes(weights));
    }

    @Test
    void convertReplacesAnExistingFileOnlyWithOverwriteAndNeverADeviceOrAPipe() throws Exception {
        String itm = Fixtures.root().resolve("blip2-tiny-itm").toString();
        Path out = Files.writeString(dir.resolve("existing.b2z"), "keep me");
        assertRefused(CliRun.of("convert", itm, "-o", out.toString(), "--quiet"), out, "--overwrite");
        assertEquals("keep me", Files.readString(out));
        assertEquals(0, CliRun.of("convert", itm, "-o", out.toString(), "--quiet", "--overwrite").exitCode());

        Path device = Files.createSymbolicLink(dir.resolve("null.b2z"), Path.of("/dev/null"));
        assertRefused(CliRun.of("convert", itm, "-o", device.toString(), "--overwrite"), device, "not a regular file");
        Path fifo = dir.resolve("pipe.b2z");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertRefused(CliRun.of("convert", itm, "-o", fifo.toString(), "--overwrite"), fifo, "not a regular file");
    }

    @Test
    void finetuneNeverWritesOverItsDataOrItsBaseModel() throws IOException {
        byte[] data = Files.readAllBytes(train);
        assertRefused(run(finetune(train, "--overwrite")), train, "input");
        assertArrayEquals(data, Files.readAllBytes(train));
        byte[] model = Files.readAllBytes(base);
        assertRefused(run(finetune(base, "--resume")), base, "input");
        assertArrayEquals(model, Files.readAllBytes(base));
        Path image = dir.resolve("images").toFile().listFiles()[0].toPath();
        assertRefused(run(finetune(dir.resolve("x.b2z"), "--plot", image.toString(), "--overwrite")), image, "input");
    }

    @Test
    void everyOutputLocationIsCheckedBeforeTheFirstStep() {
        Path missing = dir.resolve("no-such-folder/tuned.b2z");
        assertRefused(run(finetune(missing)), missing, "is not a directory");
        Path twice = dir.resolve("twice.b2z");
        assertRefused(run(finetune(twice, "--metrics", twice.toString())), twice, "two outputs");
    }

    @Test
    void aSecondRunWithoutResumeReplacesNothingOfTheFirst() throws IOException {
        Path tuned = dir.resolve("first.b2z");
        CliRun first = run(finetune(tuned));
        assertEquals(0, first.exitCode(), first.toString());
        Path metrics = dir.resolve("first.metrics.jsonl");
        byte[] artifact = Files.readAllBytes(tuned);
        byte[] log = Files.readAllBytes(metrics);

        CliRun again = run(finetune(tuned, "--lr", "1e-3"));
        assertRefused(again, tuned, "--resume continues the run that wrote it, --overwrite starts afresh");
        assertArrayEquals(artifact, Files.readAllBytes(tuned));
        assertArrayEquals(log, Files.readAllBytes(metrics));

        Path elsewhere = dir.resolve("second.b2z");
        Files.createDirectories(dir.resolve("second.checkpoints"));
        Files.copy(tuned, dir.resolve("second.checkpoints/checkpoint.ckpt"));
        CliRun overCheckpoint = run(finetune(elsewhere));
        assertRefused(overCheckpoint, dir.resolve("second.checkpoints/checkpoint.ckpt"), "already exists");

        CliRun afresh = run(finetune(tuned, "--lr", "1e-3", "--overwrite"));
        assertEquals(0, afresh.exitCode(), afresh.toString());
    }

    @Test
    void aDamagedCheckpointIsNeverResumedSilently() throws IOException {
        Path tuned = dir.resolve("damaged.b2z");
        CliRun whole = run(finetune(tuned, "--checkpoint-every", "1"));
        assertEquals(0, whole.exitCode(), whole.toString());
        Map<String, String> expected = FinetuneCliTest.inspectHashes(tuned);
        Path checkpoint = dir.resolve("damaged.checkpoints/checkpoint.ckpt");
        assertTrue(Files.exists(dir.resolve("damaged.checkpoints/checkpoint.ckpt.previous")), "the previous one is kept");

        long offset;
        try (ZipFile zip = ZipFile.builder().setPath(checkpoint).get()) {
            offset = zip.getEntry("tensors/query_tokens").getDataOffset() + 7;
        }
        try (RandomAccessFile file = new RandomAccessFile(checkpoint.toFile(), "rw")) {
            file.seek(offset);
            int b = file.read();
            file.seek(offset);
            file.write(b ^ 0x10);
        }
        CliRun resumed = run(finetune(tuned, "--checkpoint-every", "1", "--resume"));
        assertEquals(0, resumed.exitCode(), resumed.toString());
        assertTrue(resumed.err().contains("warning: " + checkpoint) && resumed.err().contains("query_tokens")
                && resumed.err().contains("resuming from the previous checkpoint"), resumed.err());
        assertTrue(resumed.err().contains("resuming after step 1"), resumed.err());
        assertEquals(expected, FinetuneCliTest.inspectHashes(tuned), "the step redone from the previous checkpoint "
                + "ends bit-identical");
    }

    @Test
    void plotReplacesAnExistingPngOnlyWithOverwrite() throws IOException {
        Path tuned = dir.resolve("plotted.b2z");
        assertEquals(0, run(finetune(tuned)).exitCode());
        Path metrics = dir.resolve("plotted.metrics.jsonl");
        Path png = dir.resolve("plotted.metrics.png");
        byte[] drawn = Files.readAllBytes(png);
        assertRefused(CliRun.of("plot", metrics.toString()), png, "--overwrite");
        assertArrayEquals(drawn, Files.readAllBytes(png));
        assertEquals(0, CliRun.of("plot", metrics.toString(), "--overwrite").exitCode());
        assertRefused(CliRun.of("plot", metrics.toString(), "-o", metrics.toString(), "--overwrite"), metrics, "input");
    }
}
