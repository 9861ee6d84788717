package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.arrays.CheckpointWeights;
import dev.blip2dl4j.arrays.SafetensorsArrays;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.arrays.ReferenceBundle;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One tiny fixture model (fixtures/blip2-tiny-*) with its reference training step. */
record TrainFixture(Path dir, CheckpointWeights weights, ReferenceBundle reference) {
    /** fixtures/README.md "Tolerances": gradients and AdamW results within 1e-5 + 1e-3 |ref|, loss within 1e-5. */
    static final double LOSS_TOLERANCE = 1e-5;

    static TrainFixture load(String model) {
        String configured = System.getProperty("blip2.fixtures");
        Path root = configured != null ? Path.of(configured) : Path.of("..", "fixtures");
        Path dir = root.resolve("blip2-tiny-" + model);
        if (!Files.isDirectory(dir)) {
            throw new IllegalStateException("fixture not found at " + dir.toAbsolutePath());
        }
        return new TrainFixture(dir, CheckpointWeights.open(List.of(dir), Converter.Options.defaults()),
                ReferenceBundle.open(dir));
    }

    Blip2Config config() {
        return weights.config();
    }

    JsonNode trainStep() {
        return reference.json().get("train_step");
    }

    /** The reference step's example: the fixture image, loss_input_ids, loss_attention_mask, loss_labels. */
    TrainingBatch batch() {
        INDArray image = new EagerVision(config().vision(), weights).forward(reference.require("pixel_values"))
                .lastHiddenState();
        return new TrainingBatch(image, reference.require("loss_input_ids"), reference.require("loss_attention_mask"),
                reference.require("loss_labels"));
    }

    Map<String, INDArray> referenceGradients() {
        return SafetensorsArrays.read(dir.resolve(trainStep().get("all_gradients_file").asText()));
    }

    Map<String, INDArray> referenceParametersAfterStep() {
        return SafetensorsArrays.read(dir.resolve(trainStep().get("all_params_after_step_file").asText()));
    }

    static double maxAbsDiff(INDArray expected, INDArray actual) {
        assertArrayEquals(expected.shape(), actual.shape());
        return expected.castTo(DataType.DOUBLE).sub(actual.castTo(DataType.DOUBLE)).amaxNumber().doubleValue();
    }

    /** Every element within {@code 1e-5 + 1e-3 |expected|}; returns the largest absolute difference. */
    static double assertWithinReference(String what, INDArray expected, INDArray actual) {
        assertArrayEquals(expected.shape(), actual.shape(), what + " shape");
        INDArray e = expected.castTo(DataType.DOUBLE);
        INDArray diff = Transforms.abs(e.sub(actual.castTo(DataType.DOUBLE)), false);
        double worstExcess = diff.sub(Transforms.abs(e, true).muli(1e-3)).maxNumber().doubleValue();
        double maxDiff = diff.maxNumber().doubleValue();
        assertTrue(worstExcess <= 1e-5, what + ": max abs diff " + maxDiff + " exceeds 1e-5 + 1e-3 |ref|");
        return maxDiff;
    }
}
