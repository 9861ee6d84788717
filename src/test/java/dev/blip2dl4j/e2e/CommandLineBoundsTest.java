package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Numbers and images a command cannot use: one clear error each, at once, and the other images still run. */
class CommandLineBoundsTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();
    private static final String OPT = Fixtures.root().resolve("blip2-tiny-opt").toString();

    @TempDir
    Path dir;

    @Test
    void absurdGenerationNumbersAreRefusedBeforeAnyGeneration() {
        List<List<String>> cases = List.of(
                List.of("--num-beams", "5000", "num_beams (--num-beams) must be from 1 to 64, not 5000"),
                List.of("--max-new-tokens", "-1", "max_new_tokens (--max-new-tokens) must be from 1 to 4096, not -1"),
                List.of("--max-new-tokens", "0", "max_new_tokens (--max-new-tokens) must be from 1 to 4096, not 0"),
                List.of("--max-new-tokens", "2000000000", "must be from 1 to 4096, not 2000000000"),
                List.of("--num-return-sequences", "3", "num_return_sequences (--num-return-sequences) must be from 1 to 1"),
                List.of("--temperature", "NaN", "temperature (--temperature) must be a finite number above 0"),
                List.of("--batch-size", "0", "--batch-size must be from 1 to 64, not 0"),
                List.of("--batch-size", "100000", "--batch-size must be from 1 to 64, not 100000"),
                List.of("--max-pixels", "-5", "--max-pixels must be at least 1, not -5"));
        for (List<String> c : cases) {
            CliRun run = assertTimeoutPreemptively(Duration.ofSeconds(60),
                    () -> CliRun.of("caption", "--model", OPT, MERLION, c.get(0), c.get(1)));
            assertEquals(3, run.exitCode(), run.toString());
            assertTrue(run.err().startsWith("error: ") && run.err().contains(c.get(2)), run.toString());
            assertTrue(run.out().isEmpty(), run.toString());
        }
    }

    @Test
    void aHugeFileAndAPipeAreErrorsForThemselvesAndTheBatchGoesOn() throws Exception {
        Path huge = dir.resolve("huge.png");
        try (RandomAccessFile sparse = new RandomAccessFile(huge.toFile(), "rw")) {
            sparse.setLength(2L << 30);
        }
        Path pipe = dir.resolve("pipe.png");
        assertEquals(0, new ProcessBuilder("mkfifo", pipe.toString()).start().waitFor());
        CliRun run = assertTimeoutPreemptively(Duration.ofSeconds(120), () -> CliRun.of("caption", "--model", OPT,
                huge.toString(), pipe.toString(), MERLION, "--max-new-tokens", "2", "--batch-size", "2"));

        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.out().startsWith(MERLION + ": "), run.toString());
        assertTrue(run.err().contains(huge + ": the file has " + (2L << 30) + " bytes"), run.toString());
        assertTrue(run.err().contains(pipe + ": is not a regular file"), run.toString());
        assertFalse(run.err().contains("internal error") || run.err().contains("OutOfMemory"), run.toString());
    }
}
