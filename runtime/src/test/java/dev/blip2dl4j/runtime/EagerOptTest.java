package dev.blip2dl4j.runtime;

import dev.blip2dl4j.testing.Margin;
import com.fasterxml.jackson.databind.JsonNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.runtime.EagerOpt;
import dev.blip2dl4j.runtime.EagerOpt.Logits;
import dev.blip2dl4j.runtime.KvCache;
import dev.blip2dl4j.testing.Fixture;
import dev.blip2dl4j.graphs.OptGraph;
import dev.blip2dl4j.graphs.RandomWeights;
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
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The eager OPT with its key/value cache against the OPT graph and the opt fixture: the prefill equals
 * the graph, and every cached step equals running the whole sequence so far at once, which is what
 * makes the cache correct.
 */
class EagerOptTest {
    private static final String EMBED_TOKENS = "language_model.model.decoder.embed_tokens.weight";
    /** Tokens to continue the fixture's prompt with: its greedy continuation, repeats included. */
    private static final long[] CONTINUATION = {29148, 28067, 28067, 5416, 16527, 48888, 36969};

    private static Fixture fixture(String source) {
        return source.equals("lavis") ? Fixture.loadLavis("opt") : Fixture.load("opt");
    }

    private static OptConfig config(Fixture fixture) {
        return (OptConfig) fixture.config().text();
    }

    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void prefillMatchesTheGraphAndTheReference(String source) {
        Fixture fixture = fixture(source);
        EagerOpt lm = new EagerOpt(config(fixture), fixture.weights());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));
        long seq = embeds.size(1);

        INDArray all = lm.prefill(lm.newCache((int) seq), embeds, mask, Logits.ALL);
        INDArray last = lm.prefill(lm.newCache((int) seq), embeds, mask, Logits.LAST);
        Margin graph = new Margin("OPT " + source + ": prefill logits vs the graph");
        graph.check("all positions", OptGraph.build(config(fixture), fixture.weights()).logits(embeds, mask), all, EAGER_TOLERANCE);
        graph.check("last position", all.get(NDArrayIndex.all(), NDArrayIndex.point(seq - 1), NDArrayIndex.all()), last,
                EAGER_TOLERANCE);
        graph.print();
        Margin reference = new Margin("OPT " + source + ": prefill logits vs the reference");
        // the reference holds the text positions only: logits[:, num_query_tokens:, :]
        reference.check("text positions", fixture.ref("logits"), all.get(NDArrayIndex.all(),
                NDArrayIndex.interval(fixture.config().numQueryTokens(), seq), NDArrayIndex.all()), ACTIVATION_TOLERANCE);
        reference.print();
    }

    /** A cache with room for 2 positions: the prompt and the steps make it grow, copying, several times. */
    @ParameterizedTest
    @ValueSource(strings = {"safetensors", "lavis"})
    void everyStepEqualsTheWholeSequenceRunAtOnce(String source) {
        Fixture fixture = fixture(source);
        OptConfig config = config(fixture);
        EagerOpt lm = new EagerOpt(config, fixture.weights());
        OptGraph graph = OptGraph.build(config, fixture.weights());
        INDArray embeds = fixture.ref("lm_inputs_embeds");
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));

        KvCache cache = lm.newCache(2);
        lm.prefill(cache, embeds, mask, Logits.LAST);
        Margin margin = new Margin("OPT " + source + ": " + CONTINUATION.length + " cached steps vs the whole sequence");
        for (long token : CONTINUATION) {
            embeds = Nd4j.concat(1, embeds, tokenEmbedding(fixture.weights(), token));
            mask = appendOnes(mask);
            INDArray stepped = lm.step(cache, Nd4j.createFromArray(token), mask);
            INDArray graphLast = lastPosition(graph.logits(embeds, mask));
            margin.check("graph at " + embeds.size(1), graphLast, stepped, EAGER_TOLERANCE);
            margin.check("eager prefill at " + embeds.size(1), lm.prefill(lm.newCache(1), embeds, mask, Logits.LAST),
                    stepped, EAGER_TOLERANCE);
        }
        assertEquals(embeds.size(1), cache.length());
        margin.print();
    }

    /**
     * Two different rows in one batch, the second shorter and left-padded with arbitrary embeddings, as
     * generation pads: through the prefill and the steps, each row's logits equal the row run alone.
     */
    @Test
    void leftPaddedBatchRowsEqualRowsAlone() {
        Fixture fixture = Fixture.load("opt");
        EagerOpt lm = new EagerOpt(config(fixture), fixture.weights());
        Rows rows = Rows.of(fixture);

        KvCache batchCache = lm.newCache(4);
        KvCache[] alone = {lm.newCache(4), lm.newCache(4)};
        Margin margin = new Margin("OPT: left-padded batch of 2 vs each row alone, prefill and 4 steps");
        INDArray batchLogits = lm.prefill(batchCache, rows.batchEmbeds(), rows.batchMask(), Logits.LAST);
        for (int r = 0; r < 2; r++) {
            margin.check("prefill row " + r, lm.prefill(alone[r], rows.embeds[r], rows.masks[r], Logits.LAST),
                    batchLogits.getRow(r, true), EAGER_TOLERANCE);
        }
        INDArray batchMask = rows.batchMask();
        for (int s = 0; s < 4; s++) {
            long[] tokens = {CONTINUATION[s], CONTINUATION[CONTINUATION.length - 1 - s]};
            batchMask = appendOnes(batchMask);
            batchLogits = lm.step(batchCache, Nd4j.createFromArray(tokens), batchMask);
            for (int r = 0; r < 2; r++) {
                rows.masks[r] = appendOnes(rows.masks[r]);
                margin.check("step " + s + " row " + r, lm.step(alone[r], Nd4j.createFromArray(tokens[r]), rows.masks[r]),
                        batchLogits.getRow(r, true), EAGER_TOLERANCE);
            }
        }
        margin.print();
    }

    /** Beam search's reordering: rows duplicated and swapped, then a step per row, equal the rows run alone. */
    @Test
    void selectedCacheRowsContinueTheirOwnSequences() {
        Fixture fixture = Fixture.load("opt");
        EagerOpt lm = new EagerOpt(config(fixture), fixture.weights());
        Rows rows = Rows.of(fixture);
        KvCache cache = lm.newCache(4);
        lm.prefill(cache, rows.batchEmbeds(), rows.batchMask(), Logits.LAST);

        int[] chosen = {1, 1, 0};
        cache.select(chosen);
        assertEquals(3, cache.batch());
        long[] tokens = {CONTINUATION[0], CONTINUATION[3], CONTINUATION[4]};
        INDArray mask = appendOnes(Nd4j.concat(0, rows.paddedMask, rows.paddedMask, rows.masks[0]));
        INDArray logits = lm.step(cache, Nd4j.createFromArray(tokens), mask);

        Margin margin = new Margin("OPT: selected rows (1, 1, 0), one step, vs each row alone");
        for (int i = 0; i < chosen.length; i++) {
            KvCache alone = lm.newCache(4);
            lm.prefill(alone, rows.embeds[chosen[i]], rows.masks[chosen[i]], Logits.LAST);
            margin.check("row " + i, lm.step(alone, Nd4j.createFromArray(tokens[i]), appendOnes(rows.masks[chosen[i]])),
                    logits.getRow(i, true), EAGER_TOLERANCE);
        }
        margin.print();
    }

    /**
     * A plain greedy loop from the fixture's prompt reproduces transformers' generate(): the same ids
     * (bos, then 10 new tokens) and, at every step, the same top-5 ids and logits.
     */
    @Test
    void greedyStepsReproduceTheReferenceGeneration() {
        Fixture fixture = Fixture.load("opt");
        OptConfig config = config(fixture);
        EagerOpt lm = new EagerOpt(config, fixture.weights());
        JsonNode greedy = fixture.reference().json().path("generation").path("greedy");
        int newTokens = greedy.path("kwargs").path("max_new_tokens").asInt();
        INDArray mask = fixture.lmMask(fixture.ref("attention_mask"));

        KvCache cache = lm.newCache((int) mask.size(1) + newTokens);
        INDArray logits = lm.prefill(cache, fixture.ref("lm_inputs_embeds"), mask, Logits.LAST);
        List<Long> ids = new ArrayList<>(List.of((long) config.bosTokenId()));
        Margin margin = new Margin("OPT: greedy steps' top-5 logits vs the reference");
        for (int step = 0; step < newTokens; step++) {
            checkTopFive(greedy, step, logits, margin);
            long next = Nd4j.argMax(logits, 1).getLong(0);
            ids.add(next);
            if (step + 1 < newTokens) {
                mask = appendOnes(mask);
                logits = lm.step(cache, Nd4j.createFromArray(next), mask);
            }
        }
        margin.print();
        assertEquals(longs(greedy.path("sequences")), ids, "greedy ids");
        assertArrayEquals(fixture.ref("generate_greedy").toLongVector(), ids.stream().mapToLong(Long::longValue).toArray());
    }

    /**
     * opt-350m's layout (post-LN, embeddings narrower than the decoder with project_in/out) and a GELU,
     * on random weights: prefill and steps against the graph.
     */
    @Test
    void postLayerNormAndEmbeddingProjectionsMatchTheGraph() {
        Blip2Config blip2 = Blip2Config.parse("""
                {"model_type": "blip-2", "num_query_tokens": 2,
                 "text_config": {"model_type": "opt", "vocab_size": 40, "hidden_size": 12, "word_embed_proj_dim": 8,
                                 "num_hidden_layers": 2, "num_attention_heads": 3, "ffn_dim": 20,
                                 "max_position_embeddings": 32, "do_layer_norm_before": false,
                                 "activation_function": "gelu"},
                 "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "image_size": 28, "patch_size": 14},
                 "qformer_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                                    "num_attention_heads": 2, "encoder_hidden_size": 8}}
                """, null);
        OptConfig config = (OptConfig) blip2.text();
        Weights weights = new RandomWeights(ParameterLayout.of(blip2), 3, 0.5);
        EagerOpt lm = new EagerOpt(config, weights);
        OptGraph graph = OptGraph.build(config, weights);
        Nd4j.getRandom().setSeed(5);
        INDArray embeds = Nd4j.randn(DataType.FLOAT, 2, 5, 8);
        INDArray mask = Nd4j.createFromArray(new float[][]{{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}});

        Margin margin = new Margin("OPT post-LN, project_in/out, gelu (random weights) vs the graph");
        KvCache cache = lm.newCache(1);
        INDArray expected = graph.logits(embeds, mask);
        assertTrue(expected.amaxNumber().doubleValue() > 1, "logits of order 1, so that 1e-5 means something");
        margin.check("prefill", expected, lm.prefill(cache, embeds, mask, Logits.ALL), EAGER_TOLERANCE);
        for (long[] tokens : new long[][]{{3, 7}, {39, 3}}) {
            INDArray tokenEmbeds = Nd4j.concat(0, tokenEmbedding(weights, tokens[0]), tokenEmbedding(weights, tokens[1]));
            embeds = Nd4j.concat(1, embeds, tokenEmbeds);
            mask = appendOnes(mask);
            margin.check("step at " + embeds.size(1), lastPosition(graph.logits(embeds, mask)),
                    lm.step(cache, Nd4j.createFromArray(tokens), mask), EAGER_TOLERANCE);
        }
        margin.print();
    }

    /** Compares a step's logits {@code [1, vocab]} with reference.json's top-5 ids and scores at that step. */
    static void checkTopFive(JsonNode greedy, int step, INDArray logits, Margin margin) {
        long[] expectedIds = longs(greedy.path("step_top5_ids").get(step)).stream().mapToLong(Long::longValue).toArray();
        float[] expectedScores = new float[5];
        for (int i = 0; i < 5; i++) {
            expectedScores[i] = (float) greedy.path("step_top5_scores").get(step).get(i).asDouble();
        }
        float[] row = logits.toFloatVector();
        long[] topIds = new long[5];
        float[] topScores = new float[5];
        boolean[] taken = new boolean[row.length];
        for (int i = 0; i < 5; i++) {
            int best = -1;
            for (int v = 0; v < row.length; v++) {
                if (!taken[v] && (best < 0 || row[v] > row[best])) {
                    best = v;
                }
            }
            taken[best] = true;
            topIds[i] = best;
            topScores[i] = row[best];
        }
        assertArrayEquals(expectedIds, topIds, "top-5 ids at step " + step);
        margin.check("top-5 scores at step " + step, Nd4j.createFromArray(expectedScores), Nd4j.createFromArray(topScores),
                ACTIVATION_TOLERANCE);
    }

    static List<Long> longs(JsonNode array) {
        List<Long> values = new ArrayList<>();
        array.forEach(v -> values.add(v.asLong()));
        return values;
    }

    /** {@code mask [batch, seq]} with a column of ones appended: the mask after one more step. */
    static INDArray appendOnes(INDArray mask) {
        return Nd4j.concat(1, mask.castTo(DataType.FLOAT), Nd4j.ones(DataType.FLOAT, mask.size(0), 1));
    }

    private static INDArray lastPosition(INDArray logits) {
        return logits.get(NDArrayIndex.all(), NDArrayIndex.point(logits.size(1) - 1), NDArrayIndex.all());
    }

    private static INDArray tokenEmbedding(Weights weights, long token) {
        return weights.get(EMBED_TOKENS).getRow(token).reshape(1, 1, -1).dup();
    }

    /**
     * The fixture's prompt, and the same prompt cut 4 positions short and left-padded back to full length
     * with random embeddings and a zero mask; each row alone (the cut one unpadded) and as one batch.
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
            INDArray padded = Nd4j.concat(1, Nd4j.randn(DataType.FLOAT, 1, PAD, embeds.size(2)), shortEmbeds);
            INDArray paddedMask = Nd4j.concat(1, Nd4j.zeros(DataType.FLOAT, 1, PAD), shortMask);
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
