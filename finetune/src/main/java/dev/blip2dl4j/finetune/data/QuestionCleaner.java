package dev.blip2dl4j.finetune.data;

import java.util.Arrays;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * LAVIS's {@code blip_question} text processor (BlipQuestionProcessor.pre_question), applied to every
 * question before it goes into the prompt, in training and evaluation alike: lower case, the characters
 * {@code . ! " ( ) * # : ; ~} removed, trailing spaces dropped, then at most {@code maxWords} words
 * (split on single spaces, as Python's {@code str.split(" ")}).
 */
public final class QuestionCleaner {
    /** LAVIS's default {@code max_words}. */
    public static final int DEFAULT_MAX_WORDS = 50;
    private static final Pattern PUNCTUATION = Pattern.compile("[.!\"()*#:;~]");

    private final int maxWords;

    public QuestionCleaner(int maxWords) {
        if (maxWords < 1) {
            throw new IllegalArgumentException("max words must be at least 1, not " + maxWords);
        }
        this.maxWords = maxWords;
    }

    public String clean(String question) {
        String q = PUNCTUATION.matcher(question.toLowerCase(Locale.ROOT)).replaceAll("");
        int end = q.length();
        while (end > 0 && q.charAt(end - 1) == ' ') {
            end--;
        }
        q = q.substring(0, end);
        // split(" ", -1) keeps empty words between double spaces, as Python's split(" ") does
        String[] words = q.split(" ", -1);
        return words.length > maxWords ? String.join(" ", Arrays.copyOf(words, maxWords)) : q;
    }
}
