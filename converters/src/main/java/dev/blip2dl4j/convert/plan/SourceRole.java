package dev.blip2dl4j.convert.plan;

import dev.blip2dl4j.convert.names.NameTable;
import dev.blip2dl4j.convert.names.SourceNames;

/** What a checkpoint file is to the model being assembled, and so which name table reads it. */
public enum SourceRole {
    /** A Hugging Face {@code Blip2For*} checkpoint: everything, in canonical names. */
    HUGGING_FACE(SourceNames.HUGGING_FACE, "Hugging Face BLIP-2 checkpoint"),
    /** A LAVIS {@code .pth}: all of the model, or only what stage two trained. */
    LAVIS(SourceNames.LAVIS, "LAVIS checkpoint"),
    /** LAVIS's {@code eva_vit_g.pth}: the frozen image encoder of a LAVIS model. */
    EVA_VIT(SourceNames.EVA_VIT, "EVA ViT-g checkpoint"),
    /** A Hugging Face OPT folder: the frozen language model of a LAVIS model. */
    OPT(SourceNames.OPT, "Hugging Face OPT checkpoint"),
    /** A Hugging Face Flan-T5 folder: the frozen language model of a LAVIS model. */
    T5(SourceNames.T5, "Hugging Face T5 checkpoint");

    private final NameTable names;
    private final String description;

    SourceRole(NameTable names, String description) {
        this.names = names;
        this.description = description;
    }

    public NameTable names() {
        return names;
    }

    public String description() {
        return description;
    }
}
