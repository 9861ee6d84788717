package dev.blip2dl4j.convert;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
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
        try (ArtifactWriter writer = ArtifactWriter.create(out)) {
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
            var zip = org.apache.commons.compress.archivers.zip.ZipFile.builder().setPath(out).get();
            for (Manifest.Tensor t : a.manifest().tensors()) {
                long offset = zip.getEntry(t.entry()).getDataOffset();
                assertEquals(0, offset % ArtifactWriter.ALIGNMENT, t.entry() + " at " + offset);
            }
            zip.close();
            assertTrue(channel.size() > 0);
        }
    }

    @Test
    void theArtifactGetsTheUsualPermissionsNotATempFilesPrivateOnes() throws IOException {
        Path out = dir.resolve("perm.b2z");
        Converter.convert(List.of(Fixtures.model("itm")), out, Converter.Options.defaults(), ConversionProgress.NONE);
        Path plain = Files.createFile(dir.resolve("plain"));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(out));
    }

    @Test
    void aFullDiskLeavesNoFileBehind() {
        Path out = dir.resolve("full.b2z");
        ArtifactWriter.ChannelOpener fillsUp = path -> new FailingChannel(
                FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.READ),
                200_000);
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(Fixtures.model("opt")), out, Converter.Options.defaults(), ConversionProgress.NONE,
                target -> ArtifactWriter.create(target, fillsUp)));
        assertTrue(e.getMessage().startsWith(out.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
        assertTrue(e.getMessage().contains("nothing was written"), e.getMessage());
        assertEquals(List.of(), listing());
    }

    @Test
    void anOutputFolderThatIsNotAFolder() throws IOException {
        Path file = Files.writeString(dir.resolve("plain-file"), "x");
        Path out = file.resolve("model.b2z");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(Fixtures.model("itm")), out, Converter.Options.defaults(), ConversionProgress.NONE));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
        assertEquals(List.of(dir.resolve("plain-file")), listing());
    }

    @Test
    void abandonedWriterDeletesItsTemporaryFile() {
        try (ArtifactWriter writer = ArtifactWriter.create(dir.resolve("x.b2z"))) {
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
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Manifest manifest() {
        return new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, "Blip2ForConditionalGeneration", "opt",
                "test", new Manifest.Source("test", List.of()), "F32", List.of(), List.of());
    }

    /** A channel on a disk that fills up after {@code capacity} bytes. */
    private static final class FailingChannel implements SeekableByteChannel {
        private final FileChannel delegate;
        private final long capacity;

        FailingChannel(FileChannel delegate, long capacity) {
            this.delegate = delegate;
            this.capacity = capacity;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            if (delegate.position() + src.remaining() > capacity) {
                throw new IOException("No space left on device");
            }
            return delegate.write(src);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return delegate.read(dst);
        }

        @Override
        public long position() throws IOException {
            return delegate.position();
        }

        @Override
        public SeekableByteChannel position(long newPosition) throws IOException {
            delegate.position(newPosition);
            return this;
        }

        @Override
        public long size() throws IOException {
            return delegate.size();
        }

        @Override
        public SeekableByteChannel truncate(long size) throws IOException {
            delegate.truncate(size);
            return this;
        }

        @Override
        public boolean isOpen() {
            return delegate.isOpen();
        }

        @Override
        public void close() throws IOException {
            delegate.close();
        }
    }
}
