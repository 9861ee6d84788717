package dev.blip2dl4j.convert.tokenizer;

import dev.blip2dl4j.testing.Fixtures;
import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.load;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.longs;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.readJson;
import static dev.blip2dl4j.convert.tokenizer.TokenizerTestSupport.slowFilesOf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A tokenizer.json built from the slow files of fixtures/tokenizers/* must give, in Hugging Face
 * tokenizers, exactly the ids of the golden vectors (141 strings: accents, CJK, emoji, NBSP, zero-width
 * and control characters, whitespace runs, literal special tokens, 100 lines of English) and of the
 * reference tokenizer.json beside those files, on the vectors and on added-token strings besides.
 */
class TokenizerJsonVectorsTest {

    /**
     * fixtures/tokenizers/opt has only vocab.json and merges.txt. This is the configuration its
     * reference tokenizer.json stands for: GPT2Tokenizer with OPT's add_bos_token (bos </s>), and the
     * four fairseq specials <s> <pad> </s> <unk> (ids 0-3) as added special tokens.
     */
    private static final String OPT_CONFIG = """
            {
              "tokenizer_class": "GPT2Tokenizer",
              "add_bos_token": true,
              "add_prefix_space": false,
              "bos_token": "</s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
              "added_tokens_decoder": {
                "0": {"content": "<s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
                "1": {"content": "<pad>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
                "2": {"content": "</s>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
                "3": {"content": "<unk>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}
              }
            }
            """;

    /** Strings that exercise each tokenizer's added and special tokens beyond what the vectors hold. */
    private static final List<String> EXTRA_TEXTS = List.of(
            "<|endoftext|>", "a<|endoftext|>b", "<s>x</s> <pad><unk>", "[UNK] [PAD]x[CLS][SEP] [MASK]",
            "<extra_id_0> x <extra_id_99>y<extra_id_17>", "  <extra_id_1>  ", "<unk> </s>", "tab\t<pad>\n");

    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "opt", "bert-base-uncased", "t5"})
    void builtTokenizerGivesTheGoldenIds(String name, @TempDir Path temp) throws Exception {
        Path folder = Fixtures.root().resolve("tokenizers").resolve(name);
        Path slow = slowFilesOf(folder, Files.createDirectory(temp.resolve("slow")));
        if (name.equals("opt")) {
            Files.writeString(slow.resolve("tokenizer_config.json"), OPT_CONFIG);
        }
        TokenizerJson built = TokenizerJsonBuilder.build(slow).orElseThrow();
        JsonNode vectors = readJson(Fixtures.root().resolve("tokenizers/test_vectors_hf_tokenizers.json")).get(name);

        List<String> mismatches = new ArrayList<>();
        try (HuggingFaceTokenizer ours = load(built.json(), temp);
             HuggingFaceTokenizer reference = load(folder.resolve("tokenizer.json"))) {
            for (JsonNode vector : vectors) {
                String text = vector.get("text").asText();
                Encoding encoding = ours.encode(text);
                long[] expected = longs(vector.get("ids"));
                if (!Arrays.equals(expected, encoding.getIds())) {
                    mismatches.add("golden " + quoted(text) + ": expected " + Arrays.toString(expected)
                            + ", got " + Arrays.toString(encoding.getIds()));
                }
                List<String> expectedTokens = new ArrayList<>();
                vector.get("tokens").forEach(token -> expectedTokens.add(token.asText()));
                if (!expectedTokens.equals(Arrays.asList(encoding.getTokens()))) {
                    mismatches.add("golden tokens " + quoted(text) + ": expected " + expectedTokens
                            + ", got " + Arrays.asList(encoding.getTokens()));
                }
            }
            List<String> texts = new ArrayList<>(EXTRA_TEXTS);
            vectors.forEach(vector -> texts.add(vector.get("text").asText()));
            for (String text : texts) {
                long[] expected = reference.encode(text).getIds();
                long[] actual = ours.encode(text).getIds();
                if (!Arrays.equals(expected, actual)) {
                    mismatches.add("reference " + quoted(text) + ": expected " + Arrays.toString(expected)
                            + ", got " + Arrays.toString(actual));
                }
            }
            System.out.printf("%s: %d golden vectors, %d strings against the reference tokenizer.json, %d mismatches%n",
                    name, vectors.size(), texts.size(), mismatches.size());
        }
        assertEquals(141, vectors.size());
        assertTrue(mismatches.isEmpty(), name + ": " + mismatches.size() + " mismatches:\n" + String.join("\n", mismatches));
    }

    /**
     * The T5 reference is transformers' own conversion output, so the whole file must match, precompiled
     * character map and scores included. The BERT reference was written by a research probe after
     * BertConverter; GPT-2's and OPT's differ from ours in fields that do not change ids (the probe
     * wrote no ignore_merges and a ByteLevel post-processor without add_prefix_space).
     */
    @ParameterizedTest
    @ValueSource(strings = {"t5", "bert-base-uncased"})
    void builtJsonEqualsTheReferenceJson(String name, @TempDir Path temp) throws Exception {
        Path folder = Fixtures.root().resolve("tokenizers").resolve(name);
        TokenizerJson built = TokenizerJsonBuilder.build(slowFilesOf(folder, temp)).orElseThrow();
        assertEquals(readJson(folder.resolve("tokenizer.json")), TokenizerTestSupport.MAPPER.readTree(built.json()));
    }

    private static String quoted(String text) {
        return "'" + text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "'";
    }
}
