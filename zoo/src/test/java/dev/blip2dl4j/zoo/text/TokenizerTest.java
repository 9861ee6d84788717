package dev.blip2dl4j.zoo.text;

import dev.blip2dl4j.testing.Fixtures;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every test vector of every tokenizer, through the tokenizer the zoo loads. */
class TokenizerTest {

    @Test
    void allTestVectorsOfAllFourTokenizers() throws IOException {
        Path tokenizers = Fixtures.root().resolve("tokenizers");
        JsonNode vectors = new ObjectMapper().readTree(tokenizers.resolve("test_vectors_hf_tokenizers.json").toFile());
        int checked = 0;
        for (String name : new String[]{"gpt2", "opt", "bert-base-uncased", "t5"}) {
            try (Tokenizer tokenizer = Tokenizer.fromJson(Files.readAllBytes(tokenizers.resolve(name).resolve("tokenizer.json")))) {
                for (JsonNode testCase : casesFor(vectors, name)) {
                    long[] expected = StreamSupport.stream(testCase.get("ids").spliterator(), false)
                            .mapToLong(JsonNode::asLong).toArray();
                    assertArrayEquals(expected, tokenizer.encode(testCase.get("text").asText()),
                            name + ": " + testCase.get("text"));
                    checked++;
                }
            }
        }
        assertEquals(141 * 4, checked);
    }

    @Test
    void longPromptsAreNotTruncated() throws IOException {
        Path json = Fixtures.root().resolve("tokenizers/opt/tokenizer.json");
        try (Tokenizer tokenizer = Tokenizer.fromJson(Files.readAllBytes(json))) {
            long[] ids = tokenizer.encode("word ".repeat(1500));
            assertTrue(ids.length > 1500, "got " + ids.length);
            assertEquals("a woman sitting on the beach with a dog\n",
                    tokenizer.decode(new long[]{2, 102, 693, 2828, 15, 5, 4105, 19, 10, 2335, 50118}, true));
        }
    }

    /** The vectors file: {tokenizer name: [{text, ids, tokens}, ...]}. */
    private static Iterable<JsonNode> casesFor(JsonNode vectors, String name) {
        return vectors.get(name);
    }
}
