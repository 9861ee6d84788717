package dev.blip2dl4j.zoo.text;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.blip2dl4j.BadInputException;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Map;

/**
 * A Hugging Face tokenizer ({@code tokenizer.json}), run by the Rust tokenizers library through DJL:
 * OPT's byte-level BPE, T5's SentencePiece, the Q-Former's BERT WordPiece give exactly transformers'
 * ids. Never truncates: DJL's default would cut at 512 tokens without a word.
 */
public final class Tokenizer implements AutoCloseable {
    static {
        // DJL phones home on first use unless told not to; a library must not
        if (System.getProperty("OPT_OUT_TRACKING") == null) {
            System.setProperty("OPT_OUT_TRACKING", "true");
        }
    }

    private static final Map<String, String> OPTIONS = Map.of("truncation", "false", "padding", "false",
            "addSpecialTokens", "true");

    private final HuggingFaceTokenizer tokenizer;

    private Tokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** @param tokenizerJson the bytes of a tokenizer.json */
    public static Tokenizer fromJson(byte[] tokenizerJson) {
        try {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson), OPTIONS));
        } catch (IOException | RuntimeException e) {
            throw new BadInputException("the model's tokenizer.json cannot be loaded: " + e.getMessage());
        }
    }

    /** Ids of {@code text} with the tokenizer's special tokens (OPT's leading {@code </s>}, T5's final {@code </s>}). */
    public long[] encode(String text) {
        return tokenizer.encode(text, true, false).getIds();
    }

    public String decode(long[] ids, boolean skipSpecialTokens) {
        return tokenizer.decode(ids, skipSpecialTokens);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
