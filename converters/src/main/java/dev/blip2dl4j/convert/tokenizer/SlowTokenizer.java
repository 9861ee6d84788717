package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A slow (pure Python) transformers tokenizer read from its vocabulary files, able to give the parts of
 * the {@code tokenizer.json} that transformers' {@code convert_slow_tokenizer} makes of it. Each part is
 * a node of the Hugging Face {@code tokenizers} JSON format; {@code null} JSON for an absent part.
 */
interface SlowTokenizer {

    /** The files read for the vocabulary (the config files are listed elsewhere). */
    List<Path> sources();

    /** Token to id of the model's own vocabulary. */
    Map<String, Integer> vocab();

    /** Tokens that the vocabulary file itself marks as added tokens, in id order. */
    List<AddedToken> modelAddedTokens();

    SpecialTokens specialTokens();

    JsonNode normalizer();

    JsonNode preTokenizer();

    /** The post-processor may name special tokens, whose ids only the complete added vocabulary knows. */
    JsonNode postProcessor(AddedVocabulary ids);

    JsonNode decoder();

    JsonNode model();
}
