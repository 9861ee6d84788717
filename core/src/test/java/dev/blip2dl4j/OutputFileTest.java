package dev.blip2dl4j;

import dev.blip2dl4j.artifact.ArtifactWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one policy for every file we write, and the partial files a killed writer leaves. */
class OutputFileTest {
    @TempDir
    Path dir;

    private static String refused(Path path, Executable check) {
        BadInputException e = assertThrows(BadInputException.class, check);
        assertTrue(e.getMessage().startsWith(path.toString()), "names the path: " + e.getMessage());
        return e.getMessage();
    }

    @Test
    void anInputIsNeverAnOutputEvenWhereReplacingIsAllowed() throws IOException {
        Path data = Files.writeString(dir.resolve("train.jsonl"), "{}\n");
        String message = refused(data, () -> OutputFile.check(data, List.of(data), true));
        assertTrue(message.contains("is an input of this command"), message);
        assertEquals("{}\n", Files.readString(data));
    }

    @Test
    void anInputIsRecognisedThroughASymlinkAHardLinkAndInsideAnInputFolder() throws IOException {
        Path checkpoint = Files.createDirectories(dir.resolve("checkpoint"));
        Path weights = Files.writeString(checkpoint.resolve("model.safetensors"), "weights");
        Path symlink = Files.createSymbolicLink(dir.resolve("link.b2z"), weights);
        Path hardLink = Files.createLink(dir.resolve("hard.b2z"), weights);
        for (Path output : List.of(symlink, hardLink, weights, checkpoint.resolve("./model.safetensors"))) {
            String message = refused(output, () -> OutputFile.check(output, List.of(checkpoint), true));
            assertTrue(message.contains("input"), message);
            assertThrows(BadInputException.class, () -> OutputFile.check(output, List.of(weights), true));
        }
        assertEquals("weights", Files.readString(weights));
    }

    @Test
    void aFolderADeviceAndAPipeAreNeverWritten() throws Exception {
        Path folder = Files.createDirectories(dir.resolve("out.b2z"));
        assertTrue(refused(folder, () -> OutputFile.check(folder, List.of(), true)).contains("is a directory"));
        Path device = Files.createSymbolicLink(dir.resolve("null.b2z"), Path.of("/dev/null"));
        assertTrue(refused(device, () -> OutputFile.check(device, List.of(), true)).contains("not a regular file"));
        Path fifo = dir.resolve("pipe.b2z");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        assertTrue(refused(fifo, () -> OutputFile.check(fifo, List.of(), true)).contains("not a regular file"));
    }

    @Test
    void anExistingFileIsReplacedOnlyWhenAllowed() throws IOException {
        Path out = Files.writeString(dir.resolve("out.b2z"), "previous run");
        String message = refused(out, () -> OutputFile.check(out, List.of(), false, "--resume continues it"));
        assertTrue(message.contains("already exists") && message.contains("--resume continues it"), message);
        assertEquals("previous run", Files.readString(out));

        OutputFile replacing = OutputFile.check(out, List.of(), true);
        Path partial = replacing.beginPartial();
        Files.writeString(partial, "new run");
        replacing.commit(partial);
        assertEquals("new run", Files.readString(out));
        assertEquals(List.of(out), listing(), "no partial left");
    }

    @Test
    void aFileThatAppearsWhileWritingIsNotReplaced() throws IOException {
        Path out = dir.resolve("out.b2z");
        OutputFile output = OutputFile.check(out, List.of(), false);
        Path partial = output.beginPartial();
        Files.writeString(partial, "ours");
        Files.writeString(out, "someone else's");
        refused(out, () -> output.commit(partial));
        assertEquals("someone else's", Files.readString(out));
        assertEquals(List.of(out), listing());
    }

    @Test
    void whatThisOutputWroteItMayRewriteAsACheckpointIs() throws IOException {
        Path out = dir.resolve("checkpoint.ckpt");
        OutputFile output = OutputFile.check(out, List.of(), false);
        for (String step : List.of("step 1", "step 2")) {
            Path partial = output.beginPartial();
            Files.writeString(partial, step);
            output.commit(partial);
        }
        assertEquals("step 2", Files.readString(out));
    }

    @Test
    void aMissingFolderIsFoundBeforeAnyWork() {
        Path out = dir.resolve("no-such-folder/out.b2z");
        assertTrue(refused(out, () -> OutputFile.check(out, List.of(), false)).contains("is not a directory"));
    }

