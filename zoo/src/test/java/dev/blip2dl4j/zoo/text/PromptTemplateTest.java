package dev.blip2dl4j.zoo.text;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One placeholder syntax, {}; a % on its own is text; anything else placeholder-like is refused by name. */
class PromptTemplateTest {
    @Test
    void theQuestionGoesWhereTheBracesAre() {
        assertEquals("Question: café? Answer:", new PromptTemplate("Question: {} Answer:").fill("café?"));
        assertEquals("café?", new PromptTemplate("{}").fill("café?"));
        assertEquals("100% sure: what? 50%", new PromptTemplate("100% sure: {} 50%").fill("what?"));
        assertEquals("a {} b", new PromptTemplate("a {} b").fill("{}"), "the question is not read as a template");
        assertEquals("%s?", new PromptTemplate("{}?").fill("%s"), "nor formatted");
        assertEquals("open { or close }: x", new PromptTemplate("open { or close }: {}").fill("x"), "lone braces are text");
    }

    @Test
    void everyOtherPlaceholderIsRefusedByName() {
        Map<String, String> refused = Map.of(
                "Q: %s %s", "has %s, a printf placeholder",
                "%d", "has %d, a printf placeholder",
                "100% %s", "has %s, a printf placeholder",
                "Q: {} %1$s", "has %1$s, a printf placeholder",
                "Question: {question} Answer:", "has {question}: the only placeholder is {}",
                "Q: {0}", "has {0}: the only placeholder is {}",
                "Q: {} {}", "has {} 2 times",
                "Question: Answer:", "has no {} for the question",
                "", "has no {} for the question");
        refused.forEach((template, problem) -> {
            BadInputException e = assertThrows(BadInputException.class, () -> new PromptTemplate(template), template);
            assertTrue(e.getMessage().startsWith("the prompt template '" + template + "' " + problem), e.getMessage());
        });
    }
}
