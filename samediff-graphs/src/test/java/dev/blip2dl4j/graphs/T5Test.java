package dev.blip2dl4j.graphs;

import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.Layers;
import dev.blip2dl4j.graphs.T5;
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
import java.util.Map;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.BATCH_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The T5 language model against the t5 fixture, read from model.safetensors and from the LAVIS .pth. */
class T5Test {
    private static Fixture fixture(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("t5") : Fixture.load("t5");
    }

    private static INDArray startIds() {
        return Nd4j.createFromArray(new long[][]{{0}});
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void matchesTheReference(String source) {
        Fixture fixture = fixture(source);
        T5Graph.Result r = T5Graph.build((T5Config) fixture.config().text(), fixture.weights())
                .run(fixture.ref("lm_inputs_embeds"), fixture.lmMask(fixture.ref("attention_mask")), startIds());
        double worst = 0;
        worst = Math.max(worst, check("lm_encoder_last_hidden_state", fixture.ref("lm_encoder_last_hidden_state"), r.encoderLast()));
        worst = Math.max(worst, checkStack("lm_encoder_hidden_states", fixture.ref("lm_encoder_hidden_states"), r.encoderHidden()));
        worst = Math.max(worst, checkStack("lm_decoder_hidden_states", fixture.ref("lm_decoder_hidden_states"), r.decoderHidden()));
        double logits = check("logits", fixture.ref("logits"), r.logits());
        System.out.printf("T5 %s: hidden states max abs diff %.3g, logits %.3g%n", source, worst, logits);
    }

    /**
     * The loss case: the encoder reads the projected queries and the embedded prompt, the decoder the
     * labels shifted right (teacher forcing).
     */
    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void lossCaseLogits(String source) {
        Fixture fixture = fixture(source);
        T5Config config = (T5Config) fixture.config().text();
        INDArray embeds = inputsEmbeds(fixture, fixture.ref("loss_input_ids"));
        INDArray decoderIds = T5.shiftRight(fixture.ref("loss_labels"), config);
        T5Graph.Result r = T5Graph.build((T5Config) fixture.config().text(), fixture.weights())
                .run(embeds, fixture.lmMask(fixture.ref("loss_attention_mask")), decoderIds);
        System.out.printf("T5 %s: loss case logits max abs diff %.3g%n", source,
                check("loss_logits", fixture.ref("loss_logits"), r.logits()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void batchRowsEqualSingleRowsWithRightPadding(String source) {
        Fixture fixture = fixture(source);
        T5Graph graph = T5Graph.build((T5Config) fixture.config().text(), fixture.weights());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
        long seq = embeds.size(1);

        // the input twice, with a decoder input of two tokens so that the causal mask is exercised
        INDArray decoderIds = Nd4j.createFromArray(new long[][]{{0, 37}});
        T5Graph.Result single = graph.run(embeds, mask, decoderIds);
        T5Graph.Result twice = graph.run(Nd4j.concat(0, embeds, embeds), Nd4j.concat(0, mask, mask),
                Nd4j.concat(0, decoderIds, decoderIds));
        for (int i = 0; i < single.all().size(); i++) {
            for (int row = 0; row < 2; row++) {
                rowClose("duplicated, output " + i + " row " + row, single.all().get(i), twice.all().get(i).get(rows(row)), 0);
            }
        }

        // a shorter second encoder input (the prompt cut after 6 tokens) right-padded with arbitrary
        // embeddings: the decoder and the encoder's real positions must not notice
        int pad = 4;
        INDArray shortEmbeds = embeds.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - pad), NDArrayIndex.all()).dup();
        INDArray shortMask = mask.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - pad)).dup();
        T5Graph.Result shortAlone = graph.run(shortEmbeds, shortMask, decoderIds);
        Nd4j.getRandom().setSeed(7);
        INDArray padded = Nd4j.concat(1, shortEmbeds, Nd4j.randn(DataType.FLOAT, 1, pad, embeds.size(2)));
        INDArray paddedMask = Nd4j.concat(1, shortMask, Nd4j.zeros(DataType.FLOAT, 1, pad));
        T5Graph.Result batch = graph.run(Nd4j.concat(0, embeds, padded), Nd4j.concat(0, mask, paddedMask),
                Nd4j.concat(0, decoderIds, decoderIds));
        double worst = 0;
        for (int i = 0; i < single.all().size(); i++) {
            worst = Math.max(worst, rowClose("padded batch, output " + i + " row 0", single.all().get(i),
                    batch.all().get(i).get(rows(0)), 0));
        }
        // encoder outputs: the real positions; decoder outputs: everything
        worst = Math.max(worst, rowClose("padded batch, encoder output row 1", shortAlone.encoderLast(),
                batch.encoderLast().get(rows(1)), pad));
        for (int i = 0; i < shortAlone.encoderHidden().size(); i++) {
            worst = Math.max(worst, rowClose("padded batch, encoder hidden state " + i + " row 1",
                    shortAlone.encoderHidden().get(i), batch.encoderHidden().get(i).get(rows(1)), pad));
        }
        worst = Math.max(worst, rowClose("padded batch, logits row 1", shortAlone.logits(), batch.logits().get(rows(1)), 0));
        for (int i = 0; i < shortAlone.decoderHidden().size(); i++) {
            worst = Math.max(worst, rowClose("padded batch, decoder hidden state " + i + " row 1",
                    shortAlone.decoderHidden().get(i), batch.decoderHidden().get(i).get(rows(1)), 0));
        }
        System.out.printf("T5 %s: batch of 2 (right-padded encoder row) vs rows alone, max abs diff %.3g%n", source, worst);
    }

