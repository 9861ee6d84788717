package dev.blip2dl4j.convert.tokenizer;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A tokenizer's named special tokens ({@code bos_token}, {@code eos_token}, ...) and its
 * {@code additional_special_tokens}: each one as the config files give it, or else the default of the
 * tokenizer class (GPT-2's {@code <|endoftext|>}, BERT's {@code [CLS]}, T5's {@code <extra_id_N>}, ...).
 */
record SpecialTokens(Map<String, AddedToken> named, List<AddedToken> additional) {

    /** The attributes in the order transformers lists them; the order decides the ids of new tokens. */
    static final List<String> ATTRIBUTES = List.of(
            "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token");

    SpecialTokens {
        named = Collections.unmodifiableMap(new LinkedHashMap<>(named));
        additional = List.copyOf(additional);
    }

    /** These tokens with {@code contents} appended to the additional ones, each as a plain special token. */
    SpecialTokens withMoreAdditional(List<String> contents) {
        List<AddedToken> more = new ArrayList<>(additional);
        contents.forEach(content -> more.add(AddedToken.special(content)));
        return new SpecialTokens(named, more);
    }

    Optional<String> content(String attribute) {
        return Optional.ofNullable(named.get(attribute)).map(AddedToken::content);
    }

    boolean contains(String content) {
        return all().stream().anyMatch(token -> token.content().equals(content));
    }

    /** Every special token once, named ones first in {@link #ATTRIBUTES} order, then the additional ones. */
    List<AddedToken> all() {
        List<AddedToken> all = new ArrayList<>();
        for (String attribute : ATTRIBUTES) {
            AddedToken token = named.get(attribute);
            if (token != null && all.stream().noneMatch(t -> t.content().equals(token.content()))) {
                all.add(token);
            }
        }
        for (AddedToken token : additional) {
            if (all.stream().noneMatch(t -> t.content().equals(token.content()))) {
                all.add(token);
            }
        }
        return all;
    }
}
