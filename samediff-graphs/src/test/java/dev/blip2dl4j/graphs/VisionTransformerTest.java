package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.config.VisionConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.VisionTransformer;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
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
import static dev.blip2dl4j.testing.Closeness.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

public class VisionTransformerTest {
    /** The encoder's outputs for one batch of pixel values. */
    public record Result(INDArray lastHiddenState, INDArray pooledOutput, List<INDArray> hiddenStates) {
        Result row(int i) {
            return new Result(slice(lastHiddenState, i), slice(pooledOutput, i),
                    hiddenStates.stream().map(h -> slice(h, i)).toList());
        }

        private static INDArray slice(INDArray a, int i) {
            return a.get(NDArrayIndex.interval(i, i + 1)).dup();
        }
    }

    public static Result run(Weights weights, VisionConfig config, INDArray pixelValues) {
        SameDiff sd = SameDiff.create();
        int size = config.imageSize();
        SDVariable pixels = sd.placeHolder("pixel_values", DataType.FLOAT, -1, 3, size, size);
        VisionTransformer.Output out = VisionTransformer.build(new Layers(sd, weights), config, pixels);
        List<String> names = new ArrayList<>(List.of(out.lastHiddenState().name(), out.pooledOutput().name()));
        out.hiddenStates().forEach(h -> names.add(h.name()));
        Map<String, INDArray> values = sd.output(Map.of("pixel_values", pixelValues), names.toArray(String[]::new));
        return new Result(values.get(names.get(0)), values.get(names.get(1)),
                names.subList(2, names.size()).stream().map(values::get).toList());
    }

    @ParameterizedTest(name = "{0} via {1}")
    @CsvSource({"opt, safetensors", "t5, safetensors", "itm, safetensors", "opt, lavis", "t5, lavis", "itm, lavis"})
    void matchesTransformersOnEveryFixture(String model, String source) {
        Fixture fixture = source.equals("lavis") ? Fixture.loadLavis(model) : Fixture.load(model);
        Result got = run(fixture.weights(), fixture.config().vision(), fixture.ref("pixel_values"));

        String what = model + " via " + source + ": ";
        assertClose(what + "vision_last_hidden_state", fixture.ref("vision_last_hidden_state"),
                got.lastHiddenState(), ACTIVATION_TOLERANCE);
        assertClose(what + "vision_pooler_output", fixture.ref("vision_pooler_output"),
                got.pooledOutput(), ACTIVATION_TOLERANCE);
        // the retrieval fixture records no per-layer states
        fixture.reference().array("vision_hidden_states").ifPresent(expected -> {
            assertArrayEquals(new long[]{got.hiddenStates().size()}, new long[]{expected.size(0)},
                    what + "number of hidden states");
            for (int i = 0; i < got.hiddenStates().size(); i++) {
                assertClose(what + "vision_hidden_states[" + i + "]",
                        expected.get(NDArrayIndex.point(i)), got.hiddenStates().get(i), ACTIVATION_TOLERANCE);
            }
        });
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "itm"})
    void eachRowOfABatchIsEncodedAlone(String model) {
        Fixture fixture = Fixture.load(model);
        VisionConfig config = fixture.config().vision();
        INDArray image = fixture.ref("pixel_values");
        INDArray transposed = image.permute(0, 1, 3, 2).dup();
        Result batch = run(fixture.weights(), config, Nd4j.concat(0, image, transposed));

        assertSame("row 0", run(fixture.weights(), config, image), batch.row(0));
        assertSame("row 1", run(fixture.weights(), config, transposed), batch.row(1));
    }

    /** Pixels past the last whole patch are ignored, as the convolution's stride never reaches them. */
    @ParameterizedTest
    @ValueSource(ints = {36, 39})
    void imageSizeRemainderIsCropped(int size) {
        Fixture fixture = Fixture.load("opt");
        VisionConfig tiny = fixture.config().vision();
        VisionConfig larger = new VisionConfig(tiny.hiddenSize(), tiny.intermediateSize(), tiny.numHiddenLayers(),
                tiny.numAttentionHeads(), size, tiny.patchSize(), tiny.hiddenAct(), tiny.layerNormEps(),
                tiny.qkvBias());
        INDArray padded = Nd4j.rand(DataType.FLOAT, 1, 3, size, size).muli(100);
        INDArray image = fixture.ref("pixel_values");
        padded.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(0, 32), NDArrayIndex.interval(0, 32))
                .assign(image);

        Result got = run(fixture.weights(), larger, padded);
        assertClose("last_hidden_state", fixture.ref("vision_last_hidden_state"), got.lastHiddenState(),
                ACTIVATION_TOLERANCE);
        assertClose("pooler_output", fixture.ref("vision_pooler_output"), got.pooledOutput(), ACTIVATION_TOLERANCE);
    }

    /** The image sizes BLIP-2 checkpoints use, at patch 14, on a narrow encoder. */
    @ParameterizedTest
    @ValueSource(ints = {224, 364, 490})
    void tokensFollowTheImageSize(int size) {
        Blip2Config config = Blip2Config.parse("""
                {"model_type": "blip-2", "text_config": {"model_type": "opt"},
                 "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "image_size": %d, "patch_size": 14}}
                """.formatted(size), null);
        VisionConfig vision = config.vision();
        Result got = run(new RandomWeights(ParameterLayout.of(config), 7), vision,
                Nd4j.rand(DataType.FLOAT, 2, 3, size, size));

        long tokens = (long) (size / 14) * (size / 14) + 1;
        assertArrayEquals(new long[]{2, tokens, 8}, got.lastHiddenState().shape());
        assertArrayEquals(new long[]{2, 8}, got.pooledOutput().shape());
        assertArrayEquals(new long[]{2, tokens, 8}, got.hiddenStates().get(1).shape());
    }

    private static void assertSame(String what, Result alone, Result inBatch) {
        assertClose(what + " last_hidden_state", alone.lastHiddenState(), inBatch.lastHiddenState(), BATCH_TOLERANCE);
        assertClose(what + " pooler_output", alone.pooledOutput(), inBatch.pooledOutput(), BATCH_TOLERANCE);
        for (int i = 0; i < alone.hiddenStates().size(); i++) {
            assertClose(what + " hidden_states[" + i + "]", alone.hiddenStates().get(i),
                    inBatch.hiddenStates().get(i), BATCH_TOLERANCE);
        }
    }
}
