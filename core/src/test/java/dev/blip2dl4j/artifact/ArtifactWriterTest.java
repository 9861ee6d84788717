package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.tensor.DType;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ArtifactWriterTest {
    @TempDir
    Path dir;

    @Test
    void tensorsAreStoredAlignedAndMappable() throws IOException {
        Path out = dir.resolve("a.b2z");
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            writer.addFile("config.json", "{}".getBytes());
            for (int n : new int[]{3, 5, 64, 1}) {
                ArtifactWriter.TensorOutput t = writer.beginTensor("t" + n, DType.F32, new long[]{n});
                byte[] bytes = new byte[4 * n];
                for (int i = 0; i < bytes.length; i++) {
                    bytes[i] = (byte) (n + i);
                }
                t.write(bytes, 0, bytes.length);
                String hex = Sha256.of(bytes);
                t.finish(() -> hex);
            }
            writer.commit(manifest());
        }
        try (Artifact a = Artifact.open(out);
             FileChannel channel = FileChannel.open(out, StandardOpenOption.READ)) {
            assertEquals(4, a.manifest().tensors().size());
            assertEquals("{}", new String(a.file("config.json").orElseThrow()));
            ByteBuffer five = a.map("t5");
            assertEquals(20, five.remaining());
            assertEquals((byte) 5, five.get(0));
            assertEquals((byte) 24, five.get(19));
            var zip = ZipFile.builder().setPath(out).get();
            for (Manifest.Tensor t : a.manifest().tensors()) {
                long offset = zip.getEntry(t.entry()).getDataOffset();
                assertEquals(0, offset % ArtifactWriter.ALIGNMENT, t.entry() + " at " + offset);
            }
            zip.close();
            assertTrue(channel.size() > 0);
        }
    }

    @Test
    void abandonedWriterDeletesItsTemporaryFile() {
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(dir.resolve("x.b2z"), List.of(), false))) {
            writer.addFile("config.json", "{}".getBytes());
        }
        assertEquals(List.of(), listing());
    }

    @Test
    void notAnArtifact() throws IOException {
        Path bogus = Files.writeString(dir.resolve("bogus.b2z"), "hello");
        BadInputException e = assertThrows(BadInputException.class, () -> Artifact.open(bogus));
        assertTrue(e.getMessage().startsWith(bogus.toString()) && e.getMessage().contains("not a readable .b2z"),
                e.getMessage());
    }

    private List<Path> listing() {
        try (Stream<Path> files = Files.list(dir)) {
            return files.toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Manifest manifest() {
        return new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, "Blip2ForConditionalGeneration", "opt",
                "test", new Manifest.Source("test", List.of()), "F32", List.of(), List.of());
    }
}
