package dev.blip2dl4j.convert.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A token matched in the raw text before the model sees it, with the flags Hugging Face tokenizers
 * give it: {@code lstrip}/{@code rstrip} swallow the whitespace beside it, {@code single_word} matches
 * it only as a whole word, {@code normalized} matches it in the normalized text instead of the raw one,
 * and {@code special} marks it as skipped when decoding.
 *
 * <p>{@code normalized} may be left unsaid (null); it then means "not special", as the {@code tokenizers}
 * library has it, judged with the final value of {@code special}.
 */
record AddedToken(String content, boolean singleWord, boolean lstrip, boolean rstrip, Boolean normalized,
                  boolean special) {

    static AddedToken special(String content) {
        return new AddedToken(content, false, false, false, null, true);
    }

    /**
     * Reads either form a token takes in the config files: a bare string, or an object such as
     * {@code {"content": "</s>", "lstrip": false, "normalized": true, ...}} (older files add
     * {@code "__type": "AddedToken"}). {@code special} is what a missing "special" field means.
     */
    static AddedToken fromJson(JsonNode node, boolean special) {
        if (node.isTextual()) {
            return new AddedToken(node.asText(), false, false, false, null, special);
        }
        JsonNode normalized = node.path("normalized");
        return new AddedToken(
                node.path("content").asText(),
                node.path("single_word").asBoolean(false),
                node.path("lstrip").asBoolean(false),
                node.path("rstrip").asBoolean(false),
                normalized.isBoolean() ? normalized.asBoolean() : null,
                node.path("special").asBoolean(special));
    }

    AddedToken withSpecial(boolean isSpecial) {
        return new AddedToken(content, singleWord, lstrip, rstrip, normalized, isSpecial);
    }

    boolean isNormalized() {
        return normalized != null ? normalized : !special;
    }
}
