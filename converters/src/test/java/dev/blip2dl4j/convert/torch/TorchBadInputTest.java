package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Files that must be refused with a message naming the file and the problem, and nothing run. */
class TorchBadInputTest {

    @TempDir
    Path dir;

    /** A valid checkpoint whose pickle also calls os.system, as malicious checkpoints do. */
    private Path callingOsSystem(boolean stackGlobal) throws IOException {
        Path marker = dir.resolve("pwned");
        OpcodeWriter pickle = new OpcodeWriter().proto(stackGlobal ? 4 : 2).emptyDict().mark()
                .str("w").tensor("FloatStorage", "0", 2, 0, new long[] {2}, new long[] {1})
                .str("payload");
        if (stackGlobal) {
            pickle.stackGlobal("os", "system");
        } else {
            pickle.global("os", "system");
        }
        pickle.mark().str("touch " + marker).tuple().reduce().setItems().stop();
        return new CheckpointZip(pickle.bytes()).storage("0", CheckpointZip.floats(1, 2))
                .writeTo(dir.resolve("evil.bin"));
    }

    @Test
    void refusesAPickleThatCallsOsSystemAndRunsNothing() throws IOException {
        for (boolean stackGlobal : new boolean[] {false, true}) {
            Path file = callingOsSystem(stackGlobal);
            BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
            assertMessage(e, file, "'os.system'", "never executes code");
            assertFalse(Files.exists(dir.resolve("pwned")));
        }
    }

    @Test
    void tellsTheLegacyFormatApartAndSaysHowToResave() throws IOException {
        // torch.save(..., _use_new_zipfile_serialization=False) starts with the pickled magic number.
        byte[] legacy = new OpcodeWriter().proto(2)
                .raw(0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop().bytes();
        Path file = Files.write(dir.resolve("legacy.pth"), legacy);
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "legacy serialization format", "torch.save(torch.load(path), new_path)");
    }

