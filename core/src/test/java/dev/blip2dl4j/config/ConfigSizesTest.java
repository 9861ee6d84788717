package dev.blip2dl4j.config;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every size a config gives is bounded before anything is built from it: a config.json that says a billion
 * layers used to build a parameter list until the heap ran out.
 */
class ConfigSizesTest {
    private static final Path FILE = Path.of("model", "config.json");

    @ParameterizedTest(name = "{0}.{1} = {2}")
    @CsvSource({
            "vision_config, num_hidden_layers, 1000000000",
            "vision_config, hidden_size, 2000000000",
            "vision_config, num_attention_heads, 4096",
            "vision_config, image_size, 1000000",
            "qformer_config, vocab_size, 1073741824",
            "qformer_config, intermediate_size, 100000000",
            "qformer_config, max_position_embeddings, 2147483647",
            "qformer_config, cross_attention_frequency, 100000",
            "text_config, num_hidden_layers, 1000000000",
            "text_config, ffn_dim, 1000000000",
            "text_config, max_position_embeddings, 1000000000",
            "text_config, word_embed_proj_dim, 70000",
    })
    void aSizeFarBeyondAnyBlip2IsRefusedNamingTheFieldAndTheFile(String section, String key, long value) {
        String json = "{\"" + section + "\": {\"" + key + "\": " + value + "}}";
        BadInputException e = assertTimeoutPreemptively(Duration.ofSeconds(5),
                () -> assertThrows(BadInputException.class, () -> ParameterLayout.of(Blip2Config.parse(json, FILE))));
        assertTrue(e.getMessage().contains(FILE.toString()), e.getMessage());
        assertTrue(e.getMessage().contains(section + "." + key + " = " + value + " is far beyond any BLIP-2"),
                e.getMessage());
    }

    @ParameterizedTest(name = "{0} = {1}")
    @CsvSource({
            "num_layers, 1000000000",
            "num_decoder_layers, 5000",
            "d_model, 1000000",
            "d_kv, 131072",
            "vocab_size, 2000000",
            "relative_attention_num_buckets, 1000000",
            "relative_attention_max_distance, 2000000000",
    })
    void t5SizesToo(String key, long value) {
        String json = "{\"text_config\": {\"model_type\": \"t5\", \"" + key + "\": " + value + "}}";
        BadInputException e = assertThrows(BadInputException.class, () -> Blip2Config.parse(json, FILE));
        assertTrue(e.getMessage().contains("text_config." + key + " = " + value + " is far beyond"), e.getMessage());
    }

    @Test
    void topLevelAndLavisSizesToo() {
        BadInputException queries = assertThrows(BadInputException.class,
                () -> Blip2Config.parse("{\"num_query_tokens\": 1000000}", FILE));
        assertTrue(queries.getMessage().contains("num_query_tokens = 1000000 is far beyond"), queries.getMessage());
        BadInputException lavis = assertThrows(BadInputException.class,
                () -> Blip2Config.parse("{\"lavis\": {\"max_txt_len\": 100000000}}", FILE));
        assertTrue(lavis.getMessage().contains("lavis.max_txt_len = 100000000 is far beyond"), lavis.getMessage());
    }

    @Test
    void aStandaloneLanguageModelConfigIsBoundedAlike() {
        BadInputException e = assertThrows(BadInputException.class,
                () -> TextConfig.parse("{\"model_type\": \"opt\", \"num_hidden_layers\": 1000000000}", FILE));
        assertTrue(e.getMessage().contains("num_hidden_layers = 1000000000 is far beyond"), e.getMessage());
    }

    @Test
    void theBoundsLeaveRoomAboveEveryRealModel() {
        // the largest BLIP-2 (Flan-T5-XXL, OPT-6.7b) are parsed by Blip2ConfigTest; these are the bounds themselves
        Blip2Config c = Blip2Config.parse("{\"vision_config\": {\"num_hidden_layers\": 1024, \"image_size\": 4096,"
                + " \"hidden_size\": 65536, \"num_attention_heads\": 1024},"
                + " \"text_config\": {\"vocab_size\": 1048576, \"max_position_embeddings\": 1048576}}", FILE);
        assertEquals(1024, c.vision().numHiddenLayers());
        assertEquals(4096, c.vision().imageSize());
        assertEquals(1 << 20, c.text().vocabSize());
        assertThrows(BadInputException.class,
                () -> Blip2Config.parse("{\"vision_config\": {\"num_hidden_layers\": 1025}}", FILE));
    }
}
