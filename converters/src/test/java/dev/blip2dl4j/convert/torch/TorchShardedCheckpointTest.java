package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.tensor.ShardIndex;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.convert.tensor.TensorSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A checkpoint saved in shards with a pytorch_model.bin.index.json, read through ShardIndex. */
class TorchShardedCheckpointTest {

    private static final String FIRST = "pytorch_model-00001-of-00002.bin";
    private static final String SECOND = "pytorch_model-00002-of-00002.bin";

    @TempDir
    Path dir;

    /** Shard one holds a and b, shard two holds c. */
    private void writeShards() throws IOException {
        byte[] first = new OpcodeWriter().proto(2).emptyDict().mark()
                .str("a").tensor("FloatStorage", "0", 2, 0, new long[] {2}, new long[] {1})
                .str("b").tensor("FloatStorage", "1", 1, 0, new long[0], new long[0])
                .setItems().stop().bytes();
        new CheckpointZip(first).storage("0", CheckpointZip.floats(1, 2)).storage("1", CheckpointZip.floats(3))
                .writeTo(dir.resolve(FIRST));
        byte[] second = new OpcodeWriter().proto(2).emptyDict()
                .str("c").tensor("FloatStorage", "0", 1, 0, new long[] {1}, new long[] {1})
                .setItem().stop().bytes();
        new CheckpointZip(second).storage("0", CheckpointZip.floats(4)).writeTo(dir.resolve(SECOND));
    }

    private Path index(String weightMap) throws IOException {
        return Files.writeString(dir.resolve("pytorch_model.bin.index.json"),
                "{\"metadata\": {\"total_size\": 16}, \"weight_map\": {" + weightMap + "}}");
    }

    @Test
    void listsEveryShardsTensorsInShardOrder() throws IOException {
        writeShards();
        Path index = index("\"c\": \"" + SECOND + "\", \"a\": \"" + FIRST + "\", \"b\": \"" + FIRST + "\"");
        TensorSource source = TorchZipCheckpoint.openSharded(index);

        assertEquals(List.of("a", "b", "c"), source.tensors().stream().map(SourceTensor::name).toList());
        assertEquals(List.of(dir.resolve(FIRST), dir.resolve(SECOND)), source.files());
        assertTrue(source.description().contains("2 shards"), source.description());
        assertArrayEquals(CheckpointZip.floats(4), TorchZipCheckpointTest.bytes(source.tensors().get(2).readFully()));
    }

    @Test
    void refusesAnIndexThatListsATensorItsShardLacks() throws IOException {
        writeShards();
        Path missing = index("\"a\": \"" + FIRST + "\", \"d\": \"" + SECOND + "\"");
        assertMessage(missing, "tensor 'd' in shard " + SECOND + ", but that shard has no such tensor");

        Path misplaced = index("\"a\": \"" + FIRST + "\", \"c\": \"" + FIRST + "\", \"x\": \"" + SECOND + "\"");
        assertMessage(misplaced, "tensor 'c' in shard " + FIRST, "(it is in " + SECOND + ")");
    }

    @Test
    void refusesATensorInTwoShards() throws IOException {
        writeShards();
        Files.copy(dir.resolve(FIRST), dir.resolve(SECOND), StandardCopyOption.REPLACE_EXISTING);
        assertMessage(index("\"a\": \"" + FIRST + "\", \"b\": \"" + SECOND + "\""),
                "tensor 'a' is in two shards, " + FIRST + " and " + SECOND);
    }

    @Test
    void refusesBadIndexes() throws IOException {
        assertMessage(index("\"a\": \"../elsewhere.bin\""), "not the name of a file beside the index");
        assertMessage(index("\"a\": 3"), "not the name of a file beside the index");
        assertMessage(index(""), "no \"weight_map\"");
        assertMessage(Files.writeString(dir.resolve("broken.json"), "{\"weight_map\": {"), "not valid JSON");
        assertMessage(dir.resolve("absent.json"), "no such file");

        Path absentShard = index("\"a\": \"" + FIRST + "\"");
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.openSharded(absentShard));
        assertEquals(dir.resolve(FIRST), e.file());
    }

    @Test
    void readsTheFixturesSafetensorsIndexInShardOrder() {
        Path indexFile = Fixtures.root().resolve("blip2-tiny-opt/sharded/model.safetensors.index.json");
        ShardIndex index = ShardIndex.read(indexFile);

        assertEquals(113, index.weightMap().size());
        Path folder = indexFile.toAbsolutePath().getParent();
        assertEquals(List.of(folder.resolve("model-00001-of-00002.safetensors"),
                folder.resolve("model-00002-of-00002.safetensors")), index.shardFiles());
    }

    private static void assertMessage(Path index, String... parts) {
        BadInputException e = assertThrows(BadInputException.class, () -> TorchZipCheckpoint.openSharded(index));
        assertEquals(index, e.file(), e.getMessage());
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
        }
    }
}
