package dev.blip2dl4j.zoo;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.hub.Catalogue;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryCheckTest {
    @Test
    void estimatesTheWeightsAsStoredPlusAFifth() {
        assertEquals(48_000_000_000L, MemoryCheck.estimate(40_000_000_000L));
        Blip2Config xxlConfig = Blip2Config.knownLavisType("pretrain_flant5xxl");
        long xxl = ParameterLayout.of(xxlConfig).totalValues();
        long fp32 = MemoryCheck.weightBytes(xxlConfig, StoragePolicy.FLOAT32);
        assertEquals(4 * xxl, fp32);
        assertTrue(MemoryCheck.estimate(fp32) > 58e9 && MemoryCheck.estimate(fp32) < 60e9, "fp32 weights alone ~48.8 GB");
        long bf16 = MemoryCheck.weightBytes(xxlConfig, StoragePolicy.of(DType.BF16));
        long int8 = MemoryCheck.weightBytes(xxlConfig, StoragePolicy.of(DType.I8));
        assertTrue(bf16 > fp32 / 2 && bf16 < fp32 / 2 * 1.05, bf16 + ": half, but for the float32 tables and norms");
        assertTrue(int8 > fp32 / 4 && int8 < fp32 / 4 * 1.1, int8 + ": a quarter, the scales and float32 parts besides");
        long opt67 = MemoryCheck.weightBytes(Blip2Config.knownLavisType("pretrain_opt6.7b"), StoragePolicy.of(DType.I8));
        MemoryCheck machine24GiB = MemoryCheck.limit(24L << 30);
        assertTrue(machine24GiB.fits(int8) && machine24GiB.fits(opt67), "the largest models fit 24 GiB in int8");
        assertTrue(!machine24GiB.fits(fp32) && !machine24GiB.fits(
                MemoryCheck.weightBytes(Blip2Config.knownLavisType("pretrain_opt6.7b"), StoragePolicy.FLOAT32)));
    }

    @Test
    void refusesWhatDoesNotFitWithAdvice() {
        BadInputException e = assertThrows(BadInputException.class, () -> MemoryCheck.limit(16_000_000_000L)
                .require(48_800_000_000L, "blip2-flan-t5-xxl", "choose a smaller model such as blip2-opt-2.7b"));
        assertEquals("blip2-flan-t5-xxl needs about 58.6 GB of memory (its weights as stored, 48.8 GB, plus a fifth "
                + "for activations and caches), more than the 16.0 GB this machine has. To go on, choose a smaller "
                + "model such as blip2-opt-2.7b, store its weights in fewer bytes (blip2 convert or pull --dtype "
                + "bfloat16 halves float32, --dtype int8 quarters it; `blip2 models` shows each model's need per type), "
                + "or use a machine with more memory. --no-memory-check (MemoryCheck.OFF) loads it anyway, to run "
                + "slowly at best.", e.getMessage());
        MemoryCheck.OFF.require(48_800_000_000L, "blip2-flan-t5-xxl", "");
        assertTrue(MemoryCheck.system().availableBytes() > 0);
    }

    @Test
    void aModelByNameIsCheckedInTheTypeAskedAndTheRefusalNamesTheWidestTypeThatFits() {
        Catalogue catalogue = Catalogue.builtIn();
        CatalogueEntry opt67 = catalogue.require("blip2-opt-6.7b");
        CatalogueEntry xxl = catalogue.require("blip2-flan-t5-xxl");
        MemoryCheck machine24GiB = MemoryCheck.limit(24L << 30);

        machine24GiB.require("blip2-opt-6.7b", StoragePolicy.of(DType.I8), opt67::weightBytes, "choose another");
        BadInputException e = assertThrows(BadInputException.class, () -> machine24GiB.require("blip2-opt-6.7b",
                StoragePolicy.FLOAT32, opt67::weightBytes, "choose another"));
        assertTrue(e.getMessage().startsWith("blip2-opt-6.7b needs about 37.2 GB of memory stored as float32")
                && e.getMessage().contains("It fits with its weights stored as bfloat16, in about 19.4 GB: blip2 pull "
                + "blip2-opt-6.7b --dtype bfloat16 (Blip2.pretrained(\"blip2-opt-6.7b\", DType.BF16) in Java). Or "
                + "choose another, or use a machine with more memory."), e.getMessage());
        BadInputException xxlBf16 = assertThrows(BadInputException.class, () -> machine24GiB.require(
                "blip2-flan-t5-xxl", StoragePolicy.of(DType.BF16), xxl::weightBytes, "choose another"));
        assertTrue(xxlBf16.getMessage().contains("stored as bfloat16") && xxlBf16.getMessage().contains(
                "It fits with its weights stored as int8"), xxlBf16.getMessage());
        BadInputException tiny = assertThrows(BadInputException.class, () -> MemoryCheck.limit(1_000_000_000L)
                .require("blip2-flan-t5-xxl", StoragePolicy.of(DType.I8), xxl::weightBytes, "choose another"));
        assertTrue(tiny.getMessage().contains("It fits in no storage type (int8 needs about 1"), tiny.getMessage());
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