    /** A tied head (T5 v1.0 style) reads the shared table, the decoder output scaled by d_model^-0.5. */
    @Test
    void tiedHeadScalesIntoTheSharedTable() {
        Fixture fixture = Fixture.load("t5");
        T5Config c = (T5Config) fixture.config().text();
        T5Config tied = new T5Config(c.vocabSize(), c.dModel(), c.dKv(), c.dFf(), c.numLayers(), c.numDecoderLayers(),
                c.numHeads(), c.relativeAttentionNumBuckets(), c.relativeAttentionMaxDistance(), c.layerNormEpsilon(),
                c.feedForwardProj(), c.denseActFn(), c.isGatedAct(), true, c.decoderStartTokenId(), c.bosTokenId(),
                c.eosTokenId(), c.padTokenId());
        SameDiff sd = SameDiff.create();
        Layers nn = new Layers(sd, fixture.weights());
        T5.Output out = T5.build(nn, tied, sd.constant(fixture.ref("lm_inputs_embeds")),
                sd.constant(fixture.lmMask(fixture.ref("attention_mask"))), sd.constant(startIds()));
        Map<String, INDArray> got = sd.output(Map.of(), out.logits().name(), out.decoder().lastHiddenState().name());
        INDArray last = got.get(out.decoder().lastHiddenState().name()).reshape(1, c.dModel());
        INDArray expected = last.mul(Math.pow(c.dModel(), -0.5)).mmul(fixture.weights().get("language_model.shared.weight").transpose());
        assertClose("tied logits", expected.reshape(1, 1, c.vocabSize()), got.get(out.logits().name()), BATCH_TOLERANCE);
    }

    /** BLIP-2's encoder input: the projected queries, then the prompt embedded with the shared table. */
    @Test
    void inputsEmbedsAreQueriesThenTokenEmbeddings() {
        Fixture fixture = Fixture.load("t5");
        assertClose("lm_inputs_embeds", fixture.ref("lm_inputs_embeds"), inputsEmbeds(fixture, fixture.ref("input_ids")), 0);
    }

    private static INDArray inputsEmbeds(Fixture fixture, INDArray inputIds) {
        return T5Graph.inputsEmbeds(fixture.weights(), fixture.ref("language_projection"), inputIds);
    }

    private static double check(String name, INDArray expected, INDArray actual) {
        return assertClose(name, expected, actual, ACTIVATION_TOLERANCE);
    }

    /** A reference {@code [n, batch, seq, width]} against n outputs. */
    private static double checkStack(String name, INDArray expected, List<INDArray> actual) {
        assertEquals(expected.size(0), actual.size(), name + ": number of hidden states");
        double worst = 0;
        for (int i = 0; i < actual.size(); i++) {
            worst = Math.max(worst, check(name + "[" + i + "]", expected.get(NDArrayIndex.point(i)).reshape(actual.get(i).shape()), actual.get(i)));
        }
        return worst;
    }

    private static INDArrayIndex[] rows(int row) {
        return new INDArrayIndex[]{NDArrayIndex.interval(row, row + 1)};
    }

    /** {@code actual [1, seq + pad, ...]} up to position seq equals {@code expected [1, seq, ...]}. */
    private static double rowClose(String what, INDArray expected, INDArray actual, int pad) {
        INDArray real = actual.get(NDArrayIndex.all(), NDArrayIndex.interval(0, actual.size(1) - pad), NDArrayIndex.all());
        return assertClose(what, expected, real, BATCH_TOLERANCE);
    }
}
