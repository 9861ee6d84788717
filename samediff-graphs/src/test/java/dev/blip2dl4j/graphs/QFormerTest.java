package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.QFormerConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.QFormer;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.check;

/** The Q-Former's query path (captioning) against transformers, from both checkpoint formats. */
class QFormerTest {

    static Stream<Arguments> fixtures() {
        return Stream.of(
                Arguments.of("opt", "safetensors"), Arguments.of("opt", "lavis"),
                Arguments.of("t5", "safetensors"), Arguments.of("t5", "lavis"));
    }

    @ParameterizedTest(name = "{0} via {1}")
    @MethodSource("fixtures")
    void queryPathMatchesTransformers(String model, String source) {
        Fixture fixture = source.equals("lavis") ? Fixture.loadLavis(model) : Fixture.load(model);
        QFormerConfig config = fixture.config().qformer();
        SameDiff sd = SameDiff.create();
        SDVariable image = sd.placeHolder("image_embeds", DataType.FLOAT, -1, -1, config.encoderHiddenSize());
        QFormer.Output out = QFormer.build(new Layers(sd, fixture.weights()), config, image);
        List<String> names = new ArrayList<>();
        names.add(out.lastHiddenState().name());
        out.hiddenStates().forEach(h -> names.add(h.name()));

        String what = model + " via " + source + ": ";
        INDArray vision = fixture.ref("vision_last_hidden_state");
        Map<String, INDArray> one = sd.output(Map.of("image_embeds", vision), names);
        check(what + "qformer_last_hidden_state", fixture.ref("qformer_last_hidden_state"), one.get(names.get(0)),
                ACTIVATION_TOLERANCE);
        INDArray hiddenStates = fixture.ref("qformer_hidden_states");
        for (int i = 0; i < out.hiddenStates().size(); i++) {
            check(what + "qformer_hidden_states[" + i + "]", hiddenStates.get(NDArrayIndex.point(i)),
                    one.get(names.get(i + 1)), ACTIVATION_TOLERANCE);
        }

        Map<String, INDArray> two = sd.output(Map.of("image_embeds", Nd4j.concat(0, vision, vision)), names);
        for (int i = 0; i < out.hiddenStates().size(); i++) {
            String name = names.get(i + 1);
            for (int row = 0; row < 2; row++) {
                check(what + "batch of 2, row " + row + ", hidden_states[" + i + "]", one.get(name),
                        two.get(name).get(NDArrayIndex.interval(row, row + 1)), BATCH_TOLERANCE);
            }
        }
    }
}
