package dev.blip2dl4j.config;

import dev.blip2dl4j.config.JsonFields.Size;

import java.util.List;

/**
 * What a LAVIS model type needs beyond the Hugging Face config: where its weights come from and how LAVIS
 * runs it. Read from the {@code "lavis"} object of the configs we ship for LAVIS types (see
 * {@link Blip2Config#knownLavisType}); a config from the hub has none.
 *
 * @param models       LAVIS registry names that load this type ({@code blip2_opt}, ...)
 * @param type         the LAVIS model type ({@code pretrain_opt2.7b}, ...)
 * @param checkpoint   URL of the BLIP-2 checkpoint LAVIS loads for this type
 * @param vitCheckpoint URL of the EVA ViT-g weights LAVIS loads before the checkpoint
 * @param vitPrecision "fp16" or "fp32": the precision LAVIS runs the ViT in
 * @param freezeVit    whether the ViT was frozen in training (then the checkpoint need not hold it)
 * @param llm          Hugging Face repo of the language model LAVIS loads, or null for Q-Former-only types
 * @param prompt       the text prompt LAVIS prepends when captioning
 * @param maxTxtLen    LAVIS's text truncation length
 */
public record LavisFacts(
        List<String> models,
        String type,
        String checkpoint,
        String vitCheckpoint,
        String vitPrecision,
        boolean freezeVit,
        String llm,
        String prompt,
        int maxTxtLen) {

    public LavisFacts {
        models = List.copyOf(models);
    }

    static LavisFacts from(JsonFields f) {
        return new LavisFacts(
                f.strings("models"),
                f.string("type", null),
                f.string("checkpoint", null),
                f.string("vit_checkpoint", null),
                f.string("vit_precision", "fp16"),
                f.bool("freeze_vit", true),
                f.string("llm", null),
                f.string("prompt", ""),
                f.size("max_txt_len", 32, Size.POSITIONS));
    }
}
