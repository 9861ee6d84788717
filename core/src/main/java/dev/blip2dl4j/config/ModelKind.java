package dev.blip2dl4j.config;

import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/** Which BLIP-2 head a checkpoint carries, from the {@code architectures} of its config. */
public enum ModelKind {
    /** Vision, Q-Former, projection and language model: captioning and question answering. */
    CONDITIONAL_GENERATION("Blip2ForConditionalGeneration"),
    /** Vision and Q-Former with its text side, ITM and ITC heads, no language model: image-text matching. */
    IMAGE_TEXT_RETRIEVAL("Blip2ForImageTextRetrieval");

    private final String architecture;

    ModelKind(String architecture) {
        this.architecture = architecture;
    }

    /** The transformers class name, as config.json's {@code architectures} lists it. */
    public String architecture() {
        return architecture;
    }

    /** The kind named in architectures; none named means conditional generation, transformers' default. */
    static ModelKind from(JsonFields f) {
        List<String> names = f.strings("architectures");
        if (names.isEmpty()) {
            return CONDITIONAL_GENERATION;
        }
        for (ModelKind kind : values()) {
            if (names.contains(kind.architecture)) {
                return kind;
            }
        }
        throw f.bad("architectures", "= " + names + " names no supported model; supported: "
                + Arrays.stream(values()).map(ModelKind::architecture).collect(Collectors.joining(", ")));
    }
}
