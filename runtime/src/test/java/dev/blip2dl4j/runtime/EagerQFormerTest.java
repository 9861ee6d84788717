package dev.blip2dl4j.runtime;

import dev.blip2dl4j.config.QFormerConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerQFormer;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.EAGER_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.check;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The eager Q-Former query path against its graph and against transformers, on every fixture. */
class EagerQFormerTest {

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5", "itm"})
    void equalsTheGraphAndTransformers(String model) {
        Fixture fixture = Fixture.load(model);
        QFormerConfig config = fixture.config().qformer();
        INDArray image = fixture.ref("vision_last_hidden_state");
        EagerQFormer.Output eager = new EagerQFormer(config, fixture.weights()).forward(image, true);
        EagerQFormer.Output graph = runGraph(fixture.weights(), config, image);

        String what = model + ": eager vs graph, ";
        check(what + "last_hidden_state", graph.lastHiddenState(), eager.lastHiddenState(), EAGER_TOLERANCE);
        assertEquals(graph.hiddenStates().size(), eager.hiddenStates().size(), "number of hidden states");
        for (int i = 0; i < graph.hiddenStates().size(); i++) {
            check(what + "hidden_states[" + i + "]", graph.hiddenStates().get(i), eager.hiddenStates().get(i),
                    EAGER_TOLERANCE);
        }

        what = model + ": eager vs transformers, ";
        if (model.equals("itm")) {
            // the retrieval model records the query path as the image side of contrast
            check(what + "qformer_query_last_hidden_state", fixture.ref("qformer_query_last_hidden_state"),
                    eager.lastHiddenState(), ACTIVATION_TOLERANCE);
        } else {
            check(what + "qformer_last_hidden_state", fixture.ref("qformer_last_hidden_state"),
                    eager.lastHiddenState(), ACTIVATION_TOLERANCE);
            INDArray expected = fixture.ref("qformer_hidden_states");
            for (int i = 0; i < eager.hiddenStates().size(); i++) {
                check(what + "qformer_hidden_states[" + i + "]", expected.get(NDArrayIndex.point(i)),
                        eager.hiddenStates().get(i), ACTIVATION_TOLERANCE);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "itm"})
    void eachRowOfABatchIsReadAlone(String model) {
        Fixture fixture = Fixture.load(model);
        EagerQFormer qformer = new EagerQFormer(fixture.config().qformer(), fixture.weights());
        INDArray image = fixture.ref("vision_last_hidden_state");
        INDArray other = image.mul(-0.5).addi(0.25);
        EagerQFormer.Output batch = qformer.forward(Nd4j.concat(0, image, other), true);

        INDArray[] alone = {image, other};
        for (int row = 0; row < 2; row++) {
            EagerQFormer.Output one = qformer.forward(alone[row], true);
            String what = model + ": batch of 2, row " + row + ", ";
            check(what + "last_hidden_state", one.lastHiddenState(), row(batch.lastHiddenState(), row),
                    BATCH_TOLERANCE);
            for (int i = 0; i < one.hiddenStates().size(); i++) {
                check(what + "hidden_states[" + i + "]", one.hiddenStates().get(i),
                        row(batch.hiddenStates().get(i), row), BATCH_TOLERANCE);
            }
        }
    }

    private static INDArray row(INDArray a, int row) {
        return a.get(NDArrayIndex.interval(row, row + 1));
    }

    /** The graph's outputs for the same input, in the eager output's record. */
    private static EagerQFormer.Output runGraph(Weights weights, QFormerConfig config, INDArray imageEmbeds) {
        SameDiff sd = Layers.newSameDiff();
        SDVariable image = sd.placeHolder("image_embeds", DataType.FLOAT, -1, -1, config.encoderHiddenSize());
        QFormer.Output out = QFormer.build(new Layers(sd, weights), config, image);
        List<String> names = new ArrayList<>();
        out.hiddenStates().forEach(h -> names.add(h.name()));
        Map<String, INDArray> values = sd.output(Map.of("image_embeds", imageEmbeds), names);
        List<INDArray> hiddenStates = names.stream().map(values::get).toList();
        return new EagerQFormer.Output(hiddenStates.get(hiddenStates.size() - 1), hiddenStates);
    }
}
