package dev.blip2dl4j.e2e;

import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line's answer to bad input: exit code 3, one readable paragraph naming the file, no output file. */
class BadInputTest {
    @TempDir
    Path dir;

    @Test
    void truncatedCheckpoint() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("cut"));
        Path fixture = Fixtures.root().resolve("blip2-tiny-opt");
        Files.copy(fixture.resolve("config.json"), folder.resolve("config.json"));
        byte[] whole = Files.readAllBytes(fixture.resolve("model.safetensors"));
        Files.write(folder.resolve("model.safetensors"), Arrays.copyOf(whole, whole.length - 1000));
        CliRun run = convert(folder);
        assertBadInput(run, folder.resolve("model.safetensors").toString(), "truncated");
    }

    @Test
    void truncatedPytorchBin() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("cutbin"));
        Path fixture = Fixtures.root().resolve("blip2-tiny-opt");
        Files.copy(fixture.resolve("config.json"), folder.resolve("config.json"));
        byte[] whole = Files.readAllBytes(fixture.resolve("pytorch_model.bin"));
        Files.write(folder.resolve("pytorch_model.bin"), Arrays.copyOf(whole, whole.length / 2));
        CliRun run = convert(folder);
        assertBadInput(run, folder.resolve("pytorch_model.bin").toString(), "");
    }

    @Test
    void noCheckpointInTheFolder() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("nothing"));
        assertBadInput(convert(folder), folder.toString(), "holds no checkpoint");
    }

    @Test
    void missingSource() {
        Path missing = dir.resolve("does-not-exist");
        assertBadInput(convert(missing), missing.toString(), "no such file or folder");
    }

    @Test
    void unwritableOutput() throws IOException {
        Path notAFolder = Files.writeString(dir.resolve("file"), "x");
        CliRun run = CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-itm").toString(), "-o",
                notAFolder.resolve("out.b2z").toString(), "--quiet");
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().contains("not a directory"), run.err());
    }

    @Test
    void damagedArtifactFailsInspection() throws IOException {
        Path artifact = dir.resolve("itm.b2z");
        assertEquals(0, CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-itm").toString(), "-o",
                artifact.toString(), "--quiet").exitCode());
        long offset;
        try (var zip = org.apache.commons.compress.archivers.zip.ZipFile.builder().setPath(artifact).get()) {
            offset = zip.getEntry("tensors/itm_head.weight").getDataOffset() + 5;
        }
        try (RandomAccessFile file = new RandomAccessFile(artifact.toFile(), "rw")) {
            file.seek(offset);
            int b = file.read();
            file.seek(offset);
            file.write(b ^ 0xff);
        }
        CliRun run = CliRun.of("inspect", artifact.toString());
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().contains("damaged"), run.err());
        assertTrue(run.err().contains("itm_head.weight"), run.err());
        assertTrue(run.out().contains("MISMATCH"), run.out());
    }

    @Test
    void badUsageIsExitCodeTwo() {
        CliRun run = CliRun.of("convert", "somewhere");
        assertEquals(2, run.exitCode(), run.toString());
        assertTrue(run.err().contains("--output"), run.err());
        assertEquals(2, CliRun.of("convert", "x", "-o", "y", "--dtype", "int4").exitCode());
    }

    @Test
    void verboseAddsTheStackTrace() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("nothing"));
        CliRun run = CliRun.of("convert", folder.toString(), "-o", dir.resolve("x.b2z").toString(), "--verbose");
        assertEquals(3, run.exitCode());
        assertTrue(run.err().contains("\tat dev.blip2dl4j."), run.err());
    }

    private CliRun convert(Path source) {
        return CliRun.of("convert", source.toString(), "-o", dir.resolve("out.b2z").toString(), "--quiet");
    }

    private void assertBadInput(CliRun run, String file, String problem) {
        assertEquals(3, run.exitCode(), run.toString());
        assertTrue(run.err().startsWith("error: " + file), run.err());
        assertTrue(run.err().contains(problem), run.err());
        assertFalse(run.err().contains("\tat "), "no stack trace without --verbose: " + run.err());
        assertEquals("", run.out());
        try (Stream<Path> files = Files.list(dir)) {
            List<String> left = files.map(p -> p.getFileName().toString())
                    .filter(n -> n.endsWith(".b2z") || n.endsWith(".partial")).toList();
            assertEquals(List.of(), left, "no output file left behind");
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
