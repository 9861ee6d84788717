package dev.blip2dl4j.graphs;

import dev.blip2dl4j.arrays.Weights;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.config.OptConfig;
import dev.blip2dl4j.config.T5Config;
import org.nd4j.autodiff.samediff.SDVariable;
import org.nd4j.autodiff.samediff.SameDiff;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A whole BLIP-2 model as one SameDiff graph, composed from its parts as transformers composes
 * {@code Blip2ForConditionalGeneration} and {@code Blip2ForImageTextRetrieval}. Every intermediate
 * output is named as reference bundles name it ({@code vision_last_hidden_state}, {@code logits}, ...),
 * so verifying a model is asking for the outputs a bundle has; running asks only for what it needs,
 * and SameDiff computes only the sub-graph those need.
 */
public final class Blip2Graph {
    /** {@code [batch, 3, size, size]} float pixel values. */
    public static final String PIXEL_VALUES = "pixel_values";
    /** {@code [batch, seq]} token ids (int64): the prompt for the LLM, or the caption for retrieval. */
    public static final String INPUT_IDS = "input_ids";
    /** {@code [batch, seq]}: 1 = token, 0 = padding. */
    public static final String ATTENTION_MASK = "attention_mask";
    /** {@code [batch, seq]} T5 decoder ids, starting with decoder_start_token_id. */
    public static final String DECODER_INPUT_IDS = "decoder_input_ids";

    private final Blip2Config config;
    private final SameDiff sd;
    private final Map<String, SDVariable> outputs = new LinkedHashMap<>();

    private Blip2Graph(Blip2Config config) {
        this.config = config;
        this.sd = Layers.newSameDiff();
    }

    public static Blip2Graph build(Blip2Config config, Weights weights) {
        Blip2Graph graph = new Blip2Graph(config);
        Layers nn = new Layers(graph.sd, weights);
        int size = config.vision().imageSize();
        SDVariable pixels = graph.sd.placeHolder(PIXEL_VALUES, DataType.FLOAT, -1, 3, size, size);
        VisionTransformer.Output vision = VisionTransformer.build(nn, config.vision(), pixels);
        graph.name("vision_last_hidden_state", vision.lastHiddenState());
        graph.name("vision_pooler_output", vision.pooledOutput());
        graph.name("vision_hidden_states", graph.sd.stack(0, vision.hiddenStates().toArray(SDVariable[]::new)));
        SDVariable ids = graph.sd.placeHolder(INPUT_IDS, DataType.INT64, -1, -1);
        SDVariable mask = graph.sd.placeHolder(ATTENTION_MASK, DataType.INT64, -1, -1);
        switch (config.kind()) {
            case CONDITIONAL_GENERATION -> graph.conditionalGeneration(nn, vision.lastHiddenState(), ids, mask);
            case IMAGE_TEXT_RETRIEVAL -> graph.retrieval(nn, vision.lastHiddenState(), ids, mask);
        }
        return graph;
    }

    private void conditionalGeneration(Layers nn, SDVariable imageEmbeds, SDVariable ids, SDVariable mask) {
        QFormer.Output qformer = QFormer.build(nn, config.qformer(), imageEmbeds);
        name("qformer_last_hidden_state", qformer.lastHiddenState());
        name("qformer_hidden_states", stack(qformer.hiddenStates()));
        LanguageModelInput input = languageModelInput(nn, config, qformer.lastHiddenState(), ids, mask);
        name("language_projection", input.projectedQueries());
        name("lm_inputs_embeds", input.embeds());
        if (config.text() instanceof OptConfig opt) {
            OptDecoder.Output lm = OptDecoder.build(nn, opt, input.embeds(), input.attentionMask());
            name("lm_hidden_states", stack(lm.hiddenStates()));
            // the logits of the text positions: the query positions' are never used
            SDVariable textPositions = nn.arange(nn.size(ids, 1)).add(config.numQueryTokens()).castTo(DataType.INT64);
            name("logits", sd.gather(lm.logits(), textPositions, 1));
        } else {
            SDVariable decoderIds = sd.placeHolder(DECODER_INPUT_IDS, DataType.INT64, -1, -1);
            T5.Output lm = T5.build(nn, (T5Config) config.text(), input.embeds(), input.attentionMask(), decoderIds);
            name("lm_encoder_last_hidden_state", lm.encoder().lastHiddenState());
            name("lm_encoder_hidden_states", stack(lm.encoder().hiddenStates()));
            name("lm_decoder_hidden_states", stack(lm.decoder().hiddenStates()));
            name("logits", lm.logits());
        }
    }

