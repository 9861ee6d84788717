package dev.blip2dl4j.arrays;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import dev.blip2dl4j.testing.Fixtures;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Typed views of an artifact's tensors: mapped in their storage type, int8 with their scales, without copies. */
class StoredTensorTest {
    private static final String FC1 = "language_model.model.decoder.layers.0.fc1.weight";
    private static final String QKV = "vision_model.encoder.layers.0.self_attn.qkv.weight";
    private static final String NORM = "language_model.model.decoder.layers.0.final_layer_norm.weight";

    @TempDir
    Path dir;

    @Test
    void int8AndBfloat16ViewsAreTheMappedBytes() {
        Path fixture = Fixtures.model("opt");
        Path artifact = dir.resolve("q.b2z");
        Converter.convert(List.of(fixture), artifact, Converter.Options.defaults()
                .withStorage(StoragePolicy.of(DType.I8).withVision(DType.BF16).withBlockSize(4)), ConversionProgress.NONE);
        Path reference = dir.resolve("f.b2z");
        Converter.convert(List.of(fixture), reference, Converter.Options.defaults(), ConversionProgress.NONE);
        try (ArtifactWeights weights = ArtifactWeights.open(artifact); ArtifactWeights floats = ArtifactWeights.open(reference)) {
            StoredTensor fc1 = weights.stored(FC1);
            assertSame(fc1, weights.stored(FC1), "bound once");
            assertEquals(DType.I8, fc1.dtype());
            assertArrayEquals(new long[]{48, 12}, fc1.shape());
            assertEquals(4, fc1.blockSize());
            assertTrue(fc1.data().isDirect(), "mapped, not copied");
            assertEquals(48 * 12, fc1.data().remaining());
            assertEquals(48 * 3, fc1.scales().remaining());
            // the reference dequantization, in the test only: within half a step of float32
            float[] expected = floats.get(FC1).data().asFloat();
            for (int r = 0; r < 48; r++) {
                for (int c = 0; c < 12; c++) {
                    float scale = fc1.scales().get(r * 3 + c / 4);
                    float value = fc1.data().get(r * 12 + c) * scale;
                    assertEquals(expected[r * 12 + c], value, scale / 2 * 1.0001f, FC1 + "[" + r + ", " + c + "]");
                }
            }
            BadInputException e = assertThrows(BadInputException.class, () -> weights.get(FC1));
            assertTrue(e.getMessage().startsWith(artifact + ": tensor '" + FC1 + "' is stored as int8, and this task "
                    + "runs on the SameDiff graphs"), e.getMessage());
            assertThrows(BadInputException.class, () -> weights.copy(FC1));

            StoredTensor qkv = weights.stored(QKV);
            assertEquals(DType.BF16, qkv.dtype());
            assertNull(qkv.scales());
            assertTrue(qkv.data().isDirect());
            assertEquals(2 * 96 * 32, qkv.data().remaining());

            StoredTensor norm = weights.stored(NORM);
            assertEquals(DType.F32, norm.dtype());
            INDArray normValues = weights.get(NORM);
            assertArrayEquals(floats.get(NORM).data().asFloat(), normValues.data().asFloat());
            assertEquals(norm.data().getFloat(4), normValues.getFloat(1));
        }
    }

    @Test
    void theDefaultViewIsTheFloat32ArraysOwnBytes() {
        Path fixture = Fixtures.model("opt");
        Path artifact = dir.resolve("f.b2z");
        Converter.convert(List.of(fixture), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
        try (ArtifactWeights mapped = ArtifactWeights.open(artifact); ResidentWeights resident = new ResidentWeights(mapped)) {
            StoredTensor view = resident.stored(FC1);
            assertEquals(DType.F32, view.dtype());
            INDArray copy = resident.get(FC1);
            assertEquals(copy.data().address(), new Pointer(view.data()).address(),
                    "the resident copy's own memory");
            assertEquals(copy.getFloat(2, 5), view.data().getFloat(4 * (2 * 12 + 5)));
            INDArray row = copy.getRow(3);
            Weights one = new Weights() {
                @Override
                public INDArray get(String name) {
                    return row;
                }

                @Override
                public boolean contains(String name) {
                    return true;
                }
            };
            assertEquals(row.getFloat(7), one.stored("r").data().getFloat(4 * 7), "a view's own offset");
        }
    }
}