    @Test
    void oneFileNamedForTwoOutputsIsRefused() {
        OutputFile a = OutputFile.check(dir.resolve("run.b2z"), List.of(), false);
        OutputFile b = OutputFile.check(dir.resolve("./run.b2z"), List.of(), false);
        refused(a.path(), () -> OutputFile.requireDistinct(List.of(a, b)));
    }

    @Test
    void theReplacedFileIsKeptWhereAsked() throws IOException {
        Path out = Files.writeString(dir.resolve("checkpoint.ckpt"), "step 1");
        OutputFile previous = OutputFile.check(dir.resolve("checkpoint.ckpt.previous"), List.of(), true);
        OutputFile latest = OutputFile.check(out, List.of(), true).keepingPrevious(previous);
        Path partial = latest.beginPartial();
        Files.writeString(partial, "step 2");
        latest.commit(partial);
        assertEquals("step 2", Files.readString(out));
        assertEquals("step 1", Files.readString(previous.path()));
    }

    @Test
    void oneProcessWritesOneTargetOnceAtATime() {
        OutputFile out = OutputFile.check(dir.resolve("out.b2z"), List.of(), false);
        Path partial = out.beginPartial();
        assertThrows(IllegalStateException.class, out::beginPartial);
        out.abandon(partial);
        out.abandon(out.beginPartial());
    }

    @Test
    void aKilledWritersPartialIsNamedForItsTargetAndProcessAndTheNextCheckDeletesIt() throws Exception {
        Path out = dir.resolve("model.b2z");
        Path other = Files.writeString(dir.resolve(".other.b2z.1.partial"), "another target's");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process writer = new ProcessBuilder(java, "-Xmx128m", "-cp", System.getProperty("java.class.path"),
                PartialWriterProcess.class.getName(), out.toString()).redirectErrorStream(true).start();
        try {
            BufferedReader lines = new BufferedReader(new InputStreamReader(writer.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("writing", lines.readLine());
            Path partial = dir.resolve(".model.b2z." + writer.pid() + ".partial");
            assertTrue(Files.size(partial) > 1 << 20, "the writer's partial is named for the target and its process");

            OutputFile.check(out, List.of(), false);
            assertTrue(Files.exists(partial), "a live writer's partial stays");

            writer.destroyForcibly();
            assertTrue(writer.waitFor(30, TimeUnit.SECONDS));
            assertTrue(Files.exists(partial), "kill -9 leaves the partial");
            OutputFile.check(out, List.of(), false);
            assertFalse(Files.exists(partial), "the next check of the same output deletes it");
            assertEquals(List.of(other), listing(), "and only it");
        } finally {
            writer.destroyForcibly();
        }
    }

    @Test
    void aCacheCleanUpDeletesPartialsOfDeadProcessesOnlyAndSaysHowMuch() throws Exception {
        Path out = dir.resolve("model.b2z");
        Process dead = new ProcessBuilder("sleep", "60").start();
        dead.destroyForcibly().waitFor();
        Files.write(dir.resolve(".model.b2z." + dead.pid() + ".partial"), new byte[1000]);
        Path live = Files.write(dir.resolve(".model.b2z." + ProcessHandle.current().parent().orElseThrow().pid()
                + ".partial"), new byte[10]);
        assertEquals(1000, OutputFile.deleteAbandoned(out));
        assertEquals(List.of(live), listing());
    }

    @Test
    void thePartialsOfEarlierBuildsNamedWithARandomNumberAreDeletedToo() throws IOException {
        Files.write(dir.resolve(".model.b2z.3k9x0qz1m2.partial"), new byte[100]);
        assertEquals(100, OutputFile.deleteAbandoned(dir.resolve("model.b2z")));
        assertEquals(List.of(), listing());
    }

    @Test
    void aStalePartialNamedForThisProcessIsNotMistakenForOurs() throws IOException {
        Path out = dir.resolve("model.b2z");
        Files.writeString(dir.resolve(".model.b2z." + ProcessHandle.current().pid() + ".partial"), "stale");
        OutputFile.check(out, List.of(), false);
        assertEquals(List.of(), listing());
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            assertEquals(1, listing().size());
            assertEquals(0, OutputFile.deleteAbandoned(out), "the partial being written is ours and alive");
        }
        assertEquals(List.of(), listing());
    }

    private List<Path> listing() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.sorted().toList();
        }
    }
}
