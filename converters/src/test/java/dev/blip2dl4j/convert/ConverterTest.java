package dev.blip2dl4j.convert;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.artifact.Sha256;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.FloatConversion;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every original format of every fixture converts to the tensors of the fixture's model.safetensors, bit for bit;
 * a conversion that cannot write its artifact leaves nothing behind.
 */
class ConverterTest {
    @TempDir
    Path dir;

    static Stream<Arguments> formats() {
        return Stream.of(
                Arguments.of("opt", "safetensors folder", List.of(""), null),
                Arguments.of("opt", "sharded safetensors", List.of("sharded"), null),
                Arguments.of("opt", "pytorch_model.bin", List.of("pytorch_model.bin"), null),
                Arguments.of("opt", "LAVIS .pth", List.of("lavis/blip2_opt_tiny.pth"), "config.json"),
                Arguments.of("t5", "safetensors folder", List.of(""), null),
                Arguments.of("t5", "sharded safetensors", List.of("sharded"), null),
                Arguments.of("t5", "pytorch_model.bin", List.of("pytorch_model.bin"), null),
                Arguments.of("t5", "sharded pytorch_model.bin", List.of("sharded-bin"), null),
                Arguments.of("t5", "LAVIS .pth", List.of("lavis/blip2_t5_tiny.pth"), "config.json"),
                Arguments.of("itm", "safetensors folder", List.of(""), null),
                Arguments.of("itm", "LAVIS .pth", List.of("lavis/blip2_itm_tiny.pth"), "config.json"));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("formats")
    void convertsBitIdentically(String model, String format, List<String> sources, String config) {
        Path fixture = Fixtures.model(model);
        Converter.Options options = Converter.Options.defaults();
        if (config != null) {
            options = options.withConfig(fixture.resolve(config));
        }
        Path out = dir.resolve(model + ".b2z");
        Converter.convert(sources.stream().map(fixture::resolve).toList(), out, options, ConversionProgress.NONE);
        assertSameTensors(fixture.resolve("model.safetensors"), out);
    }

    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"opt", "t5"})
    void assemblesASplitLavisRelease(String model) throws IOException {
        Path fixture = Fixtures.model(model);
        Path llm = languageModelFolder(model);
        Path out = dir.resolve("split.b2z");
        Converter.Result result = Converter.convert(List.of(fixture.resolve("lavis-split/stage2.pth"),
                        fixture.resolve("lavis-split/eva_vit_g.pth"), llm), out,
                new Converter.Options(SourceFormat.AUTO, StoragePolicy.FLOAT32, fixture.resolve("config.json"), null, "fp32",
                        false),
                ConversionProgress.NONE);
        assertSameTensors(fixture.resolve("model.safetensors"), out);
        String notes = String.join("\n", result.manifest().notes());
        assertTrue(notes.contains("EVA-CLIP blocks past the 2"), notes);
        assertTrue(notes.contains("part of EVA-CLIP that LAVIS's BLIP-2 ViT does not have"), notes);
        try (Artifact a = Artifact.open(out)) {
            assertTrue(a.file("tokenizer/tokenizer.json").isPresent(), "tokenizer built from the LLM folder's files");
        }
    }

    @Test
    void roundsTheEvaVitsLinearWeightsThroughHalfAsLavisRunsThem() throws IOException {
        Path fixture = Fixtures.model("opt");
        Path out = dir.resolve("fp16vit.b2z");
        Converter.convert(List.of(fixture.resolve("lavis-split/stage2.pth"), fixture.resolve("lavis-split/eva_vit_g.pth"),
                        languageModelFolder("opt")), out, Converter.Options.defaults().withConfig(fixture.resolve("config.json")),
                ConversionProgress.NONE);
        Map<String, SourceTensor> reference = byName(SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors());
        try (Artifact a = Artifact.open(out)) {
            for (Manifest.Tensor t : a.manifest().tensors()) {
                float[] expected = floats(reference.get(t.name()).readFully());
                boolean linear = t.name().matches("vision_model\\.(embeddings\\.patch_embedding\\.(weight|bias)|encoder\\.layers\\.\\d+\\."
                        + "(self_attn\\.qkv\\.weight|(self_attn\\.projection|mlp\\.fc[12])\\.(weight|bias)))");
                if (linear) {
                    for (int i = 0; i < expected.length; i++) {
                        expected[i] = FloatConversion.halfToFloat(FloatConversion.floatToHalf(expected[i]));
                    }
                }
                assertArrayEquals(expected, floats(a.map(t.name())), t.name());
            }
        }
    }

    @Test
    void storesHalfTypesWhenAsked() throws IOException {
        Path fixture = Fixtures.model("opt");
        Path out = dir.resolve("bf16.b2z");
        Converter.convert(List.of(fixture), out, Converter.Options.defaults().withDtype(DType.BF16), ConversionProgress.NONE);
        // the storage policy puts the language model's products in bfloat16 and keeps its token table float32
        Map<String, SourceTensor> source = byName(SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors());
        SourceTensor fc1 = source.get("language_model.model.decoder.layers.0.fc1.weight");
        float[] values = floats(fc1.readFully());
        try (Artifact a = Artifact.open(out)) {
            assertEquals("BF16", a.manifest().dtype());
            ByteBuffer stored = a.map(fc1.name());
            assertEquals(values.length * 2, stored.remaining());
            for (int i = 0; i < values.length; i++) {
                assertEquals(FloatConversion.floatToBfloat16(values[i]), stored.getShort(2 * i));
            }
            SourceTensor embed = source.get("language_model.model.decoder.embed_tokens.weight");
            assertEquals(DType.F32, a.dtype(embed.name()));
            assertArrayEquals(floats(embed.readFully()), floats(a.map(embed.name())));
        }
    }

    @Test
    void sameCheckpointGivesTheSameArtifactBytes() throws IOException {
        Path fixture = Fixtures.model("itm");
        Converter.convert(List.of(fixture), dir.resolve("a.b2z"), Converter.Options.defaults(), ConversionProgress.NONE);
        Converter.convert(List.of(fixture), dir.resolve("b.b2z"), Converter.Options.defaults(), ConversionProgress.NONE);
        assertArrayEquals(Files.readAllBytes(dir.resolve("a.b2z")), Files.readAllBytes(dir.resolve("b.b2z")));
    }

    @Test
    void recordsTheSourceChecksums() throws IOException {
        Path fixture = Fixtures.model("opt").resolve("sharded");
        Path out = dir.resolve("sharded.b2z");
        Converter.Result result = Converter.convert(List.of(fixture), out, Converter.Options.defaults(), ConversionProgress.NONE);
        Map<String, String> recorded = new TreeMap<>();
        result.manifest().source().files().forEach(f -> recorded.put(f.name(), f.sha256()));
        for (String shard : List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
            assertEquals(Sha256.ofFile(fixture.resolve(shard)), recorded.get(shard), shard);
        }
        assertEquals("hf", result.manifest().source().format());
    }

    @Test
    void lavisWithoutConfigSaysHowToGiveOne() {
        Path pth = Fixtures.model("opt").resolve("lavis/blip2_opt_tiny.pth");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(pth),
                dir.resolve("x.b2z"), Converter.Options.defaults(), ConversionProgress.NONE));
        assertTrue(e.getMessage().contains("--config") && e.getMessage().contains("--lavis-type"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("x.b2z")));
    }

    @Test
    void stageTwoCheckpointAloneListsWhatIsMissingAndHowToFixIt() throws IOException {
        Path fixture = Fixtures.model("opt");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(fixture.resolve("lavis-split/stage2.pth")), dir.resolve("x.b2z"),
                Converter.Options.defaults().withConfig(fixture.resolve("config.json")), ConversionProgress.NONE));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
        assertTrue(e.getMessage().contains("vision_model.encoder.layers.0.self_attn.qkv.weight"), e.getMessage());
        assertTrue(e.getMessage().contains("eva_vit_g.pth"), e.getMessage());
        assertTrue(e.getMessage().contains("language model"), e.getMessage());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(0, left.count(), "nothing written");
        }
    }

    @Test
    void wrongShapeMissingAndUnexpectedAreReportedTogether() throws IOException {
        Path fixture = Fixtures.model("itm");
        Map<String, SafetensorsWriter.Entry> tensors = new LinkedHashMap<>();
        for (SourceTensor t : SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors()) {
            if (t.name().equals("itm_head.bias")) {
                continue; // missing
            }
            long[] shape = t.name().equals("query_tokens") ? new long[]{1, 4, 48} : t.shape(); // wrong shape
            tensors.put(t.name(), new SafetensorsWriter.Entry("F32", shape, toArray(t.readFully())));
        }
        tensors.put("itm_head.extra", new SafetensorsWriter.Entry("F32", new long[]{2}, new byte[8])); // unexpected
        Path folder = Files.createDirectories(dir.resolve("bad"));
        Files.copy(fixture.resolve("config.json"), folder.resolve("config.json"));
        SafetensorsWriter.write(folder.resolve("model.safetensors"), tensors);
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(folder),
                dir.resolve("x.b2z"), Converter.Options.defaults(), ConversionProgress.NONE));
        String message = e.getMessage();
        assertTrue(message.contains("1 missing: itm_head.bias [2]"), message);
        assertTrue(message.contains("1 unexpected: itm_head.extra"), message);
        assertTrue(message.contains("1 wrong shape: query_tokens: expected [1, 8, 24], found [1, 4, 48]"), message);
        assertFalse(Files.exists(dir.resolve("x.b2z")));
    }

    @Test
    void folderWithoutCheckpoint() throws IOException {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(empty),
                dir.resolve("x.b2z"), Converter.Options.defaults(), ConversionProgress.NONE));
        assertTrue(e.getMessage().startsWith(empty.toString()) && e.getMessage().contains("holds no checkpoint"),
                e.getMessage());
    }

    @Test
    void tiedCopyThatDiffersIsWarnedAbout() throws IOException {
        Path fixture = Fixtures.model("opt");
        Map<String, SafetensorsWriter.Entry> tensors = new LinkedHashMap<>();
        for (SourceTensor t : SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors()) {
            tensors.put(t.name(), new SafetensorsWriter.Entry("F32", t.shape(), toArray(t.readFully())));
        }
        SafetensorsWriter.Entry embed = tensors.get("language_model.model.decoder.embed_tokens.weight");
        byte[] changed = embed.data().clone();
        changed[0] ^= 1;
        tensors.put("language_model.lm_head.weight", new SafetensorsWriter.Entry("F32", embed.shape(), changed));
        Path folder = Files.createDirectories(dir.resolve("untied"));
        Files.copy(fixture.resolve("config.json"), folder.resolve("config.json"));
        SafetensorsWriter.write(folder.resolve("model.safetensors"), tensors);
        Converter.Result result = Converter.convert(List.of(folder), dir.resolve("x.b2z"), Converter.Options.defaults(),
                ConversionProgress.NONE);
        assertEquals(1, result.warnings().size(), result.warnings().toString());
        assertTrue(result.warnings().get(0).contains("language_model.lm_head.weight differs"));
        assertSameTensors(fixture.resolve("model.safetensors"), dir.resolve("x.b2z"));
    }

    @Test
    void theArtifactGetsTheUsualPermissionsNotATempFilesPrivateOnes() throws IOException {
        Path out = dir.resolve("perm.b2z");
        Converter.convert(List.of(Fixtures.model("itm")), out, Converter.Options.defaults(), ConversionProgress.NONE);
        Path plain = Files.createFile(dir.resolve("plain"));
        assertEquals(Files.getPosixFilePermissions(plain), Files.getPosixFilePermissions(out));
    }

    @Test
    void aFullDiskLeavesNoFileBehind() {
        Path out = dir.resolve("full.b2z");
        ArtifactWriter.ChannelOpener fillsUp = path -> new FailingChannel(
                FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.READ),
                200_000);
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(Fixtures.model("opt")), out, Converter.Options.defaults(), ConversionProgress.NONE,
                target -> ArtifactWriter.create(target, fillsUp)));
        assertTrue(e.getMessage().startsWith(out.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
        assertTrue(e.getMessage().contains("nothing was written"), e.getMessage());
        assertEquals(List.of(), listing());
    }

    @Test
    void anOutputFolderThatIsNotAFolder() throws IOException {
        Path file = Files.writeString(dir.resolve("plain-file"), "x");
        Path out = file.resolve("model.b2z");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(Fixtures.model("itm")), out, Converter.Options.defaults(), ConversionProgress.NONE));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
        assertEquals(List.of(dir.resolve("plain-file")), listing());
    }

    @Test
    void theOutputIsNeverASourceNorAFileInASourceFolderEvenWithOverwrite() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("checkpoint"));
        for (String name : List.of("model.safetensors", "config.json")) {
            Files.copy(Fixtures.model("itm").resolve(name), folder.resolve(name));
        }
        Path weights = folder.resolve("model.safetensors");
        String before = Sha256.ofFile(weights);
        Path linked = Files.createSymbolicLink(dir.resolve("linked.b2z"), weights);
        for (Path out : List.of(weights, folder.resolve("config.json"), linked)) {
            BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(folder), out,
                    Converter.Options.defaults().withOverwrite(true), ConversionProgress.NONE));
            assertTrue(e.getMessage().startsWith(out.toString()) && e.getMessage().contains("input"), e.getMessage());
        }
        assertEquals(before, Sha256.ofFile(weights), "the checkpoint is untouched");
        Path config = folder.resolve("config.json");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(List.of(weights), config,
                Converter.Options.defaults().withConfig(config).withOverwrite(true), ConversionProgress.NONE));
        assertTrue(e.getMessage().contains("input"), "--config is an input too: " + e.getMessage());
    }

    @Test
    void anExistingOutputIsRefusedBeforeAnySourceIsReadAndReplacedOnlyWithOverwrite() throws IOException {
        Path out = Files.writeString(dir.resolve("model.b2z"), "a previous artifact");
        BadInputException e = assertThrows(BadInputException.class, () -> Converter.convert(
                List.of(dir.resolve("no-such-checkpoint")), out, Converter.Options.defaults(), ConversionProgress.NONE));
        assertTrue(e.getMessage().startsWith(out.toString()) && e.getMessage().contains("already exists"), e.getMessage());
        assertEquals("a previous artifact", Files.readString(out));

        Converter.convert(List.of(Fixtures.model("itm")), out, Converter.Options.defaults().withOverwrite(true),
                ConversionProgress.NONE);
        try (Artifact a = Artifact.open(out)) {
            assertFalse(a.manifest().tensors().isEmpty());
        }
    }

    @Test
    void aConversionDeletesThePartialOfAKilledOneOfTheSameOutput() throws Exception {
        Process killed = new ProcessBuilder("sleep", "60").start();
        killed.destroyForcibly().waitFor();
        Path left = Files.write(dir.resolve(".model.b2z." + killed.pid() + ".partial"), new byte[4096]);
        Converter.convert(List.of(Fixtures.model("itm")), dir.resolve("model.b2z"), Converter.Options.defaults(),
                ConversionProgress.NONE);
        assertFalse(Files.exists(left));
        assertEquals(List.of(dir.resolve("model.b2z")), listing());
    }

    /** The artifact holds exactly the reference file's tensors, with identical bytes and dtype. */
    static void assertSameTensors(Path referenceSafetensors, Path artifact) {
        Map<String, SourceTensor> reference = byName(SafetensorsFile.open(referenceSafetensors).tensors());
        try (Artifact a = Artifact.open(artifact)) {
            List<String> names = new ArrayList<>(a.manifest().tensors().stream().map(Manifest.Tensor::name).toList());
            assertEquals(new TreeMap<>(reference).keySet(), new java.util.TreeSet<>(names));
            for (Manifest.Tensor t : a.manifest().tensors()) {
                SourceTensor expected = reference.get(t.name());
                assertEquals(expected.dtype().name(), t.dtype(), t.name());
                assertArrayEquals(expected.shape(), t.shape(), t.name());
                ByteBuffer bytes = a.map(t.name());
                assertEquals(expected.readFully(), bytes, t.name() + " bytes");
                assertEquals(Sha256.of(toArray(expected.readFully())), t.sha256(), t.name() + " sha256");
            }
        }
    }

    /**
     * A Hugging Face folder of the fixture's language model alone, as facebook/opt-* or google/flan-t5-*
     * hold it: OPTForCausalLM / T5ForConditionalGeneration names, its own config.json, tokenizer files.
     */
    private Path languageModelFolder(String model) throws IOException {
        Path fixture = Fixtures.model(model);
        Path folder = Files.createDirectories(dir.resolve(model + "-llm"));
        Map<String, SafetensorsWriter.Entry> tensors = new LinkedHashMap<>();
        for (SourceTensor t : SafetensorsFile.open(fixture.resolve("model.safetensors")).tensors()) {
            if (t.name().startsWith("language_model.")) {
                tensors.put(t.name().substring("language_model.".length()),
                        new SafetensorsWriter.Entry("F32", t.shape(), toArray(t.readFully())));
            }
        }
        if (model.equals("opt")) {
            tensors.put("lm_head.weight", tensors.get("model.decoder.embed_tokens.weight"));
        }
        SafetensorsWriter.write(folder.resolve("model.safetensors"), tensors);
        ObjectMapper json = new ObjectMapper();
        ObjectNode textConfig = (ObjectNode) json.readTree(fixture.resolve("config.json").toFile()).get("text_config");
        textConfig.put("model_type", model);
        json.writeValue(folder.resolve("config.json").toFile(), textConfig);
        for (String name : List.of("vocab.json", "merges.txt", "spiece.model", "tokenizer_config.json",
                "special_tokens_map.json", "added_tokens.json", "generation_config.json")) {
            if (Files.exists(fixture.resolve(name))) {
                Files.copy(fixture.resolve(name), folder.resolve(name));
            }
        }
        return folder;
    }

    static Map<String, SourceTensor> byName(List<SourceTensor> tensors) {
        Map<String, SourceTensor> map = new LinkedHashMap<>();
        tensors.forEach(t -> map.put(t.name(), t));
        return map;
    }

    static byte[] toArray(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return bytes;
    }

    static float[] floats(ByteBuffer buffer) {
        var f = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        float[] values = new float[f.remaining()];
        f.get(values);
        return values;
    }

    private List<Path> listing() {
        try (Stream<Path> files = Files.list(dir)) {
            return files.toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A channel on a disk that fills up after {@code capacity} bytes. */
    private static final class FailingChannel implements SeekableByteChannel {
        private final FileChannel delegate;
        private final long capacity;

        FailingChannel(FileChannel delegate, long capacity) {
            this.delegate = delegate;
            this.capacity = capacity;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            if (delegate.position() + src.remaining() > capacity) {
                throw new IOException("No space left on device");
            }
            return delegate.write(src);
        }

        @Override
        public int read(ByteBuffer dst) throws IOException {
            return delegate.read(dst);
        }

        @Override
        public long position() throws IOException {
            return delegate.position();
        }

        @Override
        public SeekableByteChannel position(long newPosition) throws IOException {
            delegate.position(newPosition);
            return this;
        }

        @Override
        public long size() throws IOException {
            return delegate.size();
        }

        @Override
        public SeekableByteChannel truncate(long size) throws IOException {
            delegate.truncate(size);
            return this;
        }

        @Override
        public boolean isOpen() {
            return delegate.isOpen();
        }

        @Override
        public void close() throws IOException {
            delegate.close();
        }
    }
}
