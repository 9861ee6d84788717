package dev.blip2dl4j.convert.tokenizer;

import dev.blip2dl4j.testing.Fixtures;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.load;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.longs;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.readJson;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.slowFilesOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The BLIP-2 fixture folders hold only slow-tokenizer files, as saved by transformers 4.45. The
 * tokenizer.json built from each must give the ids of its reference.json, which the slow Python
 * tokenizers produced.
 */
class TokenizerJsonBlip2Test {

    @Test
    void optPromptAndTrainingText(@TempDir Path temp) throws Exception {
        Path folder = Fixtures.root().resolve("blip2-tiny-opt");
        JsonNode reference = readJson(folder.resolve("reference.json"));
        TokenizerJson built = TokenizerJsonBuilder.build(folder).orElseThrow();
        assertEquals(List.of("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                "added_tokens.json"), names(built.sources()));
        try (HuggingFaceTokenizer tokenizer = load(built.json(), temp)) {
            assertIds(reference.get("input_ids"), tokenizer, reference.get("prompt").asText());
            JsonNode trainStep = reference.get("train_step");
            assertIds(trainStep.get("input_ids"), tokenizer, trainStep.get("text").asText());
            // Blip2Processor's image token follows OPT's 50265 tokens; the BOS </s> comes first.
            assertArrayEquals(new long[] {2, 50265, 50265, 250}, tokenizer.encode("<image><image>A").getIds());
        }
    }

    @Test
    void t5PromptLabelsAndAddedTokens(@TempDir Path temp) throws Exception {
        Path folder = Fixtures.root().resolve("blip2-tiny-t5");
        JsonNode reference = readJson(folder.resolve("reference.json"));
        TokenizerJson built = TokenizerJsonBuilder.build(folder).orElseThrow();
        try (HuggingFaceTokenizer tokenizer = load(built.json(), temp)) {
            assertIds(reference.get("input_ids"), tokenizer, reference.get("prompt").asText());
            JsonNode trainStep = reference.get("train_step");
            assertIds(trainStep.get("labels"), tokenizer, trainStep.get("text_output").asText());
            assertArrayEquals(new long[] {32100, 32099, 32000, 1}, tokenizer.encode("<image><extra_id_0> <extra_id_99>").getIds());
        }
    }

    @Test
    void qformerCaptionsAndDecToken(@TempDir Path temp) throws Exception {
        Path folder = Fixtures.root().resolve("blip2-tiny-itm");
        JsonNode reference = readJson(folder.resolve("reference.json"));
        TokenizerJson built = TokenizerJsonBuilder.build(folder).orElseThrow();
        try (HuggingFaceTokenizer tokenizer = load(built.json(), temp)) {
            for (int i = 0; i < 2; i++) {
                long[] padded = longs(reference.get("itm_input_ids").get(i));
                long[] expected = Arrays.stream(padded).filter(id -> id != 0).toArray();
                assertArrayEquals(expected, tokenizer.encode(reference.get("captions").get(i).asText()).getIds());
            }
            assertArrayEquals(new long[] {101, 30522, 1037, 3899, 102}, tokenizer.encode("[DEC] a dog").getIds());
        }
    }

    /**
     * The layout before transformers 4.34: no added_tokens_decoder; [DEC] is the bos_token of
     * special_tokens_map.json and gets its id from added_tokens.json.
     */
    @Test
    void legacyQformerFolderGivesDecTheSameId(@TempDir Path temp) throws Exception {
        Path folder = Files.createDirectory(temp.resolve("legacy"));
        Files.copy(Fixtures.root().resolve("blip2-tiny-itm/vocab.txt"), folder.resolve("vocab.txt"));
        Files.writeString(folder.resolve("tokenizer_config.json"),
                "{\"do_lower_case\": true, \"tokenizer_class\": \"BertTokenizer\"}");
        Files.writeString(folder.resolve("special_tokens_map.json"), "{\"bos_token\": \"[DEC]\"}");
        Files.writeString(folder.resolve("added_tokens.json"), "{\"[DEC]\": 30522}");
        TokenizerJson built = TokenizerJsonBuilder.build(folder).orElseThrow();
        JsonNode dec = TokenizerTestSupport.MAPPER.readTree(built.json()).get("added_tokens").get(5);
        assertEquals("[DEC]", dec.get("content").asText());
        assertTrue(dec.get("special").asBoolean());
        try (HuggingFaceTokenizer tokenizer = load(built.json(), temp)) {
            assertArrayEquals(new long[] {101, 30522, 1037, 3899, 102}, tokenizer.encode("[DEC] a dog").getIds());
        }
    }

    @Test
    void aFolderWithTokenizerJsonKeepsIt() throws Exception {
        Path file = Fixtures.root().resolve("tokenizers/t5/tokenizer.json");
        TokenizerJson kept = TokenizerJsonBuilder.build(file.getParent()).orElseThrow();
        assertEquals(Files.readString(file), kept.json());
        assertEquals(List.of(file), kept.sources());
    }

    @Test
    void aFolderWithoutTokenizerFilesHasNone(@TempDir Path temp) throws Exception {
        Files.writeString(temp.resolve("config.json"), "{}");
        Files.writeString(temp.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"T5Tokenizer\"}");
        assertEquals(Optional.empty(), TokenizerJsonBuilder.build(temp));
    }

    @Test
    void withoutTokenizerConfigTheVocabularyFilesDecide(@TempDir Path temp) throws Exception {
        Path folder = slowFilesOf(Fixtures.root().resolve("tokenizers/t5"), Files.createDirectory(temp.resolve("t5")));
        Files.delete(folder.resolve("tokenizer_config.json"));
        Files.delete(folder.resolve("special_tokens_map.json"));
        TokenizerJson built = TokenizerJsonBuilder.build(folder).orElseThrow();
        assertEquals(List.of("spiece.model"), names(built.sources()));
        try (HuggingFaceTokenizer tokenizer = load(built.json(), temp)) {
            assertArrayEquals(new long[] {2335, 1556, 28, 1782, 30, 8, 2608, 1},
                    tokenizer.encode("woman playing with dog on the beach").getIds());
            assertArrayEquals(new long[] {32099, 1}, tokenizer.encode("<extra_id_0>").getIds());
        }
    }

    private static void assertIds(JsonNode expected, HuggingFaceTokenizer tokenizer, String text) {
        assertArrayEquals(longs(expected), tokenizer.encode(text).getIds(), text);
    }

    private static List<String> names(List<Path> files) {
        return files.stream().map(file -> file.getFileName().toString()).toList();
    }
}
