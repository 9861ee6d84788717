package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Streaming in small blocks and steps (blocks of 4096 bytes, steps of 20: five float32, ten 16-bit values, two and a
 * half float64) writes the same artifact, byte for byte, as the sizes a conversion uses, in every storage type,
 * LAVIS's rounding of the ViT through float16 included; "shifted" is the safetensors file with its data one byte
 * further on, so that blocks end inside elements.
 */
class TensorStreamerTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} {1} {2}")
    @CsvSource({"opt, model.safetensors, float32", "opt, model.safetensors, bfloat16", "opt, model.safetensors, float16",
            "opt, model.safetensors, int8", "t5, sharded, bfloat16", "t5, pytorch_model.bin, float16",
            "opt, lavis/blip2_opt_tiny.pth, bfloat16", "opt, lavis/blip2_opt_tiny.pth, float32",
            "opt, shifted, bfloat16", "opt, shifted, float32", "t5, shifted, float16", "t5, shifted, int8"})
    void smallBlocksAndStepsWriteTheSameArtifact(String model, String source, String dtype) throws IOException {
        Path fixture = Fixtures.model(model);
        Converter.Options options = Converter.Options.defaults().withDtype(DType.fromUserName(dtype))
                .withConfig(fixture.resolve("config.json"));
        Path from = source.equals("shifted") ? shifted(fixture.resolve("model.safetensors")) : fixture.resolve(source);
        ConversionPlan plan = Converter.plan(List.of(from), options).plan();
        Path whole = write(plan, dir.resolve("whole.b2z"), 8 << 20, 1 << 20);
        Path split = write(plan, dir.resolve("split.b2z"), 4096, 20);
        assertEquals(-1, Files.mismatch(whole, split));
    }

    /** The file with one more space in its header: every tensor's data starts at an odd offset. */
    private Path shifted(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer length = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        long header = length.getLong(0);
        byte[] out = new byte[bytes.length + 1];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).putLong(header + 1);
        System.arraycopy(bytes, 8, out, 8, (int) header);
        out[8 + (int) header] = ' ';
        System.arraycopy(bytes, 8 + (int) header, out, 9 + (int) header, bytes.length - 8 - (int) header);
        return Files.write(dir.resolve("model.safetensors"), out);
    }

    private static Path write(ConversionPlan plan, Path out, int blockSize, int step) {
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            TensorStreamer.Result result = TensorStreamer.stream(plan, writer, bytes -> {
            }, blockSize, step);
            List<Manifest.SourceFile> files = result.fileSha256().entrySet().stream()
                    .map(f -> new Manifest.SourceFile(f.getKey().getFileName().toString(), 0, f.getValue())).toList();
            writer.commit(new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, "test", null, "test",
                    new Manifest.Source("test", files), plan.storage().dtype().name(), List.of(), result.warnings()));
        }
        return out;
    }
}
