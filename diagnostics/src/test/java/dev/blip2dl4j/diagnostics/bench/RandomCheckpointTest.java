package dev.blip2dl4j.diagnostics.bench;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.convert.ConversionProgress;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.convert.tensor.ShardIndex;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.diagnostics.bench.RandomCheckpoint.Layout;
import dev.blip2dl4j.diagnostics.bench.RandomCheckpoint.Plan;
import dev.blip2dl4j.diagnostics.bench.RandomCheckpoint.Shard;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.zoo.hub.Catalogue;
import dev.blip2dl4j.zoo.hub.CatalogueEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RandomCheckpointTest {
    private static final Blip2Config TINY_OPT = Blip2Config.read(Fixtures.root().resolve("blip2-tiny-opt/config.json"));
    private static final Blip2Config TINY_T5 = Blip2Config.read(Fixtures.root().resolve("blip2-tiny-t5/config.json"));

    @TempDir
    Path dir;

    /** Every tensor of the written checkpoint, by name, as float32 values. */
    private static Map<String, float[]> read(Path folder) throws IOException {
        Map<String, float[]> tensors = new HashMap<>();
        try (var files = Files.list(folder)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".safetensors")).toList()) {
                for (SourceTensor t : SafetensorsFile.open(file).tensors()) {
                    assertEquals("F32", t.dtype().name(), t.name());
                    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
                        FloatBuffer values = channel.map(FileChannel.MapMode.READ_ONLY, t.view().storageOffset(),
                                t.byteSize()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
                        float[] array = new float[values.remaining()];
                        values.get(array);
                        assertEquals(null, tensors.put(t.name(), array), t.name() + " stored twice");
                    }
                }
            }
        }
        return tensors;
    }

    @Test
    void writesEveryParameterOfTheLayoutInGreedyShardsThatConvert() throws IOException {
        long maxShard = 1_000_000;
        Plan plan = RandomCheckpoint.plan(TINY_OPT, Layout.SAVED, maxShard);
        assertTrue(plan.shards().size() >= 3, "several shards: " + plan.shards().size());
        List<ParamSpec> parameters = ParameterLayout.of(TINY_OPT).parameters();
        assertEquals(parameters.stream().map(ParamSpec::name).toList(),
                plan.shards().stream().flatMap(Shard::stored).map(RandomCheckpoint.Tensor::name).toList(),
                "state_dict order, every parameter once, no tied copy");
        for (int i = 0; i < plan.shards().size(); i++) {
            Shard shard = plan.shards().get(i);
            assertTrue(shard.bytes() <= maxShard || shard.tensors().size() == 1, shard.file() + ": over the limit");
            if (i + 1 < plan.shards().size()) {
                assertTrue(shard.bytes() + plan.shards().get(i + 1).tensors().get(0).bytes() > maxShard,
                        "greedy: the next shard's first tensor did not fit in " + shard.file());
            }
        }

        RandomCheckpoint.Result result = RandomCheckpoint.write(plan, dir.resolve("ckpt"), 7, DType.F32,
                Fixtures.root().resolve("tokenizers/opt"), false, f -> { });
        Path ckpt = result.dir();
        Map<String, float[]> tensors = read(ckpt);
        assertEquals(parameters.size(), tensors.size());
        for (ParamSpec p : parameters) {
            assertEquals(p.numel(), tensors.get(p.name()).length, p.name());
        }
        ShardIndex index = ShardIndex.read(ckpt.resolve(RandomCheckpoint.INDEX));
        assertEquals(parameters.size(), index.weightMap().size());
        assertTrue(Files.isRegularFile(ckpt.resolve("tokenizer.json")) && Files.isRegularFile(ckpt.resolve("config.json")));
        assertFalse(Files.readString(ckpt.resolve("config.json")).contains("\"lavis\""));

        double sum = 0;
        double squares = 0;
        long n = 0;
        for (float[] values : tensors.values()) {
            for (float v : values) {
                sum += v;
                squares += (double) v * v;
                n++;
            }
        }
        assertEquals(0, sum / n, 1e-3);
        assertEquals(RandomCheckpoint.STD, Math.sqrt(squares / n), 2e-4);

        Converter.Result converted = Converter.convert(List.of(ckpt), dir.resolve("tiny.b2z"), Converter.Options.defaults(),
                ConversionProgress.NONE);
        assertEquals(parameters.size(), converted.manifest().tensors().size(), "the converter finds exactly the layout");
    }

    @Test
    void theSameSeedGivesTheSameValuesWhateverTheShardingAndAnotherSeedOthers() throws IOException {
        RandomCheckpoint.write(RandomCheckpoint.plan(TINY_T5, Layout.SAVED, 300_000), dir.resolve("a"), 1, DType.F32, null, false, f -> { });
        RandomCheckpoint.write(RandomCheckpoint.plan(TINY_T5, Layout.SAVED, Long.MAX_VALUE), dir.resolve("b"), 1, DType.F32, null,
                false, f -> { });
        RandomCheckpoint.write(RandomCheckpoint.plan(TINY_T5, Layout.SAVED, Long.MAX_VALUE), dir.resolve("c"), 2, DType.F32, null,
                false, f -> { });
        assertTrue(Files.isRegularFile(dir.resolve("b/model.safetensors")) && !Files.exists(dir.resolve("b/" + RandomCheckpoint.INDEX)),
                "one shard: model.safetensors, no index");
        Map<String, float[]> a = read(dir.resolve("a"));
        Map<String, float[]> b = read(dir.resolve("b"));
        Map<String, float[]> c = read(dir.resolve("c"));
        for (String name : a.keySet()) {
            assertArrayEquals(a.get(name), b.get(name), name);
            assertFalse(Arrays.equals(a.get(name), c.get(name)), name);
        }
    }

    @Test
    void aHalfPrecisionCheckpointHoldsTheFloat32ValuesRoundedInTheSameShardsAndConverts() throws IOException {
        Plan plan = RandomCheckpoint.plan(TINY_T5, Layout.SAVED, 300_000);
        RandomCheckpoint.write(plan, dir.resolve("f32"), 5, DType.F32, null, false, f -> { });
        Map<String, float[]> f32 = read(dir.resolve("f32"));
        for (DType half : List.of(DType.F16, DType.BF16)) {
            Path ckpt = dir.resolve(half.userName());
            RandomCheckpoint.Result result = RandomCheckpoint.write(plan, ckpt, 5, half, null, false, f -> { });
            assertEquals(plan.bytes() / 2, result.bytes());
            for (Shard shard : plan.shards()) {
                assertEquals(shard.bytes() / 2, SafetensorsFile.open(ckpt.resolve(shard.file())).tensors().stream()
                        .mapToLong(SourceTensor::byteSize).sum(), shard.file() + ": the same tensors, half the bytes");
            }
            Path artifact = dir.resolve(half.userName() + ".b2z");
            Converter.convert(List.of(ckpt), artifact, Converter.Options.defaults(), ConversionProgress.NONE);
            try (Artifact read = Artifact.open(artifact)) {
                for (ParamSpec p : ParameterLayout.of(TINY_T5).parameters()) {
                    float[] expected = f32.get(p.name()).clone();
                    for (int i = 0; i < expected.length; i++) {
                        expected[i] = half == DType.F16 ? FloatConversion.halfToFloat(FloatConversion.floatToHalf(expected[i]))
                                : Float.intBitsToFloat(FloatConversion.floatToBfloat16(expected[i]) << 16);
                    }
                    float[] stored = new float[expected.length];
                    read.map(p.name()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(stored);
                    assertArrayEquals(expected, stored, half + " " + p.name());
                }
            }
        }
        assertThrows(BadInputException.class, () -> RandomCheckpoint.write(plan, dir.resolve("i8"), 5, DType.I8, null,
                false, f -> { }));
    }

    @Test
    void anArtifactWrittenStraightHoldsExactlyWhatConvertingTheCheckpointStores() throws IOException {
        for (Blip2Config config : List.of(TINY_OPT, TINY_T5)) {
            Plan plan = RandomCheckpoint.plan(config, Layout.SAVED, Long.MAX_VALUE);
            Path ckpt = dir.resolve("ckpt-" + config.text().modelType());
            Path tokenizer = Fixtures.root().resolve("tokenizers/" + (config == TINY_OPT ? "opt" : "t5"));
            RandomCheckpoint.write(plan, ckpt, 11, DType.F32, tokenizer, false, f -> { });
            for (StoragePolicy policy : List.of(StoragePolicy.of(DType.I8).withVision(DType.BF16),
                    StoragePolicy.of(DType.F16), StoragePolicy.of(DType.I8).withBlockSize(4))) {
                String name = config.text().modelType() + "-" + policy.describe().hashCode();
                Manifest converted = Converter.convert(List.of(ckpt), dir.resolve(name + "-converted.b2z"),
                        Converter.Options.defaults().withStorage(policy), ConversionProgress.NONE).manifest();
                Path direct = dir.resolve(name + "-direct.b2z");
                RandomCheckpoint.writeArtifact(plan, direct, 11, policy, tokenizer, false);
                try (Artifact artifact = Artifact.open(direct)) {
                    assertEquals(Set.copyOf(converted.tensors()), Set.copyOf(artifact.manifest().tensors()), name);
                    artifact.checkTensors();
                    assertEquals(converted.formatVersion(), artifact.manifest().formatVersion());
                    assertTrue(artifact.manifest().tensors().stream().anyMatch(t -> t.quantization() != null)
                            == (policy.languageModel() == DType.I8), name);
                }
            }
        }
        assertThrows(BadInputException.class, () -> RandomCheckpoint.writeArtifact(
                RandomCheckpoint.plan(TINY_OPT, Layout.SAVED, Long.MAX_VALUE), dir.resolve(
                        "ckpt-opt/config.json"), 1, StoragePolicy.FLOAT32, null, false), "never over an existing file");
    }

    @Test
    void anOptFromBinHoldsItsOutputProjectionEqualToItsTokenTableLastAndT5CountsItsStackTablesUnstored() throws IOException {
        Plan opt = RandomCheckpoint.plan(TINY_OPT, Layout.FROM_BIN, Long.MAX_VALUE);
        ParameterLayout layout = ParameterLayout.of(TINY_OPT);
        Map.Entry<String, String> tied = layout.tiedAliases().entrySet().iterator().next();
        List<RandomCheckpoint.Tensor> tensors = opt.shards().get(0).tensors();
        assertEquals(tied.getKey(), tensors.get(tensors.size() - 1).name(), "the output projection comes last");
        RandomCheckpoint.write(opt, dir.resolve("opt"), 3, DType.F32, null, false, f -> { });
        Map<String, float[]> values = read(dir.resolve("opt"));
        assertArrayEquals(values.get(tied.getValue()), values.get(tied.getKey()), "a tied copy equals its target");
        Converter.convert(List.of(dir.resolve("opt")), dir.resolve("opt.b2z"), Converter.Options.defaults(), ConversionProgress.NONE);

        Plan t5 = RandomCheckpoint.plan(TINY_T5, Layout.FROM_BIN, Long.MAX_VALUE);
        List<RandomCheckpoint.Tensor> t5Tensors = t5.shards().get(0).tensors();
        List<String> unstored = t5Tensors.stream().filter(t -> !t.stored()).map(RandomCheckpoint.Tensor::name).toList();
        assertEquals(List.copyOf(ParameterLayout.of(TINY_T5).tiedAliases().keySet()), unstored);
        for (String alias : unstored) {
            String stack = alias.substring(0, alias.indexOf('.', alias.indexOf('.') + 1) + 1);
            int at = t5Tensors.stream().map(RandomCheckpoint.Tensor::name).toList().indexOf(alias);
            assertTrue(t5Tensors.get(at + 1).name().startsWith(stack), alias + " comes first in its stack");
        }
        assertEquals(RandomCheckpoint.plan(TINY_T5, Layout.SAVED, Long.MAX_VALUE).bytes(), t5.bytes(), "not stored");
    }

    @Test
    void everyCatalogueModelIsPlannedAsTheCatalogueRecordsItsShards() {
        Catalogue catalogue = Catalogue.builtIn();
        List<String> checked = new ArrayList<>();
        for (CatalogueEntry entry : catalogue.models()) {
            Plan plan = RandomCheckpoint.like(entry);
            assertEquals(List.of(), RandomCheckpoint.mismatch(plan, entry).stream().toList(), entry.name());
            List<String> names = ParameterLayout.of(plan.config()).parameters().stream().map(ParamSpec::name).toList();
            List<String> planned = plan.shards().stream().flatMap(Shard::stored).map(RandomCheckpoint.Tensor::name)
                    .filter(n -> !ParameterLayout.of(plan.config()).tiedAliases().containsKey(n)).toList();
            assertEquals(names, planned, entry.name() + ": the layout's names in state_dict order");
            checked.add(entry.name() + " " + plan.shards().size() + " " + plan.layout());
        }
        assertTrue(checked.containsAll(List.of("blip2-opt-2.7b 2 SAVED", "blip2-opt-6.7b 4 FROM_BIN",
                "blip2-flan-t5-xl 2 FROM_BIN", "blip2-flan-t5-xxl 5 SAVED", "blip2-itm-vit-g 1 SAVED")), checked.toString());

        Plan opt67 = RandomCheckpoint.like(catalogue.require("blip2-opt-6.7b"));
        assertEquals(31_834_609_664L, opt67.bytes(), "31.8 GB of float32, the tied output projection included");
        Plan wrongLayout = RandomCheckpoint.plan(opt67.config(), Layout.SAVED, RandomCheckpoint.MAX_SHARD_BYTES);
        assertTrue(RandomCheckpoint.mismatch(wrongLayout, catalogue.require("blip2-opt-6.7b")).orElseThrow()
                .contains("model-00004-of-00004.safetensors: 2170000000 bytes recorded"));
    }

    @Test
    void anExistingFileIsRefusedBeforeAnythingIsWritten() throws IOException {
        Path ckpt = Files.createDirectories(dir.resolve("ckpt"));
        Files.writeString(ckpt.resolve("config.json"), "mine");
        Plan plan = RandomCheckpoint.plan(TINY_OPT, Layout.SAVED, 1_000_000);
        BadInputException e = assertThrows(BadInputException.class,
                () -> RandomCheckpoint.write(plan, ckpt, 0, DType.F32, null, false, f -> { }));
        assertTrue(e.getMessage().contains("config.json") && e.getMessage().contains("already exists"), e.getMessage());
        try (var files = Files.list(ckpt)) {
            assertEquals(List.of(ckpt.resolve("config.json")), files.toList(), "no shard was written");
        }
        assertEquals("mine", Files.readString(ckpt.resolve("config.json")));
        RandomCheckpoint.write(plan, ckpt, 0, DType.F32, null, true, f -> { });
        assertNotEquals("mine", Files.readString(ckpt.resolve("config.json")));
    }
}
