package dev.blip2dl4j.config;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class Blip2ConfigTest {

    @Test
    void readsTheOptFixture() throws IOException {
        Path file = Fixtures.model("opt").resolve("config.json");
        Blip2Config c = Blip2Config.read(file);

        assertEquals(ModelKind.CONDITIONAL_GENERATION, c.kind());
        assertEquals(new VisionConfig(32, 88, 2, 4, 32, 8, "gelu", 1e-6, true), c.vision());
        assertEquals(new QFormerConfig(30522, 32, 2, 4, 64, "gelu", 64, 1e-12, 0, 2, 32, false), c.qformer());
        assertEquals(new OptConfig(50272, 12, 2, 48, 3, 128, 12, true, false, true, true, "relu", true, 2, 50118, 1),
                c.text());
        assertEquals(8, c.numQueryTokens());
        assertEquals(256, c.imageTextHiddenSize());
        assertNull(c.imageTokenIndex());
        assertTrue(c.useDecoderOnlyLanguageModel());
        assertTrue(c.tieWordEmbeddings());
        assertNull(c.lavis());
        assertEquals(Files.readString(file), c.json(), "the text is kept as read, for the artifact");
    }

    @Test
    void readsTheT5Fixture() throws IOException {
        Blip2Config c = Blip2Config.read(Fixtures.model("t5").resolve("config.json"));
        T5Config t5 = assertInstanceOf(T5Config.class, c.text());
        assertEquals(new T5Config(32128, 12, 8, 32, 2, 2, 4, 32, 128, 1e-6, "gated-gelu", "gelu", true, false,
                0, 1, 1, 0), t5);
        assertEquals(32, t5.innerDim());
        assertFalse(c.useDecoderOnlyLanguageModel());
        assertFalse(c.tieWordEmbeddings());
    }

    @Test
    void readsTheRetrievalFixture() throws IOException {
        Blip2Config c = Blip2Config.read(Fixtures.model("itm").resolve("config.json"));
        assertEquals(ModelKind.IMAGE_TEXT_RETRIEVAL, c.kind());
        assertEquals(16, c.imageTextHiddenSize());
        assertEquals(30523, c.qformer().vocabSize());
        assertTrue(c.qformer().useQformerTextInput());
        assertEquals(768, c.text().hiddenSize(), "an all-defaults OPT the retrieval model never builds");
    }

    @Test
    void anEmptyConfigIsBlip2Opt27bWithTransformersDefaults() {
        Blip2Config c = Blip2Config.parse("{\"model_type\": \"blip-2\"}", null);
        assertEquals(ModelKind.CONDITIONAL_GENERATION, c.kind());
        assertEquals(new VisionConfig(1408, 6144, 39, 16, 224, 14, "gelu", 1e-6, true), c.vision());
        assertEquals(88, c.vision().headDim());
        assertEquals(257, c.vision().numPositions());
        assertEquals(new QFormerConfig(30522, 768, 12, 12, 3072, "gelu", 512, 1e-12, 0, 2, 1408, false), c.qformer());
        assertEquals(new OptConfig(50272, 768, 12, 3072, 12, 2048, 768, true, false, true, true, "relu", true, 2, 2, 1),
                c.text());
        assertEquals(32, c.numQueryTokens());
        assertEquals(256, c.imageTextHiddenSize());
    }

    @Test
    void crossAttentionWidthIsTheVisionWidthWhateverTheFileSays() {
        Blip2Config c = Blip2Config.parse(
                "{\"vision_config\": {\"hidden_size\": 64, \"num_attention_heads\": 4},"
                        + " \"qformer_config\": {\"encoder_hidden_size\": 1408}}", null);
        assertEquals(64, c.qformer().encoderHiddenSize());
    }

    @Test
    void theNewerLayoutWithAnImageToken() {
        Blip2Config c = Blip2Config.parse(
                "{\"image_token_index\": 50265, \"text_config\": {\"model_type\": \"opt\", \"vocab_size\": 50304}}", null);
        assertEquals(50265, c.imageTokenIndex());
        assertEquals(50304, c.text().vocabSize());
    }

    @Test
    void optDerivedValues() {
        OptConfig opt = (OptConfig) TextConfig.parse(
                "{\"model_type\": \"opt\", \"hidden_size\": 1024, \"num_attention_heads\": 16,"
                        + " \"word_embed_proj_dim\": 512, \"do_layer_norm_before\": false}", null);
        assertEquals(64, opt.headDim());
        assertTrue(opt.hasEmbeddingProjections());
        assertFalse(opt.hasFinalLayerNorm());
        OptConfig nullProj = (OptConfig) TextConfig.parse(
                "{\"model_type\": \"opt\", \"hidden_size\": 24, \"num_attention_heads\": 2, \"word_embed_proj_dim\": null}",
                null);
        assertEquals(24, nullProj.wordEmbedProjDim());
    }

    @Test
    void standaloneLanguageModelConfigs() {
        // facebook/opt-6.7b's config.json as published
        TextConfig opt = TextConfig.parse("""
                {"_name_or_path": "facebook/opt-6.7b", "_remove_final_layer_norm": false, "activation_dropout": 0.0,
                 "activation_function": "relu", "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0,
                 "bos_token_id": 2, "do_layer_norm_before": true, "dropout": 0.1, "eos_token_id": 2,
                 "ffn_dim": 16384, "hidden_size": 4096, "init_std": 0.02, "layerdrop": 0.0,
                 "max_position_embeddings": 2048, "model_type": "opt", "num_attention_heads": 32,
                 "num_hidden_layers": 32, "pad_token_id": 1, "prefix": "</s>", "torch_dtype": "float16",
                 "transformers_version": "4.21.0.dev0", "use_cache": true, "vocab_size": 50272,
                 "word_embed_proj_dim": 4096}""", Path.of("opt-6.7b/config.json"));
        assertEquals(4096, opt.hiddenSize());
        assertEquals(2, opt.eosTokenId());

        BadInputException e = assertThrows(BadInputException.class,
                () -> TextConfig.parse("{\"hidden_size\": 8}", Path.of("llm/config.json")));
        assertTrue(e.getMessage().contains("model_type"), e.getMessage());
    }

    @Test
    void lavisImportTakesTheLanguageModelFromItsFolderWithLavisOverrides() {
        Blip2Config known = Blip2Config.knownLavisType("pretrain_flant5xl");
        // google/flan-t5-xl's config.json says nothing about the activation: gelu_new on its own
        String flanT5Xl = """
                {"architectures": ["T5ForConditionalGeneration"], "d_ff": 5120, "d_kv": 64, "d_model": 2048,
                 "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1,
                 "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true,
                 "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512, "num_decoder_layers": 24,
                 "num_heads": 32, "num_layers": 24, "output_past": true, "pad_token_id": 0,
                 "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
                 "tie_word_embeddings": false, "torch_dtype": "float32", "transformers_version": "4.23.1",
                 "use_cache": true, "vocab_size": 32128}""";
        assertEquals("gelu_new", ((T5Config) TextConfig.parse(flanT5Xl, null)).denseActFn());

        Blip2Config combined = known.withTextConfig(flanT5Xl, Path.of("flan-t5-xl/config.json"));
        T5Config t5 = (T5Config) combined.text();
        assertEquals("gelu", t5.denseActFn(), "LAVIS builds its Flan-T5 with dense_act_fn gelu");
        assertEquals(1, t5.bosTokenId());
        assertEquals(known.text(), t5);
        assertEquals(known.vision(), combined.vision());
        assertEquals(known.lavis(), combined.lavis());
        assertTrue(combined.json().contains("\"d_model\": 2048"), "HF layout: \"key\": value");
        assertEquals(combined, Blip2Config.parse(combined.json(), null), "the combined JSON reads back the same");
    }

    @Test
    void everyKnownLavisTypeParses() {
        for (String type : Blip2Config.KNOWN_LAVIS_TYPES) {
            Blip2Config c = Blip2Config.knownLavisType(type);
            assertEquals(type, c.lavis().type(), type);
            assertEquals(type.startsWith("caption") || type.equals("coco") ? 364 : 224, c.vision().imageSize(), type);
            assertEquals(32, c.numQueryTokens(), type);
        }
        Blip2Config opt = Blip2Config.knownLavisType("caption_coco_opt2.7b");
        assertEquals(List.of("blip2_opt"), opt.lavis().models());
        assertEquals("fp32", opt.lavis().vitPrecision());
        assertEquals("facebook/opt-2.7b", opt.lavis().llm());
        assertEquals("a photo of", opt.lavis().prompt());
        assertEquals(50118, opt.text().eosTokenId(), "captions end at \"\\n\"");
        Blip2Config itm = Blip2Config.knownLavisType("pretrain");
        assertEquals(ModelKind.IMAGE_TEXT_RETRIEVAL, itm.kind());
        assertNull(itm.lavis().llm());
        assertEquals("fp16", itm.lavis().vitPrecision());
    }

    @Test
    void unknownLavisTypeListsTheKnownOnes() {
        BadInputException e = assertThrows(BadInputException.class, () -> Blip2Config.knownLavisType("pretrain_vicuna"));
        assertTrue(e.getMessage().contains("pretrain_vicuna"), e.getMessage());
        for (String known : Blip2Config.KNOWN_LAVIS_TYPES) {
            assertTrue(e.getMessage().contains(known), e.getMessage());
        }
    }

    @Test
    void badInputNamesTheFileAndTheKey() {
        Path file = Path.of("some/config.json");
        assertBad("{\"vision_config\": {\"hidden_size\": 1000}}", file, "vision_config.hidden_size",
                "not divisible");
        assertBad("{\"qformer_config\": {\"num_attention_heads\": 5}}", file, "qformer_config.hidden_size",
                "not divisible");
        assertBad("{\"text_config\": {\"model_type\": \"opt\", \"hidden_size\": 100}}", file,
                "text_config.hidden_size", "not divisible");
        assertBad("{\"num_query_tokens\": \"32\"}", file, "num_query_tokens", "integer");
        assertBad("{\"num_query_tokens\": 3.5}", file, "num_query_tokens", "integer");
        assertBad("{\"num_query_tokens\": 0}", file, "num_query_tokens", "at least 1");
        assertBad("{\"vision_config\": {\"qkv_bias\": \"yes\"}}", file, "vision_config.qkv_bias", "true or false");
        assertBad("{\"vision_config\": {\"layer_norm_eps\": -1}}", file, "vision_config.layer_norm_eps", ">= 0");
        assertBad("{\"vision_config\": {\"image_size\": 8}}", file, "vision_config.image_size", "patch_size");
        assertBad("{\"vision_config\": 3}", file, "vision_config", "object");
        assertBad("{\"text_config\": {\"model_type\": \"llama\"}}", file, "text_config.model_type", "llama");
        assertBad("{\"text_config\": {\"model_type\": \"t5\", \"feed_forward_proj\": \"a-b\"}}", file,
                "text_config.feed_forward_proj", "gated");
        assertBad("{\"text_config\": {\"eos_token_id\": -5}}", file, "text_config.eos_token_id", "negative");
        assertBad("{\"qformer_config\": {\"position_embedding_type\": \"relative_key\"}}", file,
                "qformer_config.position_embedding_type", "absolute");
        assertBad("{\"architectures\": [\"Blip2Model\"]}", file, "architectures", "Blip2ForImageTextRetrieval");
        assertBad("{\"model_type\": \"opt\"}", file, "model_type", "blip-2");
        assertBad("{\"num_query_tokens\": 32,", file, "not valid JSON", "line 1");
        assertBad("[1, 2]", file, "JSON object", "[1,2]");
        assertBad("{\"num_query_tokens\": 32} {}", file, "not valid JSON");
    }

    private static void assertBad(String json, Path file, String... fragments) {
        BadInputException e = assertThrows(BadInputException.class, () -> Blip2Config.parse(json, file), json);
        assertEquals(file, e.file());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "\"" + e.getMessage() + "\" should say " + fragment);
        }
    }
}
