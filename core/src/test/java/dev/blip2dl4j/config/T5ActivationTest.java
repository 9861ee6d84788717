package dev.blip2dl4j.config;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** transformers' T5Config: feed_forward_proj sets the activation, explicit keys in the file override it. */
class T5ActivationTest {

    private static T5Config t5(String keys) {
        return (T5Config) TextConfig.parse("{\"model_type\": \"t5\"" + keys + "}", null);
    }

    @Test
    void gatedGeluAloneMeansTheTanhApproximation() {
        T5Config c = t5(", \"feed_forward_proj\": \"gated-gelu\"");
        assertTrue(c.isGatedAct());
        assertEquals("gelu_new", c.denseActFn());
    }

    @Test
    void explicitDenseActFnWins() {
        // what BLIP-2's Flan-T5 configs say: exact erf GELU
        T5Config c = t5(", \"feed_forward_proj\": \"gated-gelu\", \"dense_act_fn\": \"gelu\"");
        assertTrue(c.isGatedAct());
        assertEquals("gelu", c.denseActFn());
    }

    @Test
    void explicitIsGatedActWins() {
        // an early google/flan-t5-xxl config.json: "feed_forward_proj": "gelu" with "is_gated_act": true
        T5Config c = t5(", \"feed_forward_proj\": \"gelu\", \"dense_act_fn\": \"gelu\", \"is_gated_act\": true");
        assertTrue(c.isGatedAct());
        assertEquals("gelu", c.denseActFn());
    }

    @Test
    void otherGatedActivationsAreTakenAsWritten() {
        T5Config c = t5(", \"feed_forward_proj\": \"gated-silu\"");
        assertTrue(c.isGatedAct());
        assertEquals("silu", c.denseActFn());
    }

    @Test
    void defaultIsOriginalT5Relu() {
        T5Config c = t5("");
        assertFalse(c.isGatedAct());
        assertEquals("relu", c.denseActFn());
        assertEquals("relu", c.feedForwardProj());
    }

    @Test
    void malformedFeedForwardProjIsRejected() {
        for (String bad : new String[] {"gated-gelu-new", "fast-gelu"}) {
            BadInputException e = assertThrows(BadInputException.class,
                    () -> t5(", \"feed_forward_proj\": \"" + bad + "\""));
            assertTrue(e.getMessage().contains("feed_forward_proj"), e.getMessage());
        }
    }

    @Test
    void defaultsOfT5Config() {
        T5Config c = t5(", \"num_layers\": 3");
        assertEquals(32128, c.vocabSize());
        assertEquals(512, c.dModel());
        assertEquals(64, c.dKv());
        assertEquals(2048, c.dFf());
        assertEquals(3, c.numDecoderLayers(), "num_decoder_layers defaults to num_layers");
        assertEquals(8, c.numHeads());
        assertEquals(32, c.relativeAttentionNumBuckets());
        assertEquals(128, c.relativeAttentionMaxDistance());
        assertEquals(1e-6, c.layerNormEpsilon());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(null, c.decoderStartTokenId());
        assertEquals(1, c.eosTokenId());
        assertEquals(0, c.padTokenId());
        assertEquals(512, c.innerDim());
    }
}
