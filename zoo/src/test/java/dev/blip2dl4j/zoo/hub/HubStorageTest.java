package dev.blip2dl4j.zoo.hub;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.config.Blip2Parameters;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.Blip2;
import dev.blip2dl4j.zoo.MemoryCheck;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pulling a model by name in a storage type: converted straight into it, cached once per type, removed per type. */
class HubStorageTest {
    private static final String WEIGHTS = "model.safetensors";
    private static final StoragePolicy INT8 = StoragePolicy.of(DType.I8);

    @TempDir
    Path cache;
    private LoopbackHub server;

    @BeforeEach
    void start() throws IOException {
        server = new LoopbackHub();
    }

    @AfterEach
    void stop() {
        server.close();
    }

    private static Map<String, String> dtypes(Path artifact) {
        try (Artifact a = Artifact.open(artifact)) {
            return a.manifest().tensors().stream().collect(Collectors.toMap(Manifest.Tensor::name, Manifest.Tensor::dtype,
                    (x, y) -> x, TreeMap::new));
        }
    }

    @Test
    void eachStorageTypeIsConvertedStraightFromTheDownloadIntoItsOwnArtifact() {
        Hub hub = server.hub(cache);
        Path int8 = hub.pull("tiny-opt", INT8, PullListener.NONE);

        assertEquals(cache.resolve("tiny-opt@int8.b2z"), int8);
        assertFalse(Files.exists(cache.resolve("tiny-opt.b2z")), "no float32 artifact on the way");
        assertFalse(Files.exists(cache.resolve("downloads/tiny-opt")), "the raw files are deleted once converted");
        Map<String, String> types = dtypes(int8);
        String lmProduct = "language_model.model.decoder.layers.0.fc1.weight";
        assertEquals("I8", types.get(lmProduct));
        assertEquals("F32", types.get("language_model.model.decoder.layers.0.fc1.bias"), "biases stay float32");
        types.forEach((name, type) -> assertTrue(type.equals("F32") || !Blip2Parameters.trainedInStageTwo(name),
                name + " is trained in stage two and stays float32"));

        Path float32 = hub.pull("tiny-opt", PullListener.NONE);
        assertEquals(cache.resolve("tiny-opt.b2z"), float32);
        assertEquals("F32", dtypes(float32).get(lmProduct));
        assertEquals(2, server.requestsFor(WEIGHTS).size(), "each type converted from the publisher's files");
        Path mixed = hub.pull("tiny-opt", INT8.withVision(DType.BF16), PullListener.NONE);
        assertEquals(cache.resolve("tiny-opt@vision-bfloat16.lm-int8.b2z"), mixed);
        assertEquals("BF16", dtypes(mixed).get("vision_model.encoder.layers.0.mlp.fc1.weight"));

        assertEquals(List.of("float32", "int8", "vision-bfloat16.lm-int8"), List.copyOf(hub.cache().artifacts(
                LoopbackHub.catalogue().require("tiny-opt")).keySet()), "float32 first, then the others by name");
        assertEquals(int8, hub.pull("tiny-opt", INT8, PullListener.NONE));
        assertEquals(3, server.requestsFor(WEIGHTS).size(), "a cached type is not pulled again");
    }

    @Test
    void removingOneTypeKeepsTheOthersAndRemovingTheModelTakesEveryType() throws Exception {
        Hub hub = new Hub(LoopbackHub.catalogue(), server.hub(cache).settings().withKeepSource(true));
        Path float32 = hub.pull("tiny-itm", PullListener.NONE);
        Path bf16 = hub.pull("tiny-itm", StoragePolicy.of(DType.BF16), PullListener.NONE);
        assertEquals(1, server.requestsFor(WEIGHTS).size(), "the kept download is converted again, not fetched");

        assertTrue(hub.remove("tiny-itm", StoragePolicy.of(DType.BF16), m -> { }));
        assertFalse(Files.exists(bf16));
        assertTrue(Files.exists(float32) && Files.exists(cache.resolve("downloads/tiny-itm")));
        assertFalse(hub.remove("tiny-itm", StoragePolicy.of(DType.BF16), m -> { }), "nothing left of that type");

        Process killed = new ProcessBuilder("sleep", "60").start();
        killed.destroyForcibly().waitFor();
        Path left = Files.write(cache.resolve(".tiny-itm@int8.b2z." + killed.pid() + ".partial"), new byte[1000]);
        assertTrue(hub.remove("tiny-itm", m -> { }));
        assertFalse(Files.exists(float32) || Files.exists(left) || Files.exists(cache.resolve("downloads/tiny-itm")),
                "every type, what a killed int8 conversion left, and the downloads");
    }

    @Test
    void eachPolicyHasItsOwnNameAndNoModelNameMeetsAnother() {
        CatalogueEntry opt = LoopbackHub.catalogue().require("tiny-opt");
        ModelCache models = new ModelCache(cache);
        assertEquals("float32", ModelCache.tag(StoragePolicy.FLOAT32));
        assertEquals("int8", ModelCache.tag(INT8));
        assertEquals("int8-block64", ModelCache.tag(INT8.withBlockSize(64)));
        assertEquals("bfloat16", ModelCache.tag(StoragePolicy.of(DType.BF16).withBlockSize(64)), "no int8, no block");
        assertEquals("vision-float32.lm-float16", ModelCache.tag(StoragePolicy.of(DType.F16).withVision(DType.F32)));
        assertEquals(ModelCache.tag(StoragePolicy.of(DType.BF16)),
                ModelCache.tag(INT8.withVision(DType.BF16).withLanguageModel(DType.BF16)), "the same tensors, one name");
        Set<Path> paths = Set.of(models.artifact(opt), models.artifact(opt, INT8), models.artifact(opt, INT8.withBlockSize(64)),
                models.artifact(opt, StoragePolicy.of(DType.BF16)), models.artifact(opt, INT8.withVision(DType.BF16)));
        assertEquals(5, paths.size());

        CatalogueEntry lookalike = new CatalogueEntry("tiny-opt.int8", null, List.of(), null, null, 1L, opt.sources(), null);
        assertNotEquals(models.artifact(lookalike), models.artifact(opt, INT8));
    }

    @Test
    void theMemoryCheckCountsTheTypeAskedForAndNamesTheOneThatFits() {
        CatalogueEntry entry = LoopbackHub.catalogue().require("tiny-opt");
        MemoryCheck belowFloat32 = MemoryCheck.limit(MemoryCheck.estimate(entry.weightBytes(StoragePolicy.FLOAT32)) - 1);
        BadInputException e = assertThrows(BadInputException.class, () -> Blip2.pretrained("tiny-opt",
                StoragePolicy.FLOAT32, server.hub(cache), belowFloat32, PullListener.NONE));
        assertTrue(e.getMessage().startsWith("tiny-opt needs about") && e.getMessage().contains("stored as float32")
                && e.getMessage().contains("It fits with its weights stored as bfloat16")
                && e.getMessage().contains("blip2 pull tiny-opt --dtype bfloat16")
                && e.getMessage().contains("DType.BF16"), e.getMessage());
        assertTrue(server.requests().isEmpty(), "refused before any download");

        try (Blip2 blip2 = Blip2.pretrained("tiny-opt", INT8, server.hub(cache), belowFloat32, PullListener.NONE)) {
            assertEquals(8, blip2.config().numQueryTokens());
        }
        assertTrue(Files.isRegularFile(cache.resolve("tiny-opt@int8.b2z")));
    }
}
