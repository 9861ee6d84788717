package dev.blip2dl4j.convert.tokenizer;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Files that cannot make a tokenizer end in a BadInputException that names the file and the problem. */
class TokenizerJsonErrorsTest {
    @TempDir
    Path folder;

    /** A three-token BPE: "a" and "b" merge into "ab". */
    private void writeTinyBpe(String vocab, String merges) throws IOException {
        Files.writeString(folder.resolve("vocab.json"), vocab);
        Files.writeString(folder.resolve("merges.txt"), merges);
    }

    @Test
    void tinyBpeIsValid() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na b\n");
        assertTrue(TokenizerJsonBuilder.build(folder).orElseThrow().json().contains("\"a b\""));
    }

    @Test
    void vocabJsonThatIsNotJson() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1,", "#version: 0.2\na b\n");
        assertBadInput("vocab.json", "not valid JSON");
    }

    @Test
    void vocabJsonWithANonIntegerId() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": \"one\", \"ab\": 2}", "#version: 0.2\na b\n");
        assertBadInput("vocab.json", "the id of token 'b' is not a non-negative integer");
    }

    @Test
    void vocabJsonWithARepeatedId() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1, \"ab\": 1}", "#version: 0.2\na b\n");
        assertBadInput("vocab.json", "have the same id 1");
    }

    @Test
    void mergesLineWithThreeTokens() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na b\na b ab\n");
        assertBadInput("merges.txt", "line 3: expected two tokens separated by one space, found 'a b ab'");
    }

    @Test
    void mergeOfATokenOutsideTheVocabulary() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na c\n");
        assertBadInput("merges.txt", "line 2: token 'c' is not in vocab.json");
    }

    @Test
    void mergeWhoseResultIsOutsideTheVocabulary() throws IOException {
        writeTinyBpe("{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\nb a\n");
        assertBadInput("merges.txt", "line 2: token 'ba' is not in vocab.json");
    }

    @Test
    void vocabJsonWithoutMerges() throws IOException {
        Files.writeString(folder.resolve("vocab.json"), "{\"a\": 0}");
        assertBadInput("merges.txt", "missing");
    }

    /** Cut anywhere, at 300 places spread over the file, the model is rejected, never half read. */
    @Test
    void truncatedSpieceModel() throws IOException {
        byte[] model = Files.readAllBytes(Fixtures.root().resolve("tokenizers/t5/spiece.model"));
        for (int i = 1; i <= 300; i++) {
            int length = (int) ((long) model.length * i / 301);
            Files.write(folder.resolve("spiece.model"), Arrays.copyOf(model, length));
            assertBadInput("spiece.model", "truncated or corrupt");
        }
    }

    /** Cut right after a complete piece, the file is still well-formed protobuf, but it lacks the specs. */
    @Test
    void spieceModelCutBetweenFields() throws IOException {
        // field 1 (pieces), 8 bytes long: piece "a" (field 1), score -1.0f (field 2, fixed32 little-endian)
        byte[] onePiece = {0x0a, 0x08, 0x0a, 0x01, 'a', 0x15, 0x00, 0x00, (byte) 0x80, (byte) 0xbf};
        Files.write(folder.resolve("spiece.model"), onePiece);
        assertBadInput("spiece.model", "the trainer or normalizer spec that follows the pieces is missing");
    }

    @Test
    void spieceModelThatIsNotAProto() throws IOException {
        Files.writeString(folder.resolve("spiece.model"), "this is a text file, not a sentencepiece model\n");
        assertBadInput("spiece.model", "truncated or corrupt");
    }

    @Test
    void emptySpieceModel() throws IOException {
        Files.write(folder.resolve("spiece.model"), new byte[0]);
        assertBadInput("spiece.model", "no pieces");
    }

    @Test
    void tokenizerClassWeDoNotConvert() throws IOException {
        Files.copy(Fixtures.root().resolve("tokenizers/t5/spiece.model"), folder.resolve("spiece.model"));
        Files.writeString(folder.resolve("tokenizer_config.json"), "{\"tokenizer_class\": \"LlamaTokenizerFast\"}");
        assertBadInput("tokenizer_config.json", "tokenizer_class 'LlamaTokenizer' cannot be converted");
    }

    @Test
    void addedTokenWhoseIdLeavesAGap() throws IOException {
        Files.copy(Fixtures.root().resolve("blip2-tiny-itm/vocab.txt"), folder.resolve("vocab.txt"));
        Files.writeString(folder.resolve("added_tokens.json"), "{\"[DEC]\": 30523}");
        assertBadInput("added_tokens.json", "added token '[DEC]' has id 30523, but a tokenizer built from these "
                + "files gives it id 30522");
    }

    @Test
    void addedTokensDecoderWithANonNumericKey() throws IOException {
        Files.copy(Fixtures.root().resolve("blip2-tiny-itm/vocab.txt"), folder.resolve("vocab.txt"));
        Files.writeString(folder.resolve("tokenizer_config.json"),
                "{\"added_tokens_decoder\": {\"first\": {\"content\": \"[DEC]\"}}}");
        assertBadInput("tokenizer_config.json", "added_tokens_decoder has a key that is not a token id: 'first'");
    }

    @Test
    void vocabTxtThatIsNotUtf8() throws IOException {
        Files.write(folder.resolve("vocab.txt"), new byte[] {'[', 'P', 'A', 'D', ']', '\n', (byte) 0xff, '\n'});
        assertBadInput("vocab.txt", "not UTF-8");
    }

    private void assertBadInput(String file, String problem) {
        BadInputException e = assertThrows(BadInputException.class, () -> TokenizerJsonBuilder.build(folder));
        assertEquals(folder.resolve(file), e.file());
        assertTrue(e.getMessage().contains(problem), () -> "message was: " + e.getMessage());
    }
}
