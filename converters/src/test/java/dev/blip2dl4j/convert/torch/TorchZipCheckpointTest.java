package dev.blip2dl4j.convert.torch;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Reading real torch.save checkpoints: the fixtures' Hugging Face and LAVIS files. */
class TorchZipCheckpointTest {

    @ParameterizedTest
    @CsvSource({"blip2-tiny-opt, 114", "blip2-tiny-t5, 131"})
    void everyTensorOfPytorchModelBinEqualsTheSafetensorsCopy(String model, int count) {
        TorchZipCheckpoint checkpoint = TorchZipCheckpoint.open(Fixtures.root().resolve(model + "/pytorch_model.bin"));
        Map<String, SourceTensor> reference =
                byName(SafetensorsFile.open(Fixtures.root().resolve(model + "/model.safetensors")).tensors());
        List<SourceTensor> tensors = checkpoint.tensors();
        Map<String, SourceTensor> byName = byName(tensors);

        assertEquals(count, tensors.size());
        assertTrue(byName.keySet().containsAll(reference.keySet()));
        for (SourceTensor tensor : tensors) {
            SourceTensor expected = reference.get(tensor.name());
            if (expected == null) {
                // safetensors keeps one of each set of tied weights; torch.save keeps them all, on one storage
                expected = reference.entrySet().stream()
                        .filter(e -> byName.get(e.getKey()).view().equals(tensor.view()))
                        .map(Map.Entry::getValue).findFirst().orElseThrow();
            }
            assertEquals(DType.F32, tensor.dtype(), tensor.name());
            assertEquals(expected.dtype(), tensor.dtype(), tensor.name());
            assertArrayEquals(expected.shape(), tensor.shape(), tensor.name());
            assertArrayEquals(bytes(expected.readFully()), bytes(tensor.readFully()), tensor.name());
        }
        for (int i = 1; i < tensors.size(); i++) {
            assertTrue(tensors.get(i - 1).dataOffset() <= tensors.get(i).dataOffset(), "ordered by file offset");
        }
    }

    @Test
    void tiedWeightsShareOneStorageAndAreBothListed() {
        Map<String, SourceTensor> tensors =
                byName(TorchZipCheckpoint.open(Fixtures.root().resolve("blip2-tiny-opt/pytorch_model.bin")).tensors());
        SourceTensor head = tensors.get("language_model.lm_head.weight");
        SourceTensor embeddings = tensors.get("language_model.model.decoder.embed_tokens.weight");
        assertNotNull(head);
        assertEquals(embeddings.view(), head.view());
        assertArrayEquals(new long[] {50272, 12}, head.shape());
    }

    @ParameterizedTest
    @CsvSource({
            "blip2-tiny-opt/lavis/blip2_opt_tiny.pth, 117, 1260996, opt_proj.bias, 12",
            "blip2-tiny-t5/lavis/blip2_t5_tiny.pth, 134, 1605484, t5_proj.bias, 12",
            "blip2-tiny-itm/lavis/blip2_itm_tiny.pth, 106, 1573873, itm_head.bias, 2"})
    void readsLavisCheckpointsInsideTheirModelWrapper(String file, int count, long parameters, String last,
                                                     long lastSize) {
        TorchZipCheckpoint checkpoint = TorchZipCheckpoint.open(Fixtures.root().resolve(file));
        Map<String, SourceTensor> tensors = byName(checkpoint.tensors());

        assertEquals(count, tensors.size());
        assertEquals(parameters, tensors.values().stream().mapToLong(SourceTensor::numel).sum());
        assertArrayEquals(new long[] {lastSize}, tensors.get(last).shape());
        assertArrayEquals(new long[] {32, 3, 8, 8}, tensors.get("visual_encoder.patch_embed.proj.weight").shape());
        for (SourceTensor tensor : tensors.values()) {
            DType expected = tensor.name().endsWith("position_ids") ? DType.I64 : DType.F32;
            assertEquals(expected, tensor.dtype(), tensor.name());
            assertEquals(tensor.byteSize(), tensor.readFully().remaining(), tensor.name());
        }

        SourceTensor positions = tensors.get("Qformer.bert.embeddings.position_ids");
        assertArrayEquals(new long[] {1, 64}, positions.shape());
        ByteBuffer ids = positions.readFully();
        for (long i = 0; i < 64; i++) {
            assertEquals(i, ids.getLong());
        }
        // The LAVIS file and the Hugging Face file hold the same random weights.
        String folder = Path.of(file).getName(0).toString();
        assertArrayEquals(bytes(byName(SafetensorsFile.open(Fixtures.root().resolve(folder + "/model.safetensors"))
                .tensors()).get("query_tokens").readFully()), bytes(tensors.get("query_tokens").readFully()));
    }

    @Test
    void readsTheZeroDimensionalTemperatureOfTheItmModel() {
        Map<String, SourceTensor> tensors =
                byName(TorchZipCheckpoint.open(Fixtures.root().resolve("blip2-tiny-itm/lavis/blip2_itm_tiny.pth")).tensors());
        SourceTensor temp = tensors.get("temp");
        assertArrayEquals(new long[0], temp.shape());
        assertEquals(1, temp.numel());
        assertEquals(0.07f, temp.readFully().getFloat());
    }

