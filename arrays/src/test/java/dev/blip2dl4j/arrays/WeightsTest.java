package dev.blip2dl4j.arrays;

import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

class WeightsTest {
    @TempDir
    Path dir;

    @Test
    void artifactWeightsAreTheMappedBytesAndCheckpointWeightsAgree() {
        Path fixture = Fixtures.model("opt");
        Path artifact = dir.resolve("opt.b2z");
        Converter.convert(List.of(fixture), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
        CheckpointWeights fromLavis = CheckpointWeights.open(List.of(fixture.resolve("lavis/blip2_opt_tiny.pth")),
                Converter.Options.defaults().withConfig(fixture.resolve("config.json")));
        try (ArtifactWeights weights = ArtifactWeights.open(artifact)) {
            assertEquals("opt", weights.config().text().modelType());
            for (SourceTensor t : SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors()) {
                INDArray mapped = weights.get(t.name());
                assertArrayEquals(t.shape(), mapped.shape(), t.name());
                FloatBuffer expected = t.readFully().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                float[] values = new float[expected.remaining()];
                expected.get(values);
                assertArrayEquals(values, mapped.dup().data().asFloat(), t.name());
                assertArrayEquals(values, fromLavis.get(t.name()).dup().data().asFloat(), t.name() + " via LAVIS");
                assertSame(mapped, weights.get(t.name()), "bound once");
                INDArray copy = weights.copy(t.name());
                assertArrayEquals(t.shape(), copy.shape(), t.name() + " copied");
                assertArrayEquals(values, copy.data().asFloat(), t.name() + " copied");
                copy.addi(1);
                assertArrayEquals(values, mapped.dup().data().asFloat(), t.name() + ": the copy is not the mapping");
            }
            assertEquals(DType.F32.name(), weights.artifact().manifest().dtype());
        }
    }
}
