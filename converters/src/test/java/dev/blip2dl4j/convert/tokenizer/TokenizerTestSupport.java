package dev.blip2dl4j.convert.tokenizer;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.StreamSupport;

/**
 * Shared by the tokenizer tests: copies of checkpoint folders without their tokenizer.json (so that one
 * is built), and loading a tokenizer.json into Hugging Face tokenizers
 * (the Rust library, through DJL) the way the zoo will load it.
 */
final class TokenizerTestSupport {
    static final ObjectMapper MAPPER = new ObjectMapper();

    /** Every slow-tokenizer file name the builder may read. */
    private static final List<String> SLOW_FILES = List.of("vocab.json", "merges.txt", "vocab.txt", "spiece.model",
            "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json");

    /** Add the template's special tokens; never truncate (DJL would cut at 512) or pad. */
    private static final Map<String, String> OPTIONS = Map.of(
            "addSpecialTokens", "true", "truncation", "false", "padding", "false");

    private TokenizerTestSupport() {
    }

    /** Copies the slow-tokenizer files of {@code folder} (never its tokenizer.json) into {@code target}. */
    static Path slowFilesOf(Path folder, Path target) throws IOException {
        for (String name : SLOW_FILES) {
            if (Files.isRegularFile(folder.resolve(name))) {
                Files.copy(folder.resolve(name), target.resolve(name));
            }
        }
        return target;
    }

    /** Loads tokenizer.json text through a file of its own, with no config file beside it for DJL to read. */
    static HuggingFaceTokenizer load(String json, Path scratch) throws IOException {
        Path file = Files.createTempFile(scratch, "tokenizer", ".json");
        Files.writeString(file, json);
        return HuggingFaceTokenizer.newInstance(file, OPTIONS);
    }

    static HuggingFaceTokenizer load(Path tokenizerJson) throws IOException {
        return HuggingFaceTokenizer.newInstance(tokenizerJson, OPTIONS);
    }

    static JsonNode readJson(Path file) throws IOException {
        return MAPPER.readTree(file.toFile());
    }

    static long[] longs(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }
}
