package dev.blip2dl4j.zoo.text;

import dev.blip2dl4j.BadInputException;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A prompt with a place for the question: {@code {}}, as BLIP-2's templates are written ({@code Question: {}
 * Answer:}). The one syntax of every template we take ({@code blip2 vqa}, {@code finetune}, {@code eval}, the
 * library): the text holds {@code {}} exactly once, and every other character is text, a {@code %} included
 * ({@code 100% sure: {}}). What looks like another placeholder is refused rather than passed to the model as
 * text: a printf conversion ({@code %s}, {@code %d}, {@code %1$s}), or braces around a name or a number
 * ({@code {question}}, {@code {0}}); a brace alone, or braces around words with spaces, are text.
 */
public record PromptTemplate(String text) {
    private static final String PLACE = "{}";
    private static final Pattern PRINTF = Pattern.compile("%(\\d+\\$)?[sd]");
    private static final Pattern BRACES = Pattern.compile("\\{[^{}\\s]*}");

    public PromptTemplate {
        Matcher printf = PRINTF.matcher(text);
        if (printf.find()) {
            throw refused(text, "has " + printf.group() + ", a printf placeholder: write {} where the question goes");
        }
        int places = 0;
        Matcher braces = BRACES.matcher(text);
        while (braces.find()) {
            if (!braces.group().equals(PLACE)) {
                throw refused(text, "has " + braces.group() + ": the only placeholder is {}, the question");
            }
            places++;
        }
        if (places != 1) {
            throw refused(text, places == 0 ? "has no {} for the question" : "has {} " + places
                    + " times: the question goes in once");
        }
    }

    /** The prompt for {@code question}. */
    public String fill(String question) {
        int at = text.indexOf(PLACE);
        return text.substring(0, at) + question + text.substring(at + PLACE.length());
    }

    private static BadInputException refused(String text, String problem) {
        return new BadInputException("the prompt template '" + text + "' " + problem + " (e.g. 'Question: {} Answer:')");
    }
}
