package dev.blip2dl4j.finetune.eval;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The official VQA evaluation's answer normalisation (vqaEval.py, as LAVIS ships it in
 * lavis/common/vqa_tools/vqa_eval.py), quirks included, since the published accuracies are computed with
 * them:
 * <ul>
 * <li>punctuation: each of {@code ; / [ ] " { } ( ) = + \ _ - > < @ ` , ? !} is deleted where the text has it
 *     next to a space or holds a digit-comma-digit anywhere, and otherwise becomes a space (both decided on
 *     the text before any replacement); then periods not followed by a digit are deleted, at most 32 of them
 *     (the script passes {@code re.UNICODE} where {@code re.sub} takes its count);</li>
 * <li>digits and articles: lower case, split on white space, number words zero to ten (and "none") become
 *     digits, "a", "an", "the" are dropped, apostrophe-less contractions get their apostrophes.</li>
 * </ul>
 */
public final class VqaAnswerNormalizer {
    private static final List<String> PUNCTUATION = List.of(";", "/", "[", "]", "\"", "{", "}", "(", ")", "=", "+",
            "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!");
    /** As written in the script: the "(?!<=\d)" was meant as a look-behind and is a look-ahead that always holds. */
    private static final Pattern PERIOD = Pattern.compile("(?!<=\\d)(\\.)(?!\\d)");
    private static final Pattern DIGIT_COMMA_DIGIT = Pattern.compile("(\\d)(,)(\\d)");
    private static final int PERIOD_REPLACEMENTS = 32;
    private static final List<String> ARTICLES = List.of("a", "an", "the");
    private static final Map<String, String> NUMBERS = Map.ofEntries(Map.entry("none", "0"), Map.entry("zero", "0"),
            Map.entry("one", "1"), Map.entry("two", "2"), Map.entry("three", "3"), Map.entry("four", "4"),
            Map.entry("five", "5"), Map.entry("six", "6"), Map.entry("seven", "7"), Map.entry("eight", "8"),
            Map.entry("nine", "9"), Map.entry("ten", "10"));
    private static final Map<String, String> CONTRACTIONS = contractions();

    private VqaAnswerNormalizer() {
    }

    /** A predicted answer as the evaluation compares it: line breaks and tabs to spaces, trimmed, both steps. */
    public static String prediction(String answer) {
        return digitsAndArticles(punctuation(whitespace(answer)));
    }

    /** Line breaks and tabs to spaces, trimmed: what the script does to every answer first. */
    public static String whitespace(String answer) {
        return answer.replace('\n', ' ').replace('\t', ' ').strip();
    }

    /** {@code processPunctuation}. */
    public static String punctuation(String text) {
        String out = text;
        boolean digitCommaDigit = DIGIT_COMMA_DIGIT.matcher(text).find();
        for (String p : PUNCTUATION) {
            boolean deleted = text.contains(p + " ") || text.contains(" " + p) || digitCommaDigit;
            out = out.replace(p, deleted ? "" : " ");
        }
        Matcher m = PERIOD.matcher(out);
        StringBuilder result = new StringBuilder();
        int replaced = 0;
        while (replaced < PERIOD_REPLACEMENTS && m.find()) {
            m.appendReplacement(result, "");
            replaced++;
        }
        m.appendTail(result);
        return result.toString();
    }

    /** {@code processDigitArticle}. */
    public static String digitsAndArticles(String text) {
        String trimmed = text.toLowerCase(Locale.ROOT).strip();
        List<String> words = new ArrayList<>();
        if (!trimmed.isEmpty()) {
            for (String word : trimmed.split("\\s+")) {
                String w = NUMBERS.getOrDefault(word, word);
                if (!ARTICLES.contains(w)) {
                    words.add(CONTRACTIONS.getOrDefault(w, w));
                }
            }
        }
        return String.join(" ", words);
    }

    private static Map<String, String> contractions() {
        String[] pairs = {
                "aint", "ain't", "arent", "aren't", "cant", "can't", "couldve", "could've", "couldnt", "couldn't",
                "couldn'tve", "couldn't've", "couldnt've", "couldn't've", "didnt", "didn't", "doesnt", "doesn't",
                "dont", "don't", "hadnt", "hadn't", "hadnt've", "hadn't've", "hadn'tve", "hadn't've", "hasnt", "hasn't",
                "havent", "haven't", "hed", "he'd", "hed've", "he'd've", "he'dve", "he'd've", "hes", "he's",
                "howd", "how'd", "howll", "how'll", "hows", "how's", "Id've", "I'd've", "I'dve", "I'd've", "Im", "I'm",
                "Ive", "I've", "isnt", "isn't", "itd", "it'd", "itd've", "it'd've", "it'dve", "it'd've", "itll", "it'll",
                "let's", "let's", "maam", "ma'am", "mightnt", "mightn't", "mightnt've", "mightn't've",
                "mightn'tve", "mightn't've", "mightve", "might've", "mustnt", "mustn't", "mustve", "must've",
                "neednt", "needn't", "notve", "not've", "oclock", "o'clock", "oughtnt", "oughtn't",
                "ow's'at", "'ow's'at", "'ows'at", "'ow's'at", "'ow'sat", "'ow's'at", "shant", "shan't",
                "shed've", "she'd've", "she'dve", "she'd've", "she's", "she's", "shouldve", "should've",
                "shouldnt", "shouldn't", "shouldnt've", "shouldn't've", "shouldn'tve", "shouldn't've",
                "somebody'd", "somebodyd", "somebodyd've", "somebody'd've", "somebody'dve", "somebody'd've",
                "somebodyll", "somebody'll", "somebodys", "somebody's", "someoned", "someone'd",
                "someoned've", "someone'd've", "someone'dve", "someone'd've", "someonell", "someone'll",
                "someones", "someone's", "somethingd", "something'd", "somethingd've", "something'd've",
                "something'dve", "something'd've", "somethingll", "something'll", "thats", "that's",
                "thered", "there'd", "thered've", "there'd've", "there'dve", "there'd've", "therere", "there're",
                "theres", "there's", "theyd", "they'd", "theyd've", "they'd've", "they'dve", "they'd've",
                "theyll", "they'll", "theyre", "they're", "theyve", "they've", "twas", "'twas", "wasnt", "wasn't",
                "wed've", "we'd've", "we'dve", "we'd've", "weve", "we've", "werent", "weren't", "whatll", "what'll",
                "whatre", "what're", "whats", "what's", "whatve", "what've", "whens", "when's", "whered", "where'd",
                "wheres", "where's", "whereve", "where've", "whod", "who'd", "whod've", "who'd've", "who'dve", "who'd've",
                "wholl", "who'll", "whos", "who's", "whove", "who've", "whyll", "why'll", "whyre", "why're",
                "whys", "why's", "wont", "won't", "wouldve", "would've", "wouldnt", "wouldn't",
                "wouldnt've", "wouldn't've", "wouldn'tve", "wouldn't've", "yall", "y'all", "yall'll", "y'all'll",
                "y'allll", "y'all'll", "yall'd've", "y'all'd've", "y'alld've", "y'all'd've", "y'all'dve", "y'all'd've",
                "youd", "you'd", "youd've", "you'd've", "you'dve", "you'd've", "youll", "you'll",
                "youre", "you're", "youve", "you've"};
        Map<String, String> map = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            map.put(pairs[i], pairs[i + 1]);
        }
        return Map.copyOf(map);
    }
}
