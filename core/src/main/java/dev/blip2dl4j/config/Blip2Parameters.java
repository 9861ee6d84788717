package dev.blip2dl4j.config;

/**
 * The canonical names of the parameters a BLIP-2 model holds itself rather than in one of its parts (transformers'
 * {@code Blip2ForConditionalGeneration} and {@code Blip2ForImageTextRetrieval}), the only place they are spelled.
 * Linear names are prefixes, to which {@code .weight} and {@code .bias} belong. {@link ParameterLayout} gives
 * their shapes, in between the parts'.
 */
public final class Blip2Parameters {
    private static final String LANGUAGE_PROJECTION = "language_projection";
    /** The prefix both language models' tables (OptParameters, T5Parameters) spell their names under. */
    static final String LANGUAGE_MODEL = "language_model.";

    private Blip2Parameters() {
    }

    /** The learned queries {@code [1, queries, qformerHidden]}. */
    public static String queryTokens() {
        return "query_tokens";
    }

    /** The linear layer from the Q-Former's width to the language model's (conditional generation). */
    public static String languageProjection() {
        return LANGUAGE_PROJECTION;
    }

    /** The retrieval model's word embeddings of the Q-Former's text {@code [vocab, qformerHidden]}. */
    public static String textWordEmbeddings() {
        return "embeddings.word_embeddings.weight";
    }

    /** The retrieval model's absolute position embeddings of the Q-Former's text {@code [positions, qformerHidden]}. */
    public static String textPositionEmbeddings() {
        return "embeddings.position_embeddings.weight";
    }

    /** Image-text contrast: each query's output into the shared space. */
    public static String visionProjection() {
        return "vision_projection";
    }

    /** Image-text contrast: the text's [CLS] output into the shared space. */
    public static String textProjection() {
        return "text_projection";
    }

    /** Image-text matching's two-way classifier over the query outputs. */
    public static String itmHead() {
        return "itm_head";
    }

    /** Whether the parameter belongs to the language model (OPT or Flan-T5). */
    public static boolean inLanguageModel(String name) {
        return name.startsWith(LANGUAGE_MODEL);
    }

    /**
     * Whether stage-two training updates the parameter: the queries, the Q-Former and the language projection;
     * the image encoder and the language model stay frozen.
     */
    public static boolean trainedInStageTwo(String name) {
        return name.equals(queryTokens()) || QFormerParameters.contains(name)
                || name.startsWith(LANGUAGE_PROJECTION + ".");
    }
}
