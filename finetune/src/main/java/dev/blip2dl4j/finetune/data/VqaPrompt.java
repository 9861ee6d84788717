package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.text.PromptTemplate;
import dev.blip2dl4j.zoo.text.Tokenizer;

/**
 * The prompt a question becomes, in training and in evaluation alike: the question cleaned as LAVIS's
 * {@code blip_question} does, put into a template with {@code {}} (by default the one {@code blip2 vqa}
 * uses: {@code Question: {} Answer:} for OPT, {@code Question: {} Short answer:} for Flan-T5).
 */
public record VqaPrompt(PromptTemplate template, QuestionCleaner cleaner) {
    /**
     * What ends every answer an OPT model is trained on (LAVIS's Blip2OPT appends it to each training text and
     * stops generating at it: its {@code eos_token_id}): a fine-tuned OPT ends its answers here, not at {@code </s>}.
     */
    public static final String OPT_ANSWER_END = "\n";

    /** The token id of {@link #OPT_ANSWER_END}: the first after what the tokenizer puts in front of any text ({@code </s>}). */
    public static long optAnswerEndId(Tokenizer tokenizer) {
        long[] prefix = tokenizer.encode("");
        return tokenizer.encode(OPT_ANSWER_END)[prefix.length];
    }

    /** The model's default template, or {@code template} when it is not null. */
    public static VqaPrompt of(Blip2 model, String template, int maxQuestionWords) {
        PromptTemplate t = template != null ? new PromptTemplate(template)
                : model.config().useDecoderOnlyLanguageModel() ? Blip2.OPT_QUESTION_TEMPLATE : Blip2.T5_QUESTION_TEMPLATE;
        return new VqaPrompt(t, new QuestionCleaner(maxQuestionWords));
    }

    /** The prompt of a question; a caption row's empty question has none. */
    public String format(String question) {
        return question.isEmpty() ? "" : template.fill(cleaner.clean(question));
    }
}
