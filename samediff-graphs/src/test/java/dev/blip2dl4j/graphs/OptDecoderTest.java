package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.OptDecoder;
import dev.blip2dl4j.testing.Fixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The OPT language model against the opt fixture, read from model.safetensors and from the LAVIS .pth. */
class OptDecoderTest {
    private static final int QUERIES = 8;

    private static Fixture fixture(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("opt") : Fixture.load("opt");
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void matchesTheReference(String source) {
        Fixture fixture = fixture(source);
        List<INDArray> out = OptGraph.build((OptConfig) fixture.config().text(), fixture.weights())
                .run(fixture.ref("lm_inputs_embeds"), fixture.lmMask(fixture.ref("attention_mask")));

        INDArray hidden = fixture.ref("lm_hidden_states");
        assertEquals(hidden.size(0), out.size() - 1, "number of hidden states");
        double worst = 0;
        for (int i = 0; i < hidden.size(0); i++) {
            INDArray expected = hidden.get(NDArrayIndex.point(i)).reshape(out.get(i + 1).shape());
            worst = Math.max(worst, assertClose("lm_hidden_states[" + i + "]", expected, out.get(i + 1), ACTIVATION_TOLERANCE));
        }
        // the reference holds the text positions only: logits[:, num_query_tokens:, :]
        INDArray textLogits = out.get(0).get(NDArrayIndex.all(), NDArrayIndex.interval(QUERIES, out.get(0).size(1)), NDArrayIndex.all());
        System.out.printf("OPT %s: hidden states max abs diff %.3g, logits %.3g%n", source, worst,
                assertClose("logits", fixture.ref("logits"), textLogits, ACTIVATION_TOLERANCE));
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void batchRowsEqualSingleRowsWithLeftPadding(String source) {
        Fixture fixture = fixture(source);
        OptGraph graph = OptGraph.build((OptConfig) fixture.config().text(), fixture.weights());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
        long seq = embeds.size(1);

        // the input twice
        List<INDArray> single = graph.run(embeds, mask);
        List<INDArray> twice = graph.run(Nd4j.concat(0, embeds, embeds), Nd4j.concat(0, mask, mask));
        for (int i = 0; i < single.size(); i++) {
            for (int row = 0; row < 2; row++) {
                assertRowClose("duplicated, output " + i + " row " + row, single.get(i), twice.get(i).get(rows(row, row + 1)), 0);
            }
        }

        // a shorter second row (the prompt cut after 6 tokens), left-padded with arbitrary embeddings as
        // generation pads: its real positions must not notice
        int pad = 4;
        INDArray shortEmbeds = embeds.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - pad), NDArrayIndex.all());
        INDArray shortMask = mask.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - pad));
        List<INDArray> shortAlone = graph.run(shortEmbeds.dup(), shortMask.dup());
        Nd4j.getRandom().setSeed(7);
        INDArray padded = Nd4j.concat(1, Nd4j.randn(DataType.FLOAT, 1, pad, embeds.size(2)), shortEmbeds);
        INDArray paddedMask = Nd4j.concat(1, Nd4j.zeros(DataType.FLOAT, 1, pad), shortMask);
        List<INDArray> batch = graph.run(Nd4j.concat(0, embeds, padded), Nd4j.concat(0, mask, paddedMask));
        double worst = 0;
        for (int i = 0; i < single.size(); i++) {
            worst = Math.max(worst, assertRowClose("left-padded batch, output " + i + " row 0",
                    single.get(i), batch.get(i).get(rows(0, 1)), 0));
            worst = Math.max(worst, assertRowClose("left-padded batch, output " + i + " row 1",
                    shortAlone.get(i), batch.get(i).get(rows(1, 2)), pad));
        }
        System.out.printf("OPT %s: batch of 2 (left-padded row) vs rows alone, max abs diff %.3g%n", source, worst);
    }

    /** BLIP-2's input to OPT: the projected queries, then the prompt's token embeddings. */
    @Test
    void inputsEmbedsAreQueriesThenTokenEmbeddings() {
        Fixture fixture = Fixture.load("opt");
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, fixture.weights());
        INDArray embeds = OptDecoder.prependQueries(nn, sd.constant(fixture.ref("language_projection")),
                OptDecoder.embedTokens(nn, sd.constant(fixture.ref("input_ids")))).eval();
        assertClose("lm_inputs_embeds", fixture.ref("lm_inputs_embeds"), embeds, 0);
    }

    private static INDArrayIndex[] rows(int from, int to) {
        return new INDArrayIndex[]{NDArrayIndex.interval(from, to)};
    }

    /** {@code actual [1, pad + seq, ...]} from position {@code pad} on equals {@code expected [1, seq, ...]}. */
    private static double assertRowClose(String what, INDArray expected, INDArray actual, int pad) {
        INDArray real = actual.get(NDArrayIndex.all(), NDArrayIndex.interval(pad, actual.size(1)), NDArrayIndex.all());
        return assertClose(what, expected, real, BATCH_TOLERANCE);
    }
}
