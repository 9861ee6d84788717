package dev.blip2dl4j.runtime;

import dev.blip2dl4j.testing.Margin;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.T5Config;
import dev.blip2dl4j.graphs.T5;
import dev.blip2dl4j.runtime.EagerT5;
import dev.blip2dl4j.runtime.T5Cache;
import dev.blip2dl4j.testing.Fixture;
import dev.blip2dl4j.graphs.T5Graph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

import static dev.blip2dl4j.testing.Closeness.ACTIVATION_TOLERANCE;
import static dev.blip2dl4j.testing.Closeness.EAGER_TOLERANCE;
import static dev.blip2dl4j.runtime.EagerOptTest.checkTopFive;
import static dev.blip2dl4j.runtime.EagerOptTest.longs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The eager T5 with its caches against the T5 graph and the t5 fixture: the encoder and first step equal
 * the graph, and every cached decoder step equals the graph run over the whole decoder sequence so far.
 */
class EagerT5Test {
    /** Decoder tokens to continue with after the start token (repeats included). */
    private static final long[] CONTINUATION = {26839, 4081, 4081, 9747, 25506};

    private static Fixture fixture(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("t5") : Fixture.load("t5");
    }

    private static T5Config config(Fixture fixture) {
        return (T5Config) fixture.config().text();
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void prefillMatchesTheGraphAndTheReference(String source) {
        Fixture fixture = fixture(source);
        EagerT5 lm = new EagerT5(config(fixture), fixture.weights());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
        T5Cache cache = lm.newCache(4);
        INDArray logits = lm.prefill(cache, embeds, mask);

        T5Graph.Result graph = T5Graph.build(config(fixture), fixture.weights()).run(embeds, mask, startIds(1));
        Margin vsGraph = new Margin("T5 " + source + ": encoder output and first step vs the graph");
        vsGraph.check("encoder output", graph.encoderLast(), cache.encoderOutput(), EAGER_TOLERANCE);
        vsGraph.check("first step logits", graph.logits().reshape(logits.shape()), logits, EAGER_TOLERANCE);
        vsGraph.print();
        Margin vsReference = new Margin("T5 " + source + ": encoder output and first step vs the reference");
        vsReference.check("encoder output", fixture.ref("lm_encoder_last_hidden_state"), cache.encoderOutput(),
                ACTIVATION_TOLERANCE);
        vsReference.check("first step logits", fixture.ref("logits").reshape(logits.shape()), logits, ACTIVATION_TOLERANCE);
        vsReference.print();
    }

    /**
     * The loss case by teacher forcing: the labels shifted right, one step at a time, give the
     * reference's loss logits, and each step equals the graph over the decoder sequence so far.
     */
    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void teacherForcingThroughStepsGivesTheLossLogits(String source) {
        Fixture fixture = fixture(source);
        T5Config config = config(fixture);
        EagerT5 lm = new EagerT5(config, fixture.weights());
        T5Graph graph = T5Graph.build(config, fixture.weights());
        INDArray embeds = T5Graph.inputsEmbeds(fixture.weights(), fixture.ref("language_projection"), fixture.ref("loss_input_ids"));
        INDArray mask = fixture.lmMask(fixture.ref("loss_attention_mask"));
        INDArray decoderIds = T5.shiftRight(fixture.ref("loss_labels"), config);
        INDArray expected = fixture.ref("loss_logits");

        T5Cache cache = lm.newCache(1);
        Margin vsGraph = new Margin("T5 " + source + ": teacher-forced steps vs the graph over the sequence so far");
        Margin vsReference = new Margin("T5 " + source + ": teacher-forced steps vs the reference loss_logits");
        for (int s = 0; s < decoderIds.size(1); s++) {
            INDArray logits = s == 0 ? lm.prefill(cache, embeds, mask)
                    : lm.step(cache, decoderIds.get(NDArrayIndex.all(), NDArrayIndex.point(s)));
            INDArray soFar = decoderIds.get(NDArrayIndex.all(), NDArrayIndex.interval(0, s + 1));
            vsGraph.check("step " + s, lastPosition(graph.run(embeds, mask, soFar).logits()), logits, EAGER_TOLERANCE);
            vsReference.check("step " + s, expected.get(NDArrayIndex.all(), NDArrayIndex.point(s), NDArrayIndex.all()), logits,
                    ACTIVATION_TOLERANCE);
        }
        vsGraph.print();
        vsReference.print();
    }

    /**
     * Two different encoder inputs in one batch, the second shorter and right-padded with arbitrary
     * embeddings: through the first step and more, each row's logits equal the row run alone.
     */
    @Test
    void paddedBatchRowsEqualRowsAlone() {
        Fixture fixture = Fixture.load("t5");
        EagerT5 lm = new EagerT5(config(fixture), fixture.weights());
        Rows rows = Rows.of(fixture);

        T5Cache batchCache = lm.newCache(2);
        T5Cache[] alone = {lm.newCache(2), lm.newCache(2)};
        Margin margin = new Margin("T5: right-padded batch of 2 vs each row alone, first step and 4 more");
        INDArray batchLogits = lm.prefill(batchCache, rows.batchEmbeds(), rows.batchMask());
        for (int r = 0; r < 2; r++) {
            margin.check("first step row " + r, lm.prefill(alone[r], rows.embeds[r], rows.masks[r]), batchLogits.getRow(r, true),
                    EAGER_TOLERANCE);
        }
        for (int s = 0; s < 4; s++) {
            long[] tokens = {CONTINUATION[s], CONTINUATION[CONTINUATION.length - 1 - s]};
            batchLogits = lm.step(batchCache, Nd4j.createFromArray(tokens));
            for (int r = 0; r < 2; r++) {
                margin.check("step " + s + " row " + r, lm.step(alone[r], Nd4j.createFromArray(tokens[r])),
                        batchLogits.getRow(r, true), EAGER_TOLERANCE);
            }
        }
        margin.print();
    }

    @Test
    void selectedCacheRowsContinueTheirOwnSequences() {
        Fixture fixture = Fixture.load("t5");
        EagerT5 lm = new EagerT5(config(fixture), fixture.weights());
        Rows rows = Rows.of(fixture);
        T5Cache cache = lm.newCache(2);
        lm.prefill(cache, rows.batchEmbeds(), rows.batchMask());
        lm.step(cache, Nd4j.createFromArray(CONTINUATION[0], CONTINUATION[1]));

        int[] chosen = {1, 0, 1};
        cache.select(chosen);
        assertEquals(3, cache.batch());
        long[] tokens = {CONTINUATION[2], CONTINUATION[3], CONTINUATION[4]};
        INDArray logits = lm.step(cache, Nd4j.createFromArray(tokens));

        Margin margin = new Margin("T5: selected rows (1, 0, 1) after a step, one more step, vs each row alone");
        for (int i = 0; i < chosen.length; i++) {
            T5Cache alone = lm.newCache(2);
            lm.prefill(alone, rows.embeds[chosen[i]], rows.masks[chosen[i]]);
            lm.step(alone, Nd4j.createFromArray(CONTINUATION[chosen[i]]));
            margin.check("row " + i, lm.step(alone, Nd4j.createFromArray(tokens[i])), logits.getRow(i, true), EAGER_TOLERANCE);
        }
        margin.print();
    }

    /**
     * A plain greedy loop reproduces transformers' generate(): decoder_start_token_id, then 10 new
     * tokens, and at every step the same top-5 ids and logits.
     */
    @Test
    void greedyStepsReproduceTheReferenceGeneration() {
        Fixture fixture = Fixture.load("t5");
        T5Config config = config(fixture);
        EagerT5 lm = new EagerT5(config, fixture.weights());
        JsonNode greedy = fixture.reference().json().path("generation").path("greedy");
        int newTokens = greedy.path("kwargs").path("max_new_tokens").asInt();

        T5Cache cache = lm.newCache(newTokens);
        INDArray logits = lm.prefill(cache, fixture.ref("lm_inputs_embeds"), fixture.lmMask(fixture.ref("attention_mask")));
        List<Long> ids = new ArrayList<>(List.of((long) config.decoderStartTokenId()));
        Margin margin = new Margin("T5: greedy steps' top-5 logits vs the reference");
        for (int step = 0; step < newTokens; step++) {
            checkTopFive(greedy, step, logits, margin);
            long next = Nd4j.argMax(logits, 1).getLong(0);
            ids.add(next);
            if (step + 1 < newTokens) {
                logits = lm.step(cache, Nd4j.createFromArray(next));
            }
        }
        margin.print();
        assertEquals(longs(greedy.path("sequences")), ids, "greedy ids");
        assertArrayEquals(fixture.ref("generate_greedy").toLongVector(), ids.stream().mapToLong(Long::longValue).toArray());
    }

    /** A tied head (T5 v1.0 style) reads the shared table with the decoder output scaled by d_model^-0.5. */
    @Test
    void tiedHeadMatchesTheGraph() {
        Fixture fixture = Fixture.load("t5");
        T5Config c = config(fixture);
        T5Config tied = new T5Config(c.vocabSize(), c.dModel(), c.dKv(), c.dFf(), c.numLayers(), c.numDecoderLayers(),
                c.numHeads(), c.relativeAttentionNumBuckets(), c.relativeAttentionMaxDistance(), c.layerNormEpsilon(),
                c.feedForwardProj(), c.denseActFn(), c.isGatedAct(), true, c.decoderStartTokenId(), c.bosTokenId(),
                c.eosTokenId(), c.padTokenId());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
        INDArray decoderIds = Nd4j.createFromArray(new long[][]{{0, CONTINUATION[0]}});
        INDArray graph = T5Graph.build(tied, fixture.weights()).run(embeds, mask, decoderIds).logits();

        EagerT5 lm = new EagerT5(tied, fixture.weights());
        T5Cache cache = lm.newCache(2);
        Margin margin = new Margin("T5 with a tied head vs the graph");
        margin.check("first step", graph.get(NDArrayIndex.all(), NDArrayIndex.point(0), NDArrayIndex.all()),
                lm.prefill(cache, embeds, mask), EAGER_TOLERANCE);
        margin.check("second step", lastPosition(graph), lm.step(cache, Nd4j.createFromArray(CONTINUATION[0])), EAGER_TOLERANCE);
        margin.print();
    }

    private static INDArray startIds(int batch) {
        return Nd4j.zeros(DataType.INT64, batch, 1);
    }

    private static INDArray lastPosition(INDArray logits) {
        return logits.get(NDArrayIndex.all(), NDArrayIndex.point(logits.size(1) - 1), NDArrayIndex.all());
    }

    /**
     * The fixture's encoder input, and the same cut 4 positions short and right-padded back to full
     * length with random embeddings and a zero mask; each alone (the cut one unpadded) and as one batch.
     */
    private record Rows(INDArray[] embeds, INDArray[] masks, INDArray paddedEmbeds, INDArray paddedMask) {
        static final int PAD = 4;

        static Rows of(Fixture fixture) {
            INDArray embeds = fixture.ref("lm_inputs_embeds");
            INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
            long seq = embeds.size(1);
            INDArray shortEmbeds = embeds.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - PAD), NDArrayIndex.all()).dup();
            INDArray shortMask = mask.get(NDArrayIndex.all(), NDArrayIndex.interval(0, seq - PAD)).dup();
            Nd4j.getRandom().setSeed(7);
            INDArray padded = Nd4j.concat(1, shortEmbeds, Nd4j.randn(DataType.FLOAT, 1, PAD, embeds.size(2)));
            INDArray paddedMask = Nd4j.concat(1, shortMask, Nd4j.zeros(DataType.FLOAT, 1, PAD));
            return new Rows(new INDArray[]{embeds, shortEmbeds}, new INDArray[]{mask, shortMask}, padded, paddedMask);
        }

        INDArray batchEmbeds() {
            return Nd4j.concat(0, embeds[0], paddedEmbeds);
        }

        INDArray batchMask() {
            return Nd4j.concat(0, masks[0], paddedMask);
        }
    }
}
