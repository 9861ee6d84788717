package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensors that are views of one shared storage, as torch.save writes them for slices, transposes and
 * expands: each must read back as its own row-major values.
 */
class TorchStridedViewTest {

    @Test
    void readsEveryViewOfASharedStorageRowMajor(@TempDir Path dir) throws IOException {
        // One storage of six floats 0..5, a [3, 2] matrix row-major.
        byte[] pickle = new OpcodeWriter().proto(2).emptyDict().mark()
                .str("matrix").tensor("FloatStorage", "0", 6, 0, new long[] {3, 2}, new long[] {2, 1})
                .str("transposed").tensor("FloatStorage", "0", 6, 0, new long[] {2, 3}, new long[] {1, 2})
                .str("row").tensor("FloatStorage", "0", 6, 2, new long[] {2}, new long[] {1})
                .str("column").tensor("FloatStorage", "0", 6, 1, new long[] {3}, new long[] {2})
                .str("last").tensor("FloatStorage", "0", 6, 5, new long[0], new long[0])
                .str("expanded").tensor("FloatStorage", "0", 6, 0, new long[] {2, 2}, new long[] {0, 1})
                .setItems().stop().bytes();
        Path file = new CheckpointZip(pickle).storage("0", CheckpointZip.floats(0, 1, 2, 3, 4, 5))
                .writeTo(dir.resolve("views.bin"));
        List<SourceTensor> tensors = TorchZipCheckpoint.open(file).tensors();
        Map<String, SourceTensor> byName =
                tensors.stream().collect(Collectors.toMap(SourceTensor::name, Function.identity()));

        assertEquals(List.of("expanded", "matrix", "transposed", "column", "row", "last"),
                tensors.stream().map(SourceTensor::name).toList(), "by data offset, then by name");
        assertValues(byName.get("matrix"), 0, 1, 2, 3, 4, 5);
        assertValues(byName.get("transposed"), 0, 2, 4, 1, 3, 5);
        assertValues(byName.get("row"), 2, 3);
        assertValues(byName.get("column"), 1, 3, 5);
        assertValues(byName.get("last"), 5);
        assertValues(byName.get("expanded"), 0, 1, 0, 1);
        assertTrue(byName.get("row").isContiguous());
        assertFalse(byName.get("transposed").isContiguous());
        assertArrayEquals(new long[] {2, 3}, byName.get("transposed").shape());
    }

    private static void assertValues(SourceTensor tensor, float... expected) {
        byte[] actual = TorchZipCheckpointTest.bytes(tensor.readFully());
        assertArrayEquals(CheckpointZip.floats(expected), actual, tensor.name());
    }
}
