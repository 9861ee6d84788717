package dev.blip2dl4j.convert.names;

import static dev.blip2dl4j.convert.names.NameRule.drop;
import static dev.blip2dl4j.convert.names.NameRule.fuse;
import static dev.blip2dl4j.convert.names.NameRule.rename;

import java.util.ArrayList;
import java.util.List;

/**
 * The name tables, one per source format, from each format's tensor names to the canonical ones:
 * the Hugging Face {@code Blip2*} state-dict names. Tied copies (an OPT {@code lm_head}, T5's
 * {@code embed_tokens}) are not handled here: they map to their canonical alias name, and the
 * converter checks them against the tensor they are tied to.
 */
public final class SourceNames {
    private SourceNames() {
    }

    private static final String BUFFER = "a buffer (position ids), not a weight";

    /** A Hugging Face {@code Blip2ForConditionalGeneration} or {@code Blip2ForImageTextRetrieval} checkpoint. */
    public static final NameTable HUGGING_FACE = new NameTable("hf", List.of(
            drop("(.*\\.)?position_ids", BUFFER),
            rename("(.*)", "$1")));

    /**
     * A LAVIS {@code blip2_opt} / {@code blip2_t5} / {@code blip2} (feature extractor, ITM) checkpoint,
     * after transformers' convert_blip_2_original_to_pytorch.py.
     */
    public static final NameTable LAVIS = withVit("lavis", "visual_encoder\\.",
            rename("query_tokens", "query_tokens"),
            // LAVIS normalises the ViT output in the BLIP-2 model (ln_vision); HF puts it inside the ViT
            rename("ln_vision\\.(weight|bias)", "vision_model.post_layernorm.$1"),
            // Q-Former (a BERT): the embeddings' LayerNorm normalises the queries in HF
            rename("Qformer\\.bert\\.embeddings\\.LayerNorm\\.(weight|bias)", "qformer.layernorm.$1"),
            rename("Qformer\\.bert\\.embeddings\\.(word_embeddings|position_embeddings)\\.weight", "embeddings.$1.weight"),
            drop("Qformer\\.bert\\.embeddings\\.position_ids", BUFFER),
            rename("Qformer\\.bert\\.encoder\\.layer\\.(\\d+)\\.(attention|crossattention)\\.self\\.(.*)",
                    "qformer.encoder.layer.$1.$2.attention.$3"),
            rename("Qformer\\.bert\\.encoder\\.layer\\.(\\d+)\\.(.*)", "qformer.encoder.layer.$1.$2"),
            drop("Qformer\\.cls\\..*", "the Q-Former's image-grounded text generation head (stage-one ITG loss), "
                    + "which no Hugging Face BLIP-2 class has"),
            drop("temp", "the ITC softmax temperature, used only by the stage-one training loss"),
            // heads of the stage-one model
            rename("vision_proj\\.(weight|bias)", "vision_projection.$1"),
            rename("text_proj\\.(weight|bias)", "text_projection.$1"),
            rename("itm_head\\.(weight|bias)", "itm_head.$1"),
            // the LLM and the projection into it
            rename("(?:opt|t5)_proj\\.(weight|bias)", "language_projection.$1"),
            rename("(?:opt|t5)_model\\.(.*)", "language_model.$1"));

    /**
     * LAVIS's {@code eva_vit_g.pth}: the EVA-CLIP ViT-g state dict without prefix. LAVIS loads it with
     * strict=False into a 39-block ViT, so the 40th block and anything else a BLIP-2 ViT lacks is
     * ignored; the converter drops blocks past the configured depth.
     */
    public static final NameTable EVA_VIT = withVit("eva-vit", "",
            drop("(norm|fc_norm|head|rel_pos_bias)\\..*", "part of EVA-CLIP that LAVIS's BLIP-2 ViT does not have "
                    + "(it loads eva_vit_g.pth with strict=False)"));

    /**
     * A table of the EVA ViT-g's own names after {@code prefix} (they are the same in a LAVIS checkpoint
     * and in eva_vit_g.pth), then {@code rest}.
     */
    private static NameTable withVit(String format, String prefix, NameRule... rest) {
        List<NameRule> rules = new ArrayList<>(List.of(
                rename(prefix + "cls_token", "vision_model.embeddings.class_embedding"),
                rename(prefix + "pos_embed", "vision_model.embeddings.position_embedding"),
                rename(prefix + "patch_embed\\.proj\\.(weight|bias)", "vision_model.embeddings.patch_embedding.$1"),
                rename(prefix + "blocks\\.(\\d+)\\.norm([12])\\.(weight|bias)", "vision_model.encoder.layers.$1.layer_norm$2.$3"),
                rename(prefix + "blocks\\.(\\d+)\\.attn\\.qkv\\.weight", "vision_model.encoder.layers.$1.self_attn.qkv.weight"),
                fuse(prefix + "blocks\\.(\\d+)\\.attn\\.q_bias", "vision_model.encoder.layers.$1.self_attn.qkv.bias", 0, 3),
                fuse(prefix + "blocks\\.(\\d+)\\.attn\\.v_bias", "vision_model.encoder.layers.$1.self_attn.qkv.bias", 2, 3),
                rename(prefix + "blocks\\.(\\d+)\\.attn\\.proj\\.(weight|bias)",
                        "vision_model.encoder.layers.$1.self_attn.projection.$2"),
                rename(prefix + "blocks\\.(\\d+)\\.mlp\\.(fc[12])\\.(weight|bias)", "vision_model.encoder.layers.$1.mlp.$2.$3")));
        rules.addAll(List.of(rest));
        return new NameTable(format, rules);
    }

    /** A Hugging Face OPT folder ({@code facebook/opt-*}): OPTForCausalLM or bare OPTModel names. */
    public static final NameTable OPT = new NameTable("hf-opt", List.of(
            rename("(?:model\\.)?decoder\\.(.*)", "language_model.model.decoder.$1"),
            rename("lm_head\\.weight", "language_model.lm_head.weight")));

    /** A Hugging Face T5 folder ({@code google/flan-t5-*}). */
    public static final NameTable T5 = new NameTable("hf-t5", List.of(
            rename("(shared|encoder|decoder|lm_head)\\.(.*)", "language_model.$1.$2")));
}
