package dev.blip2dl4j.convert;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.blip2dl4j.convert.ConverterTest.byName;
import static dev.blip2dl4j.convert.ConverterTest.floats;
import static dev.blip2dl4j.convert.ConverterTest.toArray;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fixtures converted to each storage type: every tensor in the policy's type, within that type's rounding. */
class StorageConversionTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @CsvSource({"opt, bfloat16, bfloat16, 0", "opt, float16, float16, 0", "opt, int8, int8, 0", "t5, int8, int8, 0",
            "t5, bfloat16, float16, 0", "opt, int8, bfloat16, 0", "opt, int8, int8, 4", "t5, float32, int8, 8"})
    void everyTensorInThePolicysTypeWithinItsRounding(String model, String lm, String vision, int block)
            throws IOException {
        Path fixture = Fixtures.model(model);
        StoragePolicy policy = StoragePolicy.of(DType.fromUserName(lm)).withVision(DType.fromUserName(vision))
                .withBlockSize(block);
        Path out = dir.resolve(model + ".b2z");
        Converter.Result result = Converter.convert(List.of(fixture), out, Converter.Options.defaults().withStorage(policy),
                ConversionProgress.NONE);
        Map<String, SourceTensor> source = byName(SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors());
        ParameterLayout layout = ParameterLayout.of(Blip2Config.read(fixture.resolve("config.json")));
        int quantized = 0;
        try (Artifact a = Artifact.open(out)) {
            Manifest m = a.manifest();
            assertEquals(DType.fromUserName(lm).name(), m.dtype());
            boolean anyInt8 = policy.vision() == DType.I8 || policy.languageModel() == DType.I8;
            assertEquals(anyInt8 ? 2 : 1, m.formatVersion());
            assertEquals(layout.parameters().size(), m.tensors().size());
            for (ParamSpec p : layout.parameters()) {
                DType expected = expectedType(p, policy.vision(), policy.languageModel());
                assertEquals(expected, a.dtype(p.name()), p.name());
                float[] values = floats(source.get(p.name()).readFully());
                ByteBuffer stored = a.map(p.name());
                switch (expected) {
                    case F32 -> assertArrayEquals(values, floats(stored), p.name());
                    case BF16, F16 -> {
                        for (int i = 0; i < values.length; i++) {
                            short bits = expected == DType.BF16 ? FloatConversion.floatToBfloat16(values[i])
                                    : FloatConversion.floatToHalf(values[i]);
                            assertEquals(bits, stored.getShort(2 * i), p.name() + "[" + i + "]");
                        }
                    }
                    default -> {
                        checkInt8(a, p, values, stored, block);
                        quantized++;
                    }
                }
            }
            assertTrue(result.manifest().notes().stream().anyMatch(n -> n.startsWith("stored: image encoder products "
                    + vision + ", language model products " + lm)), result.manifest().notes().toString());
        }
        assertEquals(policy.vision() == DType.I8 || policy.languageModel() == DType.I8, quantized > 0);
    }

    /** The rule spelled out independently of the policy: products of the ViT and the LM take their part's type. */
    private static DType expectedType(ParamSpec p, DType vision, DType lm) {
        String name = p.name();
        boolean matrix = p.shape().length == 2 && name.endsWith(".weight") && !name.contains("embed")
                && !name.contains("shared") && !name.contains("relative_attention_bias") && !name.contains("layer_norm")
                && !name.contains("layernorm");
        if (matrix && name.startsWith("vision_model.")) {
            return vision;
        }
        return matrix && name.startsWith("language_model.") ? lm : DType.F32;
    }

    private static void checkInt8(Artifact a, ParamSpec p, float[] values, ByteBuffer stored, int block) {
        long[] shape = p.shape();
        int rows = (int) shape[0];
        int columns = (int) shape[1];
        int group = block > 0 && columns % block == 0 ? block : columns;
        Manifest.Quantization q = a.tensor(p.name()).orElseThrow().quantization();
        assertEquals(new Manifest.Quantization("symmetric", group == columns ? 0 : block, "scales/" + p.name(),
                q.scaleSha256()), q, p.name());
        FloatBuffer scales = a.scales(p.name());
        assertEquals(rows * (columns / group), scales.remaining(), p.name());
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < columns / group; g++) {
                float max = 0;
                for (int c = g * group; c < (g + 1) * group; c++) {
                    max = Math.max(max, Math.abs(values[r * columns + c]));
                }
                float scale = scales.get(r * (columns / group) + g);
                assertEquals(max / 127, scale, p.name() + " row " + r);
                for (int c = g * group; c < (g + 1) * group; c++) {
                    byte v = stored.get(r * columns + c);
                    assertTrue(v >= -127);
                    float error = Math.abs(v * scale - values[r * columns + c]);
                    assertTrue(error <= scale * 0.50001f, p.name() + "[" + r + ", " + c + "] off by " + error);
                }
            }
        }
    }

    @Test
    void aValueInt8CannotHoldIsRefusedByNameAndNothingIsWritten() throws IOException {
        Path fixture = Fixtures.model("opt");
        Path folder = Files.createDirectories(dir.resolve("nan"));
        Map<String, SafetensorsWriter.Entry> tensors = new LinkedHashMap<>();
        String broken = "language_model.model.decoder.layers.1.fc2.weight";
        for (SourceTensor t : SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors()) {
            byte[] bytes = toArray(t.readFully());
            if (t.name().equals(broken)) {
                ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat(4 * 50, Float.POSITIVE_INFINITY);
            }
            tensors.put(t.name(), new SafetensorsWriter.Entry("F32", t.shape(), bytes));
        }
        SafetensorsWriter.write(folder.resolve("model.safetensors"), tensors);
        Files.copy(fixture.resolve("config.json"), folder.resolve("config.json"));
        Path out = dir.resolve("out.b2z");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(folder), out,
                Converter.Options.defaults().withDtype(DType.I8), ConversionProgress.NONE));
        assertEquals("tensor '" + broken + "' holds a value that is not finite in row 1: it cannot be stored as int8 "
                + "(convert it as float32 or bfloat16)", e.getMessage());
        try (var files = Files.list(dir)) {
            assertEquals(List.of(folder), files.toList());
        }
        // the same checkpoint converts as bfloat16 (infinity is a bfloat16 value)
        Converter.convert(List.of(folder), out, Converter.Options.defaults().withDtype(DType.BF16), ConversionProgress.NONE);
        try (Artifact a = Artifact.open(out)) {
            assertNull(a.tensor(broken).orElseThrow().quantization());
            assertEquals(Sha256.of(a.map(broken)), a.tensor(broken).orElseThrow().sha256());
        }
    }

    @Test
    void onlyFloatingPointAndInt8AreStorageTypes() {
        BadInputException e = assertThrows(BadInputException.class, () -> StoragePolicy.of(DType.I16));
        assertEquals("weights cannot be stored as i16: use float32, bfloat16, float16 or int8", e.getMessage());
        assertThrows(BadInputException.class, () -> StoragePolicy.FLOAT32.withBlockSize(-1));
    }
}
