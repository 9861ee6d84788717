package dev.blip2dl4j.zoo.generate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.List;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Greedy and 3-beam ids exactly as transformers' generate, from the reference's language model inputs. */
class GeneratorTest {

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void greedyIdsAndStepScores(String model) {
        Fixture f = Fixture.load(model);
        JsonNode greedy = f.reference().json().get("generation").get("greedy");
        Generation g = generate(f, 1);
        assertArrayEquals(expectedNewTokens(f, greedy), g.sequences()[0], "greedy ids");
        JsonNode topIds = greedy.get("step_top5_ids");
        JsonNode topScores = greedy.get("step_top5_scores");
        for (int step = 0; step < topIds.size(); step++) {
            assertArrayEquals(longs(topIds.get(step)), g.topTokens().get(step)[0], "step " + step + " top-5 ids");
            for (int i = 0; i < 5; i++) {
                assertEquals(topScores.get(step).get(i).asDouble(), g.topScores().get(step)[0][i], 1e-4,
                        "step " + step + " score " + i);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"opt", "t5"})
    void threeBeams(String model) {
        Fixture f = Fixture.load(model);
        JsonNode beam = f.reference().json().get("generation").get("beam3");
        Generation g = generate(f, 3);
        assertArrayEquals(expectedNewTokens(f, beam), g.sequences()[0], "beam ids");
    }

    private static Generation generate(Fixture f, int beams) {
        Blip2Config config = f.config();
        LanguageModel lm = LanguageModel.of(config, f.weights());
        INDArray embeds = f.ref("lm_inputs_embeds");
        INDArray mask = Nd4j.concat(1, Nd4j.ones(DataType.FLOAT, 1, config.numQueryTokens()),
                f.ref("attention_mask").castTo(DataType.FLOAT));
        LanguageModel.Started started = lm.start(embeds, mask, (int) embeds.size(1) + 10);
        GenerationConfig generation = GenerationConfig.defaults(List.of(config.text().eosTokenId().longValue()),
                        config.text().padTokenId() == null ? null : config.text().padTokenId().longValue())
                .withMaxNewTokens(10).withBeams(beams, 1);
        return new Generator(generation, beams == 1 ? 5 : 0).generate(started.logits(), started.decoder(),
                lm.decoderPrefix(), 10);
    }

    /** The reference sequences, as our generator returns them: OPT's without the BOS transformers prepends. */
    private static long[] expectedNewTokens(Fixture f, JsonNode generation) {
        long[] sequence = longs(generation.get("sequences").isArray() && generation.get("sequences").get(0).isArray()
                ? generation.get("sequences").get(0) : generation.get("sequences"));
        return f.config().useDecoderOnlyLanguageModel() ? java.util.Arrays.copyOfRange(sequence, 1, sequence.length) : sequence;
    }

    private static long[] longs(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }
}
