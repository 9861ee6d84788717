package dev.blip2dl4j.zoo.generate;

import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every generation number bounded: negative, zero, absurd and not-a-number values are refused by name. */
class GenerationConfigTest {
    private static final GenerationConfig BASE = GenerationConfig.defaults(List.of(2L), 1L);

    @Test
    void absurdNumbersAreRefusedNamingTheSettingAndItsRange() {
        Map<String, UnaryOperator<GenerationConfig>> refused = Map.ofEntries(
                Map.entry("max_new_tokens (--max-new-tokens) must be from 1 to 4096, not -1", c -> c.withMaxNewTokens(-1)),
                Map.entry("max_new_tokens (--max-new-tokens) must be from 1 to 4096, not 0", c -> c.withMaxNewTokens(0)),
                Map.entry("max_new_tokens (--max-new-tokens) must be from 1 to 4096, not 1000000000", c -> c.withMaxNewTokens(1_000_000_000)),
                Map.entry("num_beams (--num-beams) must be from 1 to 64, not 5000", c -> c.withBeams(5000, 1)),
                Map.entry("num_beams (--num-beams) must be from 1 to 64, not 0", c -> c.withBeams(0, 1)),
                Map.entry("num_return_sequences (--num-return-sequences) must be from 1 to 2, not 3", c -> c.withBeams(2, 3)),
                Map.entry("num_return_sequences (--num-return-sequences) must be from 1 to 64, not 100",
                        c -> c.withSampling(true, 1, 50, 1, 0).withBeams(1, 100)),
                Map.entry("min_new_tokens (--min-new-tokens) must be from 0 to 5, not 6",
                        c -> c.withMaxNewTokens(5).withPenalties(1, 0, 6, 1, "false")),
                Map.entry("no_repeat_ngram_size (--no-repeat-ngram-size) must be from 0 to 4096, not -2",
                        c -> c.withPenalties(1, -2, 0, 1, "false")),
                Map.entry("temperature (--temperature) must be a finite number above 0, not NaN",
                        c -> c.withSampling(true, Double.NaN, 50, 1, 0)),
                Map.entry("temperature (--temperature) must be a finite number above 0, not 0.0",
                        c -> c.withSampling(true, 0, 50, 1, 0)),
                Map.entry("top_k (--top-k) must be from 0 to", c -> c.withSampling(true, 1, -1, 1, 0)),
                Map.entry("top_p (--top-p) must be in (0, 1], not NaN", c -> c.withSampling(true, 1, 50, Double.NaN, 0)),
                Map.entry("repetition_penalty (--repetition-penalty) must be a finite number above 0, not Infinity",
                        c -> c.withPenalties(Double.POSITIVE_INFINITY, 0, 0, 1, "false")),
                Map.entry("length_penalty (--length-penalty) must be a finite number, not NaN",
                        c -> c.withPenalties(1, 0, 0, Double.NaN, "false")));
        refused.forEach((message, change) -> {
            BadInputException e = assertThrows(BadInputException.class, () -> change.apply(BASE), message);
            assertTrue(e.getMessage().startsWith(message), e.getMessage());
        });
    }

    @Test
    void theBoundsThemselvesAreAccepted() {
        assertEquals(GenerationConfig.MAX_TOKENS, BASE.withMaxNewTokens(GenerationConfig.MAX_TOKENS).maxNewTokens());
        assertEquals(GenerationConfig.MAX_BEAMS, BASE.withBeams(GenerationConfig.MAX_BEAMS, GenerationConfig.MAX_BEAMS).numBeams());
        assertEquals(1, BASE.withMaxNewTokens(1).maxNewTokens());
    }

    @Test
    void aGenerationConfigJsonOutOfBoundsIsNamed() {
        BadInputException e = assertThrows(BadInputException.class,
                () -> GenerationConfig.parse("{\"num_beams\": 100000, \"max_length\": 30}", BASE));
        assertTrue(e.getMessage().startsWith("generation_config.json: num_beams"), e.getMessage());
        assertEquals(30, GenerationConfig.parse("{\"num_beams\": 5, \"max_length\": 30}", BASE).maxLength());
    }
}
