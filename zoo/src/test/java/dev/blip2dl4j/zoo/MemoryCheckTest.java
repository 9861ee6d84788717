package dev.blip2dl4j.zoo;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.Converter;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryCheckTest {
    @Test
    void estimatesFloat32WeightsPlusAFifth() {
        assertEquals(48_000_000_000L, MemoryCheck.estimate(10_000_000_000L));
        long xxl = ParameterLayout.of(Blip2Config.knownLavisType("pretrain_flant5xxl")).totalValues();
        assertTrue(MemoryCheck.estimate(xxl) > 58e9 && MemoryCheck.estimate(xxl) < 60e9, "fp32 weights alone ~48.8 GB");
    }

    @Test
    void refusesWhatDoesNotFitWithAdvice() {
        BadInputException e = assertThrows(BadInputException.class, () -> MemoryCheck.limit(16_000_000_000L)
                .require(12_200_000_000L, "blip2-flan-t5-xxl", "choose a smaller model such as blip2-opt-2.7b"));
        assertEquals("blip2-flan-t5-xxl needs about 58.6 GB of memory (12.20 billion parameters computed in float32, "
                + "plus a fifth for activations and caches), more than the 16.0 GB this machine has. To go on, choose a "
                + "smaller model such as blip2-opt-2.7b, or use a machine with more memory. Storing the weights in half "
                + "precision (blip2 convert --dtype float16) halves the download and the disk but not this: the CPU "
                + "computes in float32. --no-memory-check (MemoryCheck.OFF) loads it anyway, to run slowly at best.",
                e.getMessage());
        MemoryCheck.OFF.require(12_200_000_000L, "blip2-flan-t5-xxl", "");
        assertTrue(MemoryCheck.system().availableBytes() > 0);
    }

    @Test
    void loadingChecksBeforeReadingAnyWeight() {
        Path tiny = Fixtures.root().resolve("blip2-tiny-opt");
        BadInputException e = assertThrows(BadInputException.class,
                () -> Blip2.load(List.of(tiny), Converter.Options.defaults(), MemoryCheck.limit(1_000)));
        assertTrue(e.getMessage().startsWith(tiny + " needs about"), e.getMessage());
        try (Blip2 blip2 = Blip2.load(List.of(tiny), Converter.Options.defaults(), MemoryCheck.system())) {
            assertEquals(8, blip2.config().numQueryTokens());
        }
    }
}