    /**
     * What BLIP-2 hands its language model.
     *
     * @param projectedQueries {@code language_projection} of the Q-Former's query outputs, {@code [batch, queries, width]}
     * @param embeds           the projected queries in front of the prompt's token embeddings
     * @param attentionMask    ones for the queries (always attended), then the prompt's mask, float
     */
    public record LanguageModelInput(SDVariable projectedQueries, SDVariable embeds, SDVariable attentionMask) {
    }

    /**
     * The language model's input from the Q-Former's output {@code [batch, queries, qformerHidden]}, the
     * prompt's ids and mask {@code [batch, seq]}: the 2023 hub layout, queries concatenated in front (the
     * current one writes them over {@code <image>} tokens).
     */
    public static LanguageModelInput languageModelInput(Layers nn, Blip2Config config, SDVariable qformerOutput,
                                                        SDVariable ids, SDVariable mask) {
        SameDiff sd = nn.sd();
        SDVariable projected = projectQueries(nn, config, qformerOutput);
        SDVariable queryMask = sd.onesLike(projected).mean(false, 2);
        SDVariable fullMask = sd.concat(1, queryMask, mask.castTo(DataType.FLOAT));
        SDVariable embeds = config.text() instanceof OptConfig
                ? OptDecoder.prependQueries(nn, projected, OptDecoder.embedTokens(nn, ids))
                : sd.concat(1, projected, T5.embedTokens(nn, ids));
        return new LanguageModelInput(projected, embeds, fullMask);
    }

    /**
     * {@code language_projection} of the Q-Former's query outputs {@code [batch, queries, qformerHidden]}: the
     * prefix the language model reads, {@code [batch, queries, width]}.
     */
    public static SDVariable projectQueries(Layers nn, Blip2Config config, SDVariable qformerOutput) {
        SameDiff sd = nn.sd();
        SDVariable rows = sd.reshape(qformerOutput, -1, config.qformer().hiddenSize());
        return sd.reshape(nn.linear(rows, Blip2Parameters.languageProjection()), -1, config.numQueryTokens(),
                config.text().hiddenSize());
    }

    private void retrieval(Layers nn, SDVariable imageEmbeds, SDVariable ids, SDVariable mask) {
        ImageTextRetrieval.Contrast contrast = ImageTextRetrieval.contrast(nn, config, imageEmbeds, ids, mask);
        name("qformer_query_last_hidden_state", contrast.image().qformerOutput());
        name("itc_image_embeds", contrast.image().embeds());
        name("itc_text_embeds", contrast.text().embeds());
        name("itc_logits_per_image", contrast.logitsPerImage());
        name("itc_logits_per_text", contrast.logitsPerText());
        // matching pairs image i with text i: feed as many images as texts
        ImageTextRetrieval.Matching matching = ImageTextRetrieval.matching(nn, config, imageEmbeds, ids, mask);
        name("itm_query_output", matching.qformerOutput());
        name("itm_logits", matching.logits());
    }

    private SDVariable stack(List<SDVariable> states) {
        return sd.stack(0, states.toArray(SDVariable[]::new));
    }

    private void name(String name, SDVariable variable) {
        outputs.put(name, sd.identity(name, variable));
    }

    public Blip2Config config() {
        return config;
    }

    public SameDiff sameDiff() {
        return sd;
    }

    /** The named outputs this model's graph has. */
    public Set<String> outputNames() {
        return outputs.keySet();
    }

    /** Runs the graph on {@code inputs} (placeholder name to array) for the named outputs. */
    public Map<String, INDArray> run(Map<String, INDArray> inputs, Collection<String> wanted) {
        return sd.output(inputs, List.copyOf(wanted));
    }
}
