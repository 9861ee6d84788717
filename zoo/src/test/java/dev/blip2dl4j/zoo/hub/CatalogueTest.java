package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ModelKind;
import dev.blip2dl4j.config.ParameterLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The shipped catalogue: every released BLIP-2, well-formed, honest about what it could not check. */
class CatalogueTest {
    private static final Catalogue BUILT_IN = Catalogue.builtIn();
    private static final URI HUB = URI.create("https://huggingface.co");

    @Test
    void listsEveryReleasedBlip2() {
        Set<String> names = BUILT_IN.models().stream().map(CatalogueEntry::name).collect(Collectors.toSet());
        assertEquals(Set.of("blip2-opt-2.7b", "blip2-opt-6.7b", "blip2-opt-2.7b-coco", "blip2-opt-6.7b-coco",
                "blip2-flan-t5-xl", "blip2-flan-t5-xl-coco", "blip2-flan-t5-xxl", "blip2-itm-vit-g", "blip2-itm-vit-g-coco",
                "lavis-pretrain_opt2.7b", "lavis-caption_coco_opt2.7b", "lavis-pretrain_opt6.7b", "lavis-caption_coco_opt6.7b",
                "lavis-pretrain_flant5xl", "lavis-caption_coco_flant5xl", "lavis-pretrain_flant5xxl", "lavis-pretrain",
                "lavis-coco"), names);
    }

    @Test
    void everyEntryIsConsistentWithItsArchitecture() {
        for (CatalogueEntry entry : BUILT_IN.models()) {
            Blip2Config config = Blip2Config.knownLavisType(entry.architecture());
            boolean matching = config.kind() == ModelKind.IMAGE_TEXT_RETRIEVAL;
            assertEquals(matching ? List.of("match") : List.of("caption", "vqa"), entry.tasks(), entry.name());
            assertTrue(entry.parameterCount() > 1_000_000_000L, entry.name());
            if (entry.lavisType() != null) {
                assertEquals(entry.lavisType(), entry.architecture(), entry.name());
                assertTrue(entry.sources().get(0).url().startsWith(
                        "https://storage.googleapis.com/sfr-vision-language-research/LAVIS/models/BLIP2/"), entry.name());
                assertEquals(config.lavis().checkpoint(), entry.sources().get(0).url(), "the URL LAVIS's config names");
            }
        }
    }

    @Test
    void whatIsNotPinnedOrNotCheckedIsSaidInTheEntry() {
        for (CatalogueEntry entry : BUILT_IN.models()) {
            String unverified = String.join(" ", entry.unverified());
            for (RemoteSource source : entry.sources()) {
                if (source.isRepo() && !source.revision().matches("[0-9a-f]{40}")) {
                    assertTrue(unverified.contains("not pinned"), entry.name() + ": " + source);
                }
                for (RemoteFile file : source.files()) {
                    if (file.sha256() == null && !file.optional() && file.displaySize() > 100_000_000L) {
                        assertTrue(unverified.contains("SHA-256"), entry.name() + ": " + file.path());
                    }
                }
            }
        }
    }

    @Test
    void theLargestModelNeedsFarMoreThanItsParameters() {
        CatalogueEntry xxl = BUILT_IN.require("blip2-flan-t5-xxl");
        assertEquals(12.2e9, xxl.parameterCount(), 0.1e9, "fp32 ~48 GB of weights");
        assertEquals("blip2-opt-6.7b-coco", BUILT_IN.largestFitting(xxl.tasks(), p -> p < 8e9).orElseThrow().name(),
                "the largest captioner under 8 billion parameters (ties go to the first listed)");
    }

    @Test
    void urlsAreHubResolveUrlsOrTheMirroredOriginal() {
        CatalogueEntry entry = BUILT_IN.require("lavis-pretrain_opt2.7b");
        RemoteSource pth = entry.sources().get(0);
        RemoteSource llm = entry.sources().get(2);
        URI mirror = URI.create("http://mirror.example:8080/files");
        assertEquals(URI.create(pth.url()), pth.uri(pth.files().get(0), HUB, null));
        assertEquals(URI.create("http://mirror.example:8080/files/sfr-vision-language-research/LAVIS/models/BLIP2/blip2_pretrained_opt2.7b.pth"),
                pth.uri(pth.files().get(0), HUB, mirror));
        assertEquals(URI.create("https://hf-mirror.example/facebook/opt-2.7b/resolve/397f71a473a150c00f0fe3fc4a2f78ff3ccaf82d/config.json"),
                llm.uri(llm.files().get(0), URI.create("https://hf-mirror.example/"), mirror));
    }

    @Test
    void theTinyCatalogueCountsTheFixturesParameters() {
        Catalogue tiny = Catalogue.read(Fixtures.root().resolve("hub/catalogue.json"));
        for (String model : List.of("opt", "itm")) {
            Blip2Config config = Blip2Config.read(Fixtures.root().resolve("blip2-tiny-" + model + "/config.json"));
            assertEquals(ParameterLayout.of(config).totalValues(), tiny.require("tiny-" + model).parameterCount(), model);
        }
    }

    @Test
    void aBrokenCatalogueFileIsABadInput(@TempDir Path dir) throws IOException {
        Path file = Files.writeString(dir.resolve("c.json"), "{\"format\": \"blip2-dl4j-catalogue\", \"version\": 1, \"models\": ["
                + "{\"name\": \"Bad Name\", \"parameters\": 1, \"sources\": [{\"url\": \"http://x/y\", \"files\": [{\"path\": \"y\"}]}]}]}");
        BadInputException e = assertThrows(BadInputException.class, () -> Catalogue.read(file));
        assertTrue(e.getMessage().contains("'Bad Name'"), e.getMessage());

        Files.writeString(file, "{\"format\": \"blip2-dl4j-catalogue\", \"version\": 1, \"models\": ["
                + "{\"name\": \"x\", \"parameters\": 1, \"sources\": [{\"repo\": \"a/b\", \"revision\": \"main\", \"files\": [{\"path\": \"../y\"}]}]}]}");
        e = assertThrows(BadInputException.class, () -> Catalogue.read(file));
        assertTrue(e.getMessage().contains("stay in its folder"), e.getMessage());
    }
}