    @Test
    void refusesATruncatedCheckpoint() throws IOException {
        byte[] whole = Files.readAllBytes(Fixtures.root().resolve("blip2-tiny-opt/pytorch_model.bin"));
        Path file = Files.write(dir.resolve("half.bin"), Arrays.copyOf(whole, whole.length / 2));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "truncated or corrupt");
    }

    @Test
    void refusesAZipWithACorruptCentralDirectory() throws IOException {
        byte[] bytes = Files.readAllBytes(Fixtures.root().resolve("blip2-tiny-opt/pytorch_model.bin"));
        // The central directory lies near the end of the file: overwrite a stretch of it.
        Arrays.fill(bytes, bytes.length - 3000, bytes.length - 2000, (byte) 0x55);
        Path file = Files.write(dir.resolve("corrupt.bin"), bytes);
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file);
    }

    @Test
    void refusesAStorageSmallerThanItsDeclaredSize() throws IOException {
        byte[] pickle = oneTensor("FloatStorage", "0", 6, 0, new long[] {2, 3}, new long[] {3, 1});
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(1, 2, 3, 4))
                .writeTo(dir.resolve("short.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "archive/data/0", "holds 16 bytes", "6 F32 elements (24 bytes)");
    }

    @Test
    void refusesATensorLargerThanItsStorage() throws IOException {
        byte[] pickle = oneTensor("FloatStorage", "0", 4, 1, new long[] {2, 2}, new long[] {2, 1});
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(1, 2, 3, 4))
                .writeTo(dir.resolve("view.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "tensor 'w'", "needs 20 bytes of its storage, which holds only 16");
    }

    @Test
    void refusesSizesThatOverflow() throws IOException {
        long big = Integer.MAX_VALUE;
        byte[] pickle = oneTensor("FloatStorage", "0", 1, 0, new long[] {big, big, big}, new long[] {big, big, big});
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(1))
                .writeTo(dir.resolve("overflow.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "too large to address");
    }

    /** Every number of a tensor's view, alone or together, checked against its storage without overflowing. */
    @ParameterizedTest(name = "offset {0}, size {1}, stride {2}")
    @CsvSource(delimiter = ';', value = {
            "0; 1099511627776,1099511627776; 1099511627776,1",
            "0; 1099511627776,1099511627776; 0,0",
            "0; 9223372036854775807; 1",
            "9223372036854775807; 2; 1",
            "-1; 2; 1",
            "0; 2,2; -1,1",
            "3; 2; 1",
    })
    void refusesViewsOutsideTheirStorage(long offset, String size, String stride) throws IOException {
        byte[] pickle = oneTensor("FloatStorage", "0", 4, offset, longs(size), longs(stride));
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(1, 2, 3, 4))
                .writeTo(dir.resolve("view.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "tensor 'w'");
        assertTrue(e.getMessage().matches(".*(too large to address|negative size|needs \\d+ bytes of its storage).*"),
                e.getMessage());
    }

    @Test
    void refusesAStorageTooLargeToCount() throws IOException {
        byte[] pickle = oneTensor("DoubleStorage", "0", Long.MAX_VALUE / 4, 0, new long[] {1}, new long[] {1});
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(1, 2)).writeTo(dir.resolve("big.bin"));
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file)), file,
                "archive/data/0", "too large to address");
    }

    /** A central directory that claims more bytes for a storage than the file has after it: the zip reader's check. */
    @Test
    void refusesAStorageThatLiesPastTheEndOfTheFile() throws IOException {
        long claimed = 1 << 30;
        byte[] pickle = oneTensor("ByteStorage", "0", claimed, 0, new long[] {claimed}, new long[] {1});
        Path file = new CheckpointZip(pickle).storage("0", new byte[16]).writeTo(dir.resolve("claims.bin"));
        byte[] zip = Files.readAllBytes(file);
        byte[] name = (CheckpointZip.FOLDER + "data/0").getBytes(StandardCharsets.US_ASCII);
        ByteBuffer central = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < zip.length - 46; at++) {
            if (central.getInt(at) == 0x02014b50 && central.getShort(at + 28) == name.length
                    && Arrays.equals(Arrays.copyOfRange(zip, at + 46, at + 46 + name.length), name)) {
                central.putInt(at + 20, (int) claimed).putInt(at + 24, (int) claimed);
            }
        }
        Files.write(file, zip);
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file)), file,
                "cannot be read as one", "the file is truncated or corrupt");
    }

    private static long[] longs(String csv) {
        return Arrays.stream(csv.split(",")).mapToLong(Long::parseLong).toArray();
    }

    @Test
    void refusesACompressedStorage() throws IOException {
        Path file = new CheckpointZip(oneTensor("FloatStorage", "0", 1, 0, new long[0], new long[0]))
                .storage("0", CheckpointZip.floats(1)).deflate("data/0").writeTo(dir.resolve("deflated.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "archive/data/0 is compressed");
    }

    @Test
    void refusesAMissingStorage() throws IOException {
        Path file = new CheckpointZip(oneTensor("FloatStorage", "7", 1, 0, new long[0], new long[0]))
                .writeTo(dir.resolve("missing.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "tensor 'w'", "archive/data/7", "does not hold");
    }

    @Test
    void refusesBigEndianStorages() throws IOException {
        Path file = new CheckpointZip(oneTensor("FloatStorage", "0", 1, 0, new long[0], new long[0]))
                .storage("0", CheckpointZip.floats(1)).entry("byteorder", "big".getBytes(StandardCharsets.US_ASCII))
                .writeTo(dir.resolve("big.bin"));
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file));
        assertMessage(e, file, "'big' byte order");
    }

    @Test
    void refusesFilesThatAreNotCheckpoints() throws IOException {
        Path text = Files.writeString(dir.resolve("notes.txt"), "hello");
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(text)), text,
                "not a PyTorch checkpoint");
        Path empty = Files.write(dir.resolve("empty.bin"), new byte[0]);
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(empty)), empty,
                "not a PyTorch checkpoint");
        Path absent = dir.resolve("absent.bin");
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(absent)), absent,
                "no such file");
        Path otherZip = dir.resolve("other.zip");
        try (ZipOutputStream zip = new ZipOutputStream(Files.newOutputStream(otherZip))) {
            zip.putNextEntry(new ZipEntry("readme.txt"));
            zip.write('x');
        }
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(otherZip)), otherZip,
                "exactly one <folder>/data.pkl, and holds 0");
    }

    @Test
    void refusesACheckpointWithoutTensors() throws IOException {
        byte[] pickle = new OpcodeWriter().proto(2).emptyDict().str("epoch").integer(3).setItem().stop().bytes();
        Path file = new CheckpointZip(pickle).writeTo(dir.resolve("empty.pth"));
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(file)), file, "no tensors");

        byte[] list = new OpcodeWriter().proto(2).raw(']').stop().bytes();
        Path listFile = new CheckpointZip(list).writeTo(dir.resolve("list.pth"));
        assertMessage(assertThrows(BadInputException.class, () -> TorchZipCheckpoint.open(listFile)), listFile,
                "holds a list, not a state dict");
    }

    /** A state dict of one tensor 'w'. */
    private static byte[] oneTensor(String storageType, String key, long numel, long offset, long[] size,
                                    long[] stride) {
        return new OpcodeWriter().proto(2).emptyDict().str("w").tensor(storageType, key, numel, offset, size, stride)
                .setItem().stop().bytes();
    }

    private static void assertMessage(BadInputException e, Path file, String... parts) {
        String message = e.getMessage();
        assertTrue(message.startsWith(file + ": "), message);
        for (String part : parts) {
            assertTrue(message.contains(part), "expected '" + part + "' in: " + message);
        }
    }
}
