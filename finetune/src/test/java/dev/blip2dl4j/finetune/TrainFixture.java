package dev.blip2dl4j.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.arrays.CheckpointWeights;
import dev.blip2dl4j.arrays.SafetensorsArrays;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.arrays.ReferenceBundle;
import dev.blip2dl4j.testing.Fixture;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.file.Path;
import java.util.Map;

/** One tiny fixture model (fixtures/blip2-tiny-*) with its reference training step. */
record TrainFixture(Path dir, CheckpointWeights weights, ReferenceBundle reference) {
    static TrainFixture load(String model) {
        Fixture fixture = Fixture.load(model);
        return new TrainFixture(fixture.dir(), fixture.weights(), fixture.reference());
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
}
