package dev.blip2dl4j.config;

import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The language model behind the Q-Former ({@code text_config}): OPT (decoder only) or Flan-T5
 * (encoder-decoder). Also read on its own from an LLM's {@code config.json}, because a LAVIS checkpoint
 * comes without its language model, which users bring as a Hugging Face folder.
 */
public sealed interface TextConfig permits OptConfig, T5Config {

    /** transformers' {@code model_type}: "opt" or "t5". */
    String modelType();

    /** The width the language projection maps the Q-Former output to. */
    int hiddenSize();

    int vocabSize();

    /** Whether lm_head shares its weight with the input embedding (then it is not stored on its own). */
    boolean tieWordEmbeddings();

    /** True for a causal decoder (OPT), false for an encoder-decoder (T5). */
    boolean decoderOnly();

    Integer bosTokenId();

    Integer eosTokenId();

    Integer padTokenId();

    /** A standalone LLM config.json (facebook/opt-2.7b, google/flan-t5-xl, ...). */
    static TextConfig read(Path file) {
        return parse(readText(file), file);
    }

    /** Like {@link #read}, from text; forMessages names the file in errors and may be null. */
    static TextConfig parse(String json, Path forMessages) {
        JsonFields f = JsonFields.parse(json, forMessages);
        if (!f.has("model_type")) {
            throw f.bad("model_type", "is missing: a language model config must say \"opt\" or \"t5\"");
        }
        return from(f);
    }

    /** The text_config of a BLIP-2 config, where transformers takes a missing model_type as OPT. */
    static TextConfig from(JsonFields f) {
        String type = f.string("model_type", "opt");
        return switch (type) {
            case "opt" -> OptConfig.from(f);
            case "t5" -> T5Config.from(f);
            default -> throw f.bad("model_type", "= \"" + type
                    + "\" is not a supported language model; supported: \"opt\", \"t5\"");
        };
    }

    static String readText(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new BadInputException(file, "cannot be read: " + e, e);
        }
    }
}
