package dev.blip2dl4j.config;

import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ParameterLayoutTest {

    @ParameterizedTest
    @ValueSource(strings = {"blip2-tiny-opt", "blip2-tiny-t5"})
    void followsStateDictOrderWithAliasesInTheirPlaces(String fixture) throws IOException {
        ParameterLayout layout = ParameterLayout.of(Blip2Config.read(Fixtures.root().resolve(fixture).resolve("config.json")));
        List<String> order = resourceLines("state-dict-order-" + fixture + ".txt");

        List<String> parameters = new ArrayList<>(order);
        parameters.removeAll(layout.tiedAliases().keySet());
        assertEquals(parameters, layout.parameters().stream().map(ParamSpec::name).toList());
        List<String> aliases = new ArrayList<>(order);
        aliases.retainAll(layout.tiedAliases().keySet());
        assertEquals(aliases, List.copyOf(layout.tiedAliases().keySet()));
    }

    @Test
    void tiedAliasesOfEachLanguageModel() throws IOException {
        ParameterLayout opt = layoutOf("blip2-tiny-opt");
        assertEquals(Map.of("language_model.lm_head.weight", "language_model.model.decoder.embed_tokens.weight"),
                opt.tiedAliases());

        ParameterLayout t5 = layoutOf("blip2-tiny-t5");
        assertEquals(Map.of(
                "language_model.encoder.embed_tokens.weight", "language_model.shared.weight",
                "language_model.decoder.embed_tokens.weight", "language_model.shared.weight"), t5.tiedAliases());
        assertTrue(t5.contains("language_model.lm_head.weight"), "Flan-T5's head is untied");

        assertEquals(Map.of(), layoutOf("blip2-tiny-itm").tiedAliases());
        for (ParameterLayout layout : List.of(opt, t5)) {
            for (String target : layout.tiedAliases().values()) {
                assertNotNull(layout.get(target), target);
            }
        }
    }

    @Test
    void fullSizeBlip2Opt27bOf2023() throws IOException {
        Blip2Config config = Blip2Config.parse(resource("blip2-opt-2.7b-2023-config.json"), null);
        ParameterLayout layout = ParameterLayout.of(config);

        assertEquals(1247, layout.parameters().size());
        assertEquals(3_744_679_936L, layout.totalValues());
        assertEquals(Map.of("language_model.lm_head.weight", "language_model.model.decoder.embed_tokens.weight"),
                layout.tiedAliases());
        assertArrayEquals(new long[] {1, 257, 1408}, layout.get("vision_model.embeddings.position_embedding").shape());
        assertArrayEquals(new long[] {4224, 1408}, layout.get("vision_model.encoder.layers.38.self_attn.qkv.weight").shape());
        assertArrayEquals(new long[] {768, 1408},
                layout.get("qformer.encoder.layer.10.crossattention.attention.key.weight").shape());
        assertFalse(layout.contains("qformer.encoder.layer.11.crossattention.attention.key.weight"));
        assertArrayEquals(new long[] {2560, 768}, layout.get("language_projection.weight").shape());
        assertArrayEquals(new long[] {50272, 2560},
                layout.get("language_model.model.decoder.embed_tokens.weight").shape());
        assertArrayEquals(new long[] {2050, 2560},
                layout.get("language_model.model.decoder.embed_positions.weight").shape());
    }

    @Test
    void optVariantsChangeTheList() {
        String json = """
                {"text_config": {"model_type": "opt", "hidden_size": 16, "num_attention_heads": 2, "ffn_dim": 8,
                 "num_hidden_layers": 1, "word_embed_proj_dim": 8, "enable_bias": false,
                 "layer_norm_elementwise_affine": false, "tie_word_embeddings": false, "vocab_size": 10,
                 "max_position_embeddings": 5}}""";
        ParameterLayout layout = ParameterLayout.of(Blip2Config.parse(json, null));
        List<String> lm = layout.parameters().stream().filter(p -> p.name().startsWith("language_model."))
                .map(ParamSpec::toString).toList();
        assertEquals(List.of(
                "language_model.model.decoder.embed_tokens.weight [10, 8]",
                "language_model.model.decoder.embed_positions.weight [7, 16]",
                "language_model.model.decoder.project_out.weight [8, 16]",
                "language_model.model.decoder.project_in.weight [16, 8]",
                "language_model.model.decoder.layers.0.self_attn.k_proj.weight [16, 16]",
                "language_model.model.decoder.layers.0.self_attn.v_proj.weight [16, 16]",
                "language_model.model.decoder.layers.0.self_attn.q_proj.weight [16, 16]",
                "language_model.model.decoder.layers.0.self_attn.out_proj.weight [16, 16]",
                "language_model.model.decoder.layers.0.fc1.weight [8, 16]",
                "language_model.model.decoder.layers.0.fc2.weight [16, 8]",
                "language_model.lm_head.weight [10, 8]"), lm);
        assertEquals(Map.of(), layout.tiedAliases());

        ParameterLayout postLn = ParameterLayout.of(Blip2Config.parse(
                "{\"text_config\": {\"do_layer_norm_before\": false}}", null));
        assertFalse(postLn.contains("language_model.model.decoder.final_layer_norm.weight"));
        assertTrue(postLn.contains("language_model.model.decoder.layers.0.final_layer_norm.weight"));
    }

    @Test
    void ungatedT5AndVisionWithoutQkvBias() {
        String json = """
                {"vision_config": {"qkv_bias": false},
                 "text_config": {"model_type": "t5", "feed_forward_proj": "relu", "tie_word_embeddings": true}}""";
        ParameterLayout layout = ParameterLayout.of(Blip2Config.parse(json, null));
        assertFalse(layout.contains("vision_model.encoder.layers.0.self_attn.qkv.bias"));
        assertTrue(layout.contains("language_model.encoder.block.0.layer.1.DenseReluDense.wi.weight"));
        assertFalse(layout.contains("language_model.encoder.block.0.layer.1.DenseReluDense.wi_0.weight"));
        assertEquals("language_model.shared.weight", layout.tiedAliases().get("language_model.lm_head.weight"));
        assertFalse(layout.contains("language_model.lm_head.weight"));
    }

    @Test
    void knownLavisTypesHaveTheShapesOfTheirCheckpoints() {
        Map<String, Long> counts = new TreeMap<>();
        for (String type : Blip2Config.KNOWN_LAVIS_TYPES) {
            counts.put(type, (long) ParameterLayout.of(Blip2Config.knownLavisType(type)).parameters().size());
        }
        // the same ViT-g and Q-Former for all; the language model and the head make the difference
        assertEquals(1247L, counts.get("pretrain_opt2.7b"));
        assertEquals(1247L, counts.get("caption_coco_opt6.7b"));

        ParameterLayout coco = ParameterLayout.of(Blip2Config.knownLavisType("caption_coco_opt2.7b"));
        assertArrayEquals(new long[] {1, 677, 1408}, coco.get("vision_model.embeddings.position_embedding").shape());
        assertEquals(3_745_271_296L, coco.totalValues(), "the 2023 blip2-opt-2.7b plus 420 positions");

        ParameterLayout xxl = ParameterLayout.of(Blip2Config.knownLavisType("pretrain_flant5xxl"));
        assertArrayEquals(new long[] {4096, 768}, xxl.get("language_projection.weight").shape());
        assertArrayEquals(new long[] {32, 64},
                xxl.get("language_model.encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight").shape());

        ParameterLayout itm = ParameterLayout.of(Blip2Config.knownLavisType("coco"));
        assertArrayEquals(new long[] {30523, 768}, itm.get("embeddings.word_embeddings.weight").shape());
        assertArrayEquals(new long[] {3072, 768}, itm.get("qformer.encoder.layer.11.intermediate.dense.weight").shape());
        assertArrayEquals(new long[] {256, 768}, itm.get("text_projection.weight").shape());
        assertArrayEquals(new long[] {1, 677, 1408}, itm.get("vision_model.embeddings.position_embedding").shape());
    }

    private static ParameterLayout layoutOf(String fixture) throws IOException {
        return ParameterLayout.of(Blip2Config.read(Fixtures.root().resolve(fixture).resolve("config.json")));
    }

    /** A text resource beside these tests. */
    private static String resource(String name) throws IOException {
        try (InputStream in = ParameterLayoutTest.class.getResourceAsStream(name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static List<String> resourceLines(String name) throws IOException {
        return resource(name).lines().filter(line -> !line.isBlank() && !line.startsWith("#")).toList();
    }

    @Test
    void productsAreTheLinearWeightsAndUntiedOutputProjections() {
        ParameterLayout t5 = ParameterLayout.of(Blip2Config.knownLavisType("pretrain_flant5xl"));
        assertTrue(t5.get("language_model.lm_head.weight").product(), "flan-t5's own output projection");
        assertTrue(t5.get("language_model.encoder.block.0.layer.1.DenseReluDense.wi_0.weight").product());
        assertFalse(t5.get("language_model.shared.weight").product(), "a table");
        assertFalse(t5.get("language_model.encoder.final_layer_norm.weight").product());
        assertTrue(t5.get("vision_model.encoder.layers.0.self_attn.qkv.weight").product());
        assertFalse(t5.get("vision_model.encoder.layers.0.self_attn.qkv.bias").product());
        assertFalse(t5.get("vision_model.embeddings.patch_embedding.weight").product(), "a convolution");
        assertTrue(t5.get("qformer.encoder.layer.0.attention.attention.query.weight").product());
        ParameterLayout opt = ParameterLayout.of(Blip2Config.knownLavisType("pretrain_opt2.7b"));
        assertFalse(opt.contains("language_model.lm_head.weight"), "tied to the token table");
        assertTrue(opt.get("language_model.model.decoder.layers.0.fc1.weight").product());
        assertFalse(opt.get("language_model.model.decoder.embed_positions.weight").product());
    }
}