    /**
     * {@code Module.state_dict(keep_vars=True)} as torch 1.13 saves it: parameters (through
     * {@code _rebuild_parameter}) in an OrderedDict that carries {@code _metadata} (set with BUILD).
     * Generated by {@code torch.save(torch.nn.Linear(3, 2).state_dict(keep_vars=True), 'lin.pt')};
     * the storages are written here.
     */
    private static final String LINEAR_STATE_DICT_PICKLE = ""
            + "800263636f6c6c656374696f6e730a4f726465726564446963740a710029527101285806000000776569676874"
            + "710263746f7263682e5f7574696c730a5f72656275696c645f706172616d657465720a710363746f7263682e5f"
            + "7574696c730a5f72656275696c645f74656e736f725f76320a71042828580700000073746f72616765710563"
            + "746f7263680a466c6f617453746f726167650a71065801000000307107580300000063707571084b06747109"
            + "514b004b024b0386710a4b034b0186710b8968002952710c74710d52710e8868002952710f87711052711158"
            + "0400000062696173711268036804282868056806580100000031711368084b02747114514b004b028571154b"
            + "01857116896800295271177471185271198868002952711a87711b52711c757d711d58090000005f6d657461"
            + "64617461711e68002952711f580000000071207d7121580700000076657273696f6e71224b01737373622e";

    @Test
    void readsParametersAndIgnoresStateDictMetadata(@TempDir Path dir) throws IOException {
        Path file = new CheckpointZip(HexFormat.of().parseHex(LINEAR_STATE_DICT_PICKLE))
                .storage("0", CheckpointZip.floats(1, 2, 3, 4, 5, 6))
                .storage("1", CheckpointZip.floats(7, 8))
                .writeTo(dir.resolve("lin.pt"));
        Map<String, SourceTensor> tensors = byName(TorchZipCheckpoint.open(file).tensors());

        assertEquals(List.of("weight", "bias"), List.copyOf(tensors.keySet()));
        assertArrayEquals(new long[] {2, 3}, tensors.get("weight").shape());
        assertArrayEquals(CheckpointZip.floats(1, 2, 3, 4, 5, 6), bytes(tensors.get("weight").readFully()));
        assertArrayEquals(CheckpointZip.floats(7, 8), bytes(tensors.get("bias").readFully()));
    }

    @Test
    void readsTheStateDictUnderAStateDictKeyAndIgnoresOptimizerState(@TempDir Path dir) throws IOException {
        byte[] pickle = new OpcodeWriter().proto(2).emptyDict().mark()
                .str("optimizer").emptyDict().mark()
                    .str("state").emptyDict().str("param_groups").raw(']').emptyDict().mark()
                        .str("lr").raw('G', 0x3f, 0x1a, 0x36, 0xe2, 0xeb, 0x1c, 0x43, 0x2d)
                        .str("betas").raw('G', 0x3f, 0xec, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcd).raw('N', 0x86)
                        .str("params").raw(']').mark().integer(0).integer(1).raw('e')
                        .setItems().raw('a')
                    .setItems()
                .str("state_dict").emptyOrderedDict().mark()
                    .str("w").tensor("HalfStorage", "0", 2, 0, new long[] {2}, new long[] {1})
                    .str("step").integer(3)
                    .str("nested").emptyDict().str("x").tensor("FloatStorage", "1", 1, 0, new long[0], new long[0])
                    .setItem()
                    .setItems()
                .str("epoch").integer(4)
                .setItems().stop().bytes();
        Path file = new CheckpointZip(pickle)
                .storage("0", new byte[] {0, 0x3c, 0, 0x40})
                .storage("1", CheckpointZip.floats(9))
                .writeTo(dir.resolve("wrapped.pth"));
        List<SourceTensor> tensors = TorchZipCheckpoint.open(file).tensors();

        assertEquals(1, tensors.size());
        assertEquals("w", tensors.get(0).name());
        assertEquals(DType.F16, tensors.get(0).dtype());
        assertArrayEquals(new byte[] {0, 0x3c, 0, 0x40}, bytes(tensors.get(0).readFully()));
    }

    @ParameterizedTest
    @CsvSource({"FloatStorage, F32", "HalfStorage, F16", "BFloat16Storage, BF16", "DoubleStorage, F64",
            "LongStorage, I64", "IntStorage, I32", "ShortStorage, I16", "CharStorage, I8", "ByteStorage, U8",
            "BoolStorage, BOOL"})
    void takesTheElementTypeFromTheStorageClass(String storageType, DType dtype, @TempDir Path dir)
            throws IOException {
        byte[] data = new byte[3 * dtype.size()];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i + 1);
        }
        byte[] pickle = new OpcodeWriter().proto(2).emptyDict()
                .str("t").tensor(storageType, "0", 3, 0, new long[] {3}, new long[] {1}).setItem().stop().bytes();
        Path file = new CheckpointZip(pickle).storage("0", data).writeTo(dir.resolve("typed.bin"));
        SourceTensor tensor = TorchZipCheckpoint.open(file).tensors().get(0);

        assertEquals(dtype, tensor.dtype());
        assertArrayEquals(data, bytes(tensor.readFully()));
    }

    private static Map<String, SourceTensor> byName(List<SourceTensor> tensors) {
        return tensors.stream().collect(Collectors.toMap(SourceTensor::name, Function.identity(),
                (a, b) -> { throw new AssertionError("duplicate " + a.name()); }, LinkedHashMap::new));
    }

    static byte[] bytes(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN).get(bytes);
        return bytes;
    }
}
