package dev.blip2dl4j.artifact;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.tensor.DType;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
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

    @Test
    void int8TensorsCarryTheirScalesAndNeedFormatVersion2() throws IOException {
        Path out = writeInt8(dir.resolve("q.b2z"), 4);
        try (Artifact a = Artifact.open(out)) {
            Manifest m = a.manifest();
            assertEquals(Manifest.FORMAT_VERSION, m.formatVersion());
            assertEquals(2, m.formatVersion());
            Manifest.Tensor w = a.tensor("w").orElseThrow();
            assertEquals("I8", w.dtype());
            assertEquals(new Manifest.Quantization("symmetric", 4, "scales/w", Sha256.of(scaleBytes())),
                    w.quantization());
            assertEquals(DType.I8, a.dtype("w"));
            ByteBuffer values = a.map("w");
            assertEquals(16, values.remaining());
            assertEquals((byte) -7, values.get(15));
            FloatBuffer scales = a.scales("w");
            assertEquals(4, scales.remaining());
            assertEquals(0.25f, scales.get(3));
            assertEquals(null, a.tensor("b").orElseThrow().quantization());
            var zip = ZipFile.builder().setPath(out).get();
            assertEquals(0, zip.getEntry("scales/w").getDataOffset() % ArtifactWriter.ALIGNMENT);
            zip.close();
            // what a reader of version 1 (before int8) does with it: asks for an upgrade instead of misreading it
            BadInputException old = assertThrows(BadInputException.class,
                    () -> Artifact.requireReadable(out, m, Manifest.FLOAT_FORMAT_VERSION));
            assertEquals(out + ": was written in artifact format version 2; this build reads up to version 1: "
                    + "upgrade blip2-dl4j", old.getMessage());
        }
    }

    @Test
    void floatArtifactsStayVersion1() throws IOException {
        Path out = dir.resolve("f.b2z");
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            ArtifactWriter.TensorOutput t = writer.beginTensor("t", DType.BF16, new long[]{2});
            t.write(new byte[4], 0, 4);
            t.finish(() -> Sha256.of(new byte[4]));
            assertEquals(1, writer.commit(manifest()).formatVersion());
        }
        try (Artifact a = Artifact.open(out)) {
            assertEquals(Manifest.FLOAT_FORMAT_VERSION, a.manifest().formatVersion());
            assertThrows(IllegalArgumentException.class, () -> a.scales("t"));
        }
    }

    @Test
    void aCorruptedScaleTableIsNamedOnRead() throws IOException {
        Path out = writeInt8(dir.resolve("q.b2z"), 0);
        long at;
        try (var zip = ZipFile.builder().setPath(out).get()) {
            at = zip.getEntry("scales/w").getDataOffset();
        }
        try (FileChannel channel = FileChannel.open(out, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.wrap(new byte[]{0x7f}), at + 1);
        }
        try (Artifact a = Artifact.open(out)) {
            a.map("w");
            BadInputException e = assertThrows(BadInputException.class, () -> a.scales("w"));
            assertEquals(out + ": the scale table of tensor 'w' (scales/w) does not match its SHA-256 in the manifest: "
                    + "the artifact is damaged; convert the model again", e.getMessage());
        }
    }

    @Test
    void aShortScaleTableIsRefusedOnOpen() throws IOException {
        Path out = dir.resolve("short.b2z");
        byte[] scales = new byte[12]; // three scales where a [4, 4] matrix with one per row needs four
        Manifest.Tensor w = new Manifest.Tensor("w", "I8", new long[]{4, 4}, "tensors/w", Sha256.of(new byte[16]),
                new Manifest.Quantization("symmetric", 0, "scales/w", Sha256.of(scales)));
        Manifest m = new Manifest(Manifest.FORMAT, 2, "Blip2ForConditionalGeneration", "opt", "test",
                new Manifest.Source("test", List.of()), "I8", List.of(w), List.of());
        try (var zip = new ZipArchiveOutputStream(out)) {
            for (var entry : List.of(Map.entry("tensors/w", new byte[16]), Map.entry("scales/w", scales),
                    Map.entry(ArtifactWriter.MANIFEST, m.toJson()))) {
                var e = new ZipArchiveEntry(entry.getKey());
                e.setMethod(ZipEntry.STORED);
                e.setSize(entry.getValue().length);
                e.setCrc(crc(entry.getValue()));
                zip.putArchiveEntry(e);
                zip.write(entry.getValue());
                zip.closeArchiveEntry();
            }
        }
        BadInputException e = assertThrows(BadInputException.class, () -> Artifact.open(out));
        assertEquals(out + ": entry scales/w is not 16 stored bytes (method 0, size 12): the artifact is damaged",
                e.getMessage());
    }

    @Test
    void int8WithoutScalesIsRefused() {
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(dir.resolve("x.b2z"), List.of(), false))) {
            assertThrows(IllegalArgumentException.class, () -> writer.beginTensor("w", DType.I8, new long[]{2, 2}));
            assertThrows(IllegalArgumentException.class, () -> writer.beginQuantized("w", new long[]{2, 6}, 4));
            ArtifactWriter.TensorOutput t = writer.beginQuantized("w", new long[]{2, 2}, 0);
            t.write(new byte[4], 0, 4);
            assertThrows(IllegalStateException.class, () -> t.finish(() -> ""));
            assertThrows(IllegalStateException.class, () -> t.finish(() -> "", new float[3]));
        }
    }

    /** A [4, 4] int8 matrix w (with scales per row, or per block of {@code block} columns) and a float bias b. */
    private static Path writeInt8(Path out, int block) {
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            byte[] values = new byte[16];
            for (int i = 0; i < 16; i++) {
                values[i] = (byte) (i - 8);
            }
            values[15] = -7;
            ArtifactWriter.TensorOutput w = writer.beginQuantized("w", new long[]{4, 4}, block);
            w.write(values, 0, 16);
            float[] scales = {1, 0.5f, 0.125f, 0.25f}; // [4, 4] has one scale a row whether block is 0 or 4
            w.finish(() -> Sha256.of(values), scales);
            ArtifactWriter.TensorOutput b = writer.beginTensor("b", DType.F32, new long[]{1});
            b.write(new byte[4], 0, 4);
            b.finish(() -> Sha256.of(new byte[4]));
            writer.commit(manifest());
        }
        return out;
    }

    private static byte[] scaleBytes() {
        ByteBuffer bytes = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(new float[]{1, 0.5f, 0.125f, 0.25f});
        return bytes.array();
    }

    private static long crc(byte[] bytes) {
        CRC32 crc = new CRC32();
        crc.update(bytes);
        return crc.getValue();
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
