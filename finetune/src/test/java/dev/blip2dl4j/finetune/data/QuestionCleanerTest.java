package dev.blip2dl4j.finetune.data;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** LAVIS's blip_question: lower case, . ! " ( ) * # : ; ~ removed, trailing spaces dropped, at most N words. */
class QuestionCleanerTest {
    @Test
    void cleansAsLavisDoes() {
        QuestionCleaner cleaner = new QuestionCleaner(QuestionCleaner.DEFAULT_MAX_WORDS);
        assertEquals("what color is the square?", cleaner.clean("What color is the square?"));
        assertEquals("whats in the box", cleaner.clean("Whats in the box!"));
        assertEquals("is it big or small", cleaner.clean("Is it (big) or *small*..."));
        assertEquals("say hi", cleaner.clean("\"Say\": hi;~#   "));
        assertEquals("  leading stays", cleaner.clean("  Leading stays"), "only trailing spaces go");
        assertEquals("what's this, sir?", cleaner.clean("What's this, sir?"), "commas, apostrophes and ? stay");
    }

    @Test
    void cutsToMaxWordsCountingEmptyWordsAsPythonsSplitDoes() {
        QuestionCleaner three = new QuestionCleaner(3);
        assertEquals("one two three", three.clean("One two three four five"));
        assertEquals("one  two", three.clean("one  two three"), "the double space is an empty word");
        assertEquals("short", three.clean("short"));
        assertThrows(IllegalArgumentException.class, () -> new QuestionCleaner(0));
    }
}
