package dev.blip2dl4j.convert.tokenizer;

import java.nio.file.Path;
import java.util.List;

/**
 * A Hugging Face {@code tokenizer.json} for a checkpoint folder, and the files it came from: the
 * folder's own {@code tokenizer.json}, or the slow-tokenizer files it was built from.
 */
public record TokenizerJson(String json, List<Path> sources) {

    public TokenizerJson {
        sources = List.copyOf(sources);
    }
}
