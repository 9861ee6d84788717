package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerVision;
import dev.blip2dl4j.testing.Fixture;
import dev.blip2dl4j.graphs.VisionTransformerTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;


import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.EAGER_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.check;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The eager image encoder against its graph and against transformers, on every fixture. */
class EagerVisionTest {

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5", "itm"})
    void equalsTheGraphAndTransformers(String model) {
        Fixture fixture = Fixture.load(model);
        VisionConfig config = fixture.config().vision();
        INDArray pixels = fixture.ref("pixel_values");
        EagerVision.Output eager = new EagerVision(config, fixture.weights()).forward(pixels, true);
        EagerVision.Output graph = runGraph(fixture.weights(), config, pixels);

        String what = model + ": eager vs graph, ";
        check(what + "last_hidden_state", graph.lastHiddenState(), eager.lastHiddenState(), EAGER_TOLERANCE);
        check(what + "pooler_output", graph.pooledOutput(), eager.pooledOutput(), EAGER_TOLERANCE);
        assertEquals(graph.hiddenStates().size(), eager.hiddenStates().size(), "number of hidden states");
        for (int i = 0; i < graph.hiddenStates().size(); i++) {
            check(what + "hidden_states[" + i + "]", graph.hiddenStates().get(i), eager.hiddenStates().get(i),
                    EAGER_TOLERANCE);
        }

        what = model + ": eager vs transformers, ";
        check(what + "vision_last_hidden_state", fixture.ref("vision_last_hidden_state"), eager.lastHiddenState(),
                ACTIVATION_TOLERANCE);
        check(what + "vision_pooler_output", fixture.ref("vision_pooler_output"), eager.pooledOutput(),
                ACTIVATION_TOLERANCE);
        // the retrieval fixture records no per-layer states
        String prefix = what;
        fixture.reference().array("vision_hidden_states").ifPresent(expected -> {
            assertEquals(expected.size(0), eager.hiddenStates().size(), "number of hidden states");
            for (int i = 0; i < eager.hiddenStates().size(); i++) {
                check(prefix + "vision_hidden_states[" + i + "]", expected.get(NDArrayIndex.point(i)),
                        eager.hiddenStates().get(i), ACTIVATION_TOLERANCE);
            }
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "itm"})
    void eachRowOfABatchIsEncodedAlone(String model) {
        Fixture fixture = Fixture.load(model);
        EagerVision vision = new EagerVision(fixture.config().vision(), fixture.weights());
        INDArray image = fixture.ref("pixel_values");
        INDArray transposed = image.permute(0, 1, 3, 2).dup();
        EagerVision.Output batch = vision.forward(Nd4j.concat(0, image, transposed), true);

        INDArray[] alone = {image, transposed};
        for (int row = 0; row < 2; row++) {
            EagerVision.Output one = vision.forward(alone[row], true);
            String what = model + ": batch of 2, row " + row + ", ";
            check(what + "last_hidden_state", one.lastHiddenState(), row(batch.lastHiddenState(), row), BATCH_TOLERANCE);
            check(what + "pooler_output", one.pooledOutput(), row(batch.pooledOutput(), row), BATCH_TOLERANCE);
            for (int i = 0; i < one.hiddenStates().size(); i++) {
                check(what + "hidden_states[" + i + "]", one.hiddenStates().get(i),
                        row(batch.hiddenStates().get(i), row), BATCH_TOLERANCE);
            }
        }
    }

    /** Pixels past the last whole patch are ignored, as in the graph. */
    @Test
    void imageSizeRemainderIsCropped() {
        Fixture fixture = Fixture.load("opt");
        VisionConfig tiny = fixture.config().vision();
        VisionConfig larger = new VisionConfig(tiny.hiddenSize(), tiny.intermediateSize(), tiny.numHiddenLayers(),
                tiny.numAttentionHeads(), 39, tiny.patchSize(), tiny.hiddenAct(), tiny.layerNormEps(), tiny.qkvBias());
        INDArray pixels = Nd4j.rand(DataType.FLOAT, 2, 3, 39, 39).muli(4).subi(2);

        EagerVision.Output eager = new EagerVision(larger, fixture.weights()).forward(pixels);
        EagerVision.Output graph = runGraph(fixture.weights(), larger, pixels);
        check("39 px: eager vs graph, last_hidden_state", graph.lastHiddenState(), eager.lastHiddenState(),
                EAGER_TOLERANCE);
        check("39 px: eager vs graph, pooler_output", graph.pooledOutput(), eager.pooledOutput(), EAGER_TOLERANCE);
    }

    private static INDArray row(INDArray a, int row) {
        return a.get(NDArrayIndex.interval(row, row + 1));
    }

    /** The graph's outputs for the same input, in the eager output's record. */
    private static EagerVision.Output runGraph(Weights weights, VisionConfig config, INDArray pixelValues) {
        VisionTransformerTest.Result graph = VisionTransformerTest.run(weights, config, pixelValues);
        return new EagerVision.Output(graph.lastHiddenState(), graph.pooledOutput(), graph.hiddenStates());
    }
}
