package dev.blip2dl4j.testing;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.arrays.CheckpointWeights;
import dev.blip2dl4j.arrays.ReferenceBundle;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.List;

/** One tiny fixture model: its weights (read from model.safetensors), config and reference outputs. */
public record Fixture(Path dir, CheckpointWeights weights, ReferenceBundle reference) {
    public static Fixture load(String model) {
        Path dir = Fixtures.model(model);
        return new Fixture(dir, CheckpointWeights.open(List.of(dir), Converter.Options.defaults()),
                ReferenceBundle.open(dir));
    }

    /** The same model read through its LAVIS .pth (with the HF config, as LAVIS carries none). */
    public static Fixture loadLavis(String model) {
        Path dir = Fixtures.model(model);
        Path pth = dir.resolve("lavis/blip2_" + model + "_tiny.pth");
        return new Fixture(dir, CheckpointWeights.open(List.of(pth),
                Converter.Options.defaults().withConfig(dir.resolve("config.json"))), ReferenceBundle.open(dir));
    }

    public Blip2Config config() {
        return weights.config();
    }

    public INDArray ref(String name) {
        return reference.require(name);
    }

    /** The language model's attention mask: ones for the query positions, then the prompt's {@code [batch, seq]} mask. */
    public INDArray lmMask(INDArray textMask) {
        return Nd4j.concat(1, Nd4j.ones(DataType.FLOAT, textMask.size(0), config().numQueryTokens()),
                textMask.castTo(DataType.FLOAT));
    }
}
