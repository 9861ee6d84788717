package dev.blip2dl4j.convert.safetensors;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.SafetensorsWriter;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SafetensorsFileTest {
    @TempDir
    Path dir;

    @Test
    void readsTheFixtureHeaderAndData() {
        SafetensorsFile file = SafetensorsFile.open(Fixtures.model("opt").resolve("model.safetensors"));
        assertEquals(113, file.tensors().size());
        assertEquals(Map.of("format", "pt"), file.metadata());
        SourceTensor queries = file.tensors().stream().filter(t -> t.name().equals("query_tokens")).findFirst().orElseThrow();
        assertEquals(DType.F32, queries.dtype());
        assertArrayEquals(new long[]{1, 8, 32}, queries.shape());
        assertEquals(1 * 8 * 32 * 4, queries.readFully().remaining());
        for (int i = 1; i < file.tensors().size(); i++) {
            assertTrue(file.tensors().get(i - 1).dataOffset() < file.tensors().get(i).dataOffset(), "in file order");
        }
    }

    /** The tensors of each fixture checkpoint are those ParameterLayout lists, with its shapes. */
    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5", "itm"})
    void readsTheTensorsOfTheParameterLayoutFromEachFixture(String model) throws IOException {
        Path dir = Fixtures.model(model);
        ParameterLayout layout = ParameterLayout.of(Blip2Config.read(dir.resolve("config.json")));
        Map<String, long[]> stored = new LinkedHashMap<>();
        for (SourceTensor t : SafetensorsFile.open(dir.resolve("model.safetensors")).tensors()) {
            stored.put(t.name(), t.shape());
        }

        // save_pretrained stores each tied tensor once, under its canonical name
        assertEquals(new TreeSet<>(stored.keySet()),
                layout.parameters().stream().map(ParamSpec::name).collect(Collectors.toCollection(TreeSet::new)));
        for (ParamSpec p : layout.parameters()) {
            assertArrayEquals(stored.get(p.name()), p.shape(), p.name());
        }
        for (String alias : layout.tiedAliases().keySet()) {
            assertFalse(stored.containsKey(alias), alias);
        }
    }

    @Test
    void readsEveryDtypeCheckpointsUse() throws IOException {
        Map<String, SafetensorsWriter.Entry> tensors = new LinkedHashMap<>();
        for (DType type : DType.values()) {
            byte[] data = new byte[3 * type.size()];
            Arrays.fill(data, (byte) type.ordinal());
            tensors.put("t_" + type, new SafetensorsWriter.Entry(type.name(), new long[]{3}, data));
        }
        Path path = dir.resolve("all.safetensors");
        SafetensorsWriter.write(path, tensors);
        SafetensorsFile file = SafetensorsFile.open(path);
        for (DType type : DType.values()) {
            SourceTensor t = file.tensors().stream().filter(x -> x.name().equals("t_" + type)).findFirst().orElseThrow();
            assertEquals(type, t.dtype());
            ByteBuffer bytes = t.readFully();
            assertEquals(3 * type.size(), bytes.remaining());
            assertEquals((byte) type.ordinal(), bytes.get(0));
        }
    }

    @Test
    void truncatedFileNamesTheTensorPastTheEnd() throws IOException {
        byte[] whole = Files.readAllBytes(Fixtures.model("opt").resolve("model.safetensors"));
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(whole, whole.length / 2));
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(cut));
        assertTrue(e.getMessage().startsWith(cut.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void fileCutInsideTheHeader() throws IOException {
        byte[] whole = Files.readAllBytes(Fixtures.model("opt").resolve("model.safetensors"));
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(whole, 100));
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(cut));
        assertTrue(e.getMessage().contains("truncated"), e.getMessage());
    }

    @Test
    void corruptHeaderIsNotJson() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]");
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void absurdHeaderLengthIsNotASafetensorsFile() throws IOException {
        Path bad = dir.resolve("random.safetensors");
        Files.write(bad, "PK\u0003\u0004 this is a zip file, not safetensors".getBytes(StandardCharsets.ISO_8859_1));
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("not a safetensors header"), e.getMessage());
    }

    @Test
    void offsetsPastTheEnd() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [1000, 1008]}}", 16);
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("tensor 'a' ends at byte"), e.getMessage());
    }

    @Test
    void offsetsThatDisagreeWithTheShape() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 16);
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("12 bytes") && e.getMessage().contains("span 8"), e.getMessage());
    }

    @Test
    void overlappingTensors() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                + "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 16);
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("overlap"), e.getMessage());
    }

    @Test
    void unknownDtype() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F8_E4M3\", \"shape\": [2], \"data_offsets\": [0, 2]}}", 2);
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(bad));
        assertTrue(e.getMessage().contains("F8_E4M3"), e.getMessage());
    }

    /** The reported file: two entries of one name, so that the first's bytes belonged to nothing. */
    @Test
    void aNameTwiceIsAnError() throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                + "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}", 16);
        assertRefused(bad, "the header names 'a' twice");
        Path metadataTwice = withHeader("{\"__metadata__\": {}, \"__metadata__\": {\"format\": \"pt\"}}");
        assertRefused(metadataTwice, "the header names '__metadata__' twice");
        Path keyTwice = withHeader("{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [2],"
                + " \"data_offsets\": [0, 8]}}", 8);
        assertRefused(keyTwice, "not valid JSON", "'dtype'");
    }

    @Test
    void bytesThatBelongToNoTensorAreAnError() throws IOException {
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        + "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]}}", 20),
                "bytes 8..12 of the data, between tensors 'a' and 'b', belong to no tensor");
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12),
                "bytes 0..4 of the data, before the first tensor 'a', belong to no tensor");
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 16),
                "the file has 8 bytes after the data of its last tensor 'a'");
        assertRefused(withHeader("{}", 4), "the file has 4 bytes after the data of its last tensor,");
    }

    @Test
    void offsetsOutOfOrderInAnEntryAreAnErrorButEntriesInAnyOrderAreRead() throws IOException {
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8),
                "tensor 'a' has data_offsets [8,0]; expected [begin, end] with begin <= end");
        SafetensorsFile file = SafetensorsFile.open(withHeader(
                "{\"b\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [8, 12]},"
                        + "\"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [8, 8]},"
                        + "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 12));
        assertEquals("[a, e, b]", file.tensors().stream().map(SourceTensor::name).toList().toString(),
                "listed in file order, the empty tensor where it stands");
    }

    /** Shapes whose byte count does not fit 64 bits: a named error, not an arithmetic exception. */
    @ParameterizedTest
    @ValueSource(strings = {"[1099511627776, 1099511627776]", "[2305843009213693952]", "[4294967296, 4294967296, 0, 2]",
            "[9223372036854775807, 2]"})
    void shapesTooLargeToCountAreANamedError(String shape) throws IOException {
        Path bad = withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": " + shape
                + ", \"data_offsets\": [0, 8]}}", 8);
        // a zero after two huge sizes too: counted left to right, as the safetensors library does
        assertRefused(bad, "tensor 'a' has shape", "more F32 bytes than 64 bits can count");
    }

    @Test
    void largeShapesAndOffsetsThatFitAreCheckedAgainstTheFile() throws IOException {
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [1099511627776],"
                + " \"data_offsets\": [0, 4398046511104]}}", 8), "tensor 'a' ends at byte 4398046511104 of the data");
        assertRefused(withHeader("{\"a\": {\"dtype\": \"U8\", \"shape\": [1],"
                        + " \"data_offsets\": [9223372036854775806, 9223372036854775807]}}", 8),
                "tensor 'a' ends at byte 9223372036854775807 of the data, past the end");
        assertRefused(withHeader("{\"a\": null}"), "tensor 'a' has no dtype/shape/data_offsets entry");
        assertRefused(withHeader("{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", 8),
                "tensor 'a' shape holds -2, not a non-negative integer");
    }

    private static void assertRefused(Path file, String... parts) {
        BadInputException e = assertThrows(BadInputException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }

    private Path withHeader(String header) throws IOException {
        return withHeader(header, 0);
    }

    private Path withHeader(String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer file = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(json.length).put(json);
        Path path = dir.resolve("t" + System.nanoTime() + ".safetensors");
        Files.write(path, file.array());
        return path;
    }
}
