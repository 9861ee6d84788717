package dev.blip2dl4j.finetune.eval;

import org.junit.jupiter.api.Test;

import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The official VQA evaluation's normalisation and accuracy (vqaEval.py), on the cases its README and code name. */
class VqaAccuracyTest {
    @Test
    void numberWordsArticlesContractionsAndCase() {
        assertEquals("2", VqaAnswerNormalizer.prediction("two"));
        assertEquals("2 dogs", VqaAnswerNormalizer.prediction("Two dogs"));
        assertEquals("dog", VqaAnswerNormalizer.prediction("a dog"));
        assertEquals("dog", VqaAnswerNormalizer.prediction("The dog"));
        assertEquals("apple", VqaAnswerNormalizer.prediction("an apple"));
        assertEquals("0", VqaAnswerNormalizer.prediction("none"));
        assertEquals("10", VqaAnswerNormalizer.prediction("ten"));
        assertEquals("eleven", VqaAnswerNormalizer.prediction("eleven"), "only zero to ten become digits");
        assertEquals("don't know", VqaAnswerNormalizer.prediction("dont know"));
        assertEquals("isn't", VqaAnswerNormalizer.prediction("isnt"));
        assertEquals("yes", VqaAnswerNormalizer.prediction("  Yes\n"));
    }

    @Test
    void punctuationIsDeletedNextToSpacesAndOtherwiseASpace() {
        assertEquals("yes", VqaAnswerNormalizer.prediction("yes!"));
        assertEquals("yes", VqaAnswerNormalizer.prediction("yes."));
        assertEquals("red white", VqaAnswerNormalizer.prediction("red, white"), "comma before a space: deleted");
        assertEquals("red white", VqaAnswerNormalizer.prediction("red/white"), "slash between words: a space");
        assertEquals("t shirt", VqaAnswerNormalizer.prediction("t-shirt"));
        assertEquals("1000", VqaAnswerNormalizer.prediction("1,000"), "digit, comma, digit: every mark deleted");
        assertEquals("3.5", VqaAnswerNormalizer.prediction("3.5"), "a period before a digit stays");
        assertEquals("what", VqaAnswerNormalizer.prediction("what?"));
    }

    @Test
    void accuracyIsMinOfMatchesOverThreeAveragedOverTheTenLeaveOneOutSets() {
        List<String> tenTimesYes = Collections.nCopies(10, "yes");
        assertEquals(1.0, VqaAccuracy.accuracy("yes", tenTimesYes), 1e-12);
        assertEquals(0.0, VqaAccuracy.accuracy("no", tenTimesYes), 1e-12);

        // 3 of 10 humans said "2": the 3 sets leaving one of them out have 2 matches (2/3), the other 7 have 3 (1)
        List<String> threeSaidTwo = List.of("2", "2", "2", "3", "3", "3", "3", "3", "4", "4");
        assertEquals((3 * 2.0 / 3 + 7 * 1.0) / 10, VqaAccuracy.accuracy("two", threeSaidTwo), 1e-12);
        // 2 of 10: sets leaving one of them out have 1 (1/3), the other 8 have 2 (2/3)
        List<String> twoSaidFour = threeSaidTwo;
        assertEquals((2 * 1.0 / 3 + 8 * 2.0 / 3) / 10, VqaAccuracy.accuracy("four", twoSaidFour), 1e-12);
        // 1 of 10: 9 sets hold it once
        assertEquals(9 * (1.0 / 3) / 10, VqaAccuracy.accuracy("a dog", List.of("dog", "cat", "cat", "cat", "cat",
                "cat", "cat", "cat", "cat", "cat")), 1e-12);
        // 4 or more agreeing humans score the full point
        assertEquals(1.0, VqaAccuracy.accuracy("the cat", List.of("cat", "cat", "cat", "cat", "dog", "dog", "dog",
                "dog", "dog", "dog")), 1e-12);
    }

    @Test
    void humanAnswersGetPunctuationOnlyAndOnlyWhenTheyDiffer() {
        // punctuation is stripped from human answers that differ from each other ...
        assertEquals(1.0, VqaAccuracy.accuracy("yes", List.of("yes.", "yes.", "yes.", "yes.", "no")), 1e-12);
        // ... as the script strips it: "!" not next to a space becomes a space, which then never matches
        assertEquals(0.0, VqaAccuracy.accuracy("yes", List.of("yes!", "yes!", "yes!", "yes!", "no")), 1e-12);
        assertEquals(1.0, VqaAccuracy.accuracy("yes", List.of(" yes\n", "yes", "yes", "yes", "no")), 1e-12);
        // ... but articles are not removed from them, so "a dog" as a human answer never matches (as in the script)
        assertEquals(0.0, VqaAccuracy.accuracy("a dog", List.of("a dog", "a dog", "a dog", "cat")), 1e-12);
    }

    @Test
    void aSingleAnswerScoresAsExactMatch() {
        assertEquals(1.0, VqaAccuracy.accuracy("Two.", List.of("2")), 1e-12);
        assertEquals(0.0, VqaAccuracy.accuracy("three", List.of("2")), 1e-12);
        assertTrue(VqaAccuracy.exactMatch("The Red", "red"));
        assertFalse(VqaAccuracy.exactMatch("dark red", "red"));
    }
}
