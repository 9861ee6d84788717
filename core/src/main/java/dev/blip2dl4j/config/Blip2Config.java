package dev.blip2dl4j.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.JsonFields.Size;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * A whole BLIP-2 model as a Hugging Face {@code config.json} describes it (transformers 4.45.1
 * {@code Blip2Config}), with transformers' defaults for every key the file leaves out. This is the only
 * place that reads config JSON; everything downstream takes these records.
 *
 * <p>{@code use_decoder_only_language_model}, {@code tie_word_embeddings} and {@code is_encoder_decoder} are
 * not read: transformers derives them from the text config, whatever the file says, and so do
 * {@link #useDecoderOnlyLanguageModel()} and {@link #tieWordEmbeddings()}.
 *
 * @param imageTokenIndex the {@code <image>} token of configs saved since late 2024 (the processor then
 *                        inserts {@code numQueryTokens} of them), or null for the original layout, where
 *                        the model prepends the query outputs to the text
 * @param lavis           facts about the LAVIS model type for the configs we ship, null otherwise
 * @param json            the config text exactly as read: converters copy it into artifacts unchanged
 */
public record Blip2Config(
        ModelKind kind,
        VisionConfig vision,
        QFormerConfig qformer,
        TextConfig text,
        int numQueryTokens,
        int imageTextHiddenSize,
        Integer imageTokenIndex,
        LavisFacts lavis,
        String json) {

    /** LAVIS model types we ship a config for (LAVIS checkpoints come without one). */
    public static final List<String> KNOWN_LAVIS_TYPES = List.of(
            "pretrain_opt2.7b", "pretrain_opt6.7b", "caption_coco_opt2.7b", "caption_coco_opt6.7b",
            "pretrain_flant5xl", "pretrain_flant5xxl", "caption_coco_flant5xl",
            "pretrain", "coco");

    public static Blip2Config read(Path file) {
        return parse(TextConfig.readText(file), file);
    }

    /** Parses config.json text; forMessages names the file in errors and may be null. */
    public static Blip2Config parse(String json, Path forMessages) {
        JsonFields f = JsonFields.parse(json, forMessages);
        String modelType = f.string("model_type", "blip-2");
        if (!modelType.equals("blip-2")) {
            throw f.bad("model_type", "= \"" + modelType + "\": this is not a BLIP-2 config (expected \"blip-2\")");
        }
        VisionConfig vision = VisionConfig.from(f.object("vision_config"));
        return new Blip2Config(
                ModelKind.from(f),
                vision,
                QFormerConfig.from(f.object("qformer_config"), vision.hiddenSize()),
                TextConfig.from(f.object("text_config")),
                f.size("num_query_tokens", 32, Size.COUNT),
                f.size("image_text_hidden_size", 256, Size.WIDTH),
                f.tokenId("image_token_index", null),
                f.has("lavis") ? LavisFacts.from(f.object("lavis")) : null,
                json);
    }

    /**
     * The config we ship for a LAVIS model type ({@link #KNOWN_LAVIS_TYPES}): the Hugging Face config
     * transformers' own conversion gives that checkpoint, plus a {@code "lavis"} object.
     */
    public static Blip2Config knownLavisType(String name) {
        if (!KNOWN_LAVIS_TYPES.contains(name)) {
            throw new BadInputException("unknown LAVIS model type \"" + name + "\"; known types: "
                    + String.join(", ", KNOWN_LAVIS_TYPES));
        }
        String resource = "known/" + name + ".json";
        try (InputStream in = Blip2Config.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("resource " + resource + " is missing from the build");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), Path.of(resource));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** transformers: a language model type registered for causal LM, i.e. OPT here. */
    public boolean useDecoderOnlyLanguageModel() {
        return text.decoderOnly();
    }

    public boolean tieWordEmbeddings() {
        return text.tieWordEmbeddings();
    }

    /** This config with the language model of an LLM folder's config.json; see {@link #withTextConfig(String, Path)}. */
    public Blip2Config withTextConfig(Path llmConfig) {
        return withTextConfig(TextConfig.readText(llmConfig), llmConfig);
    }

    /**
     * This config with its text_config replaced by a standalone LLM config (the HF folder a LAVIS import is
     * combined with), in transformers' layout, so that {@link #json()} of the result is the config.json of
     * the combined model. LAVIS changes a few keys of the LLM's own config (OPT ends captions at "\n", its
     * Flan-T5 uses exact GELU); the configs we ship list them under {@code lavis.llm_config_overrides} and
     * they are applied on top of the LLM's file.
     */
    public Blip2Config withTextConfig(String llmConfigJson, Path forMessages) {
        TextConfig llm = TextConfig.parse(llmConfigJson, forMessages);
        ObjectNode textNode = JsonFields.tree(llmConfigJson, forMessages);
        ObjectNode combined = JsonFields.tree(json, null);
        JsonNode overrides = combined.path("lavis").path("llm_config_overrides");
        if (overrides.isObject()) {
            textNode.setAll((ObjectNode) overrides);
        }
        combined.set("text_config", textNode);
        combined.put("use_decoder_only_language_model", llm.decoderOnly());
        combined.put("is_encoder_decoder", !llm.decoderOnly());
        combined.put("tie_word_embeddings", llm.tieWordEmbeddings());
        return parse(pretty(combined), forMessages);
    }

    @Override
    public String toString() {
        return "Blip2Config[kind=" + kind + ", vision=" + vision + ", qformer=" + qformer + ", text=" + text
                + ", numQueryTokens=" + numQueryTokens + ", imageTextHiddenSize=" + imageTextHiddenSize
                + ", imageTokenIndex=" + imageTokenIndex + ", lavis=" + lavis + "]";
    }

    /** Two-space indented JSON with "key": value, the way transformers writes config.json. */
    private static String pretty(JsonNode node) {
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter()
                .withSeparators(Separators.createDefaultInstance()
                        .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(new DefaultIndenter("  ", "\n"));
        printer.indentArraysWith(new DefaultIndenter("  ", "\n"));
        try {
            return JsonFields.MAPPER.writer(printer).writeValueAsString(node) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree failed to print", e);
        }
    }
}
