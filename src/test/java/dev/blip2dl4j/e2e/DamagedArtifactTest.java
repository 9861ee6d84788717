package dev.blip2dl4j.e2e;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.finetune.AdamW;
import dev.blip2dl4j.finetune.TrainingCheckpoint;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.testing.Fixtures;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A damaged artifact never produces output: every command that loads one, and inspect, end with exit code 3. */
class DamagedArtifactTest {
    private static final String MERLION = Fixtures.root().resolve("common/merlion.png").toString();
    private static final String VISION_TENSOR = "vision_model.embeddings.patch_embedding.weight";

    @TempDir
    Path dir;
    private Path artifact;

    @BeforeEach
    void convert() {
        artifact = dir.resolve("opt.b2z");
        CliRun run = CliRun.of("convert", Fixtures.root().resolve("blip2-tiny-opt").toString(), "-o",
                artifact.toString(), "--quiet");
        assertEquals(0, run.exitCode(), run.toString());
    }

    /** The reported file: NaNs written into a vision tensor captioned "<s><s>..." with exit code 0. */
    @Test
    void nansInATensorAreFoundBeforeCaptioning() throws IOException {
        long offset;
        try (ZipFile zip = ZipFile.builder().setPath(artifact).get()) {
            offset = zip.getEntry(ArtifactWriter.TENSOR_PREFIX + VISION_TENSOR).getDataOffset();
        }
        try (RandomAccessFile file = new RandomAccessFile(artifact.toFile(), "rw")) {
            file.seek(offset);
            file.write(ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(Float.NaN).putFloat(Float.NaN)
                    .putFloat(Float.NaN).putFloat(Float.NaN).array());
        }
        assertDamaged(caption(), "1 tensors do not match the SHA-256 in the manifest", VISION_TENSOR);
        assertDamaged(CliRun.of("vqa", "--model", artifact.toString(), "-q", "what?", MERLION), VISION_TENSOR);
    }

    /** The reported file: a config.json whose CRC-32 is wrong passed inspect; caption then failed internally. */
    @Test
    void aSmallFileThatFailsItsCrcIsDamaged() throws IOException {
        byte[] zip = Files.readAllBytes(artifact);
        byte[] name = "config.json".getBytes(StandardCharsets.US_ASCII);
        ByteBuffer buffer = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < zip.length - 46 - name.length; at++) {
            if (buffer.getInt(at) == 0x02014b50 && buffer.getShort(at + 28) == name.length
                    && Arrays.equals(Arrays.copyOfRange(zip, at + 46, at + 46 + name.length), name)) {
                buffer.putInt(at + 16, ~buffer.getInt(at + 16)); // the central directory's CRC-32
            }
        }
        Files.write(artifact, zip);
        assertDamaged(CliRun.of("inspect", artifact.toString()), "entry config.json is damaged");
        assertDamaged(caption(), "entry config.json is damaged");
    }

    /** The reported manifests: a tensor missing, one transposed, one of the wrong type; inspect passed them. */
    @Test
    void aManifestThatDoesNotDescribeTheModelIsDamaged() throws IOException {
        Path missing = copy("missing.b2z", t -> t.name().equals("language_projection.bias") ? null : t);
        assertDamaged(CliRun.of("inspect", missing.toString()), "'language_projection.bias' [12] is missing");
        Path transposed = copy("transposed.b2z", t -> t.name().equals("language_projection.weight")
                ? new Manifest.Tensor(t.name(), t.dtype(), new long[]{t.shape()[1], t.shape()[0]}, t.entry(), t.sha256())
                : t);
        assertDamaged(CliRun.of("inspect", transposed.toString()), "'language_projection.weight' is [32, 12], not [12, 32]");
        assertDamaged(CliRun.of("caption", "--model", transposed.toString(), MERLION), "is [32, 12], not [12, 32]");
        Path integers = copy("integers.b2z", t -> t.name().equals(VISION_TENSOR)
                ? new Manifest.Tensor(t.name(), "I32", t.shape(), t.entry(), t.sha256()) : t);
        assertDamaged(CliRun.of("inspect", integers.toString()), "is I32, not one of [F32, F16, BF16, I8]");
    }

    /** The reported config: a billion vision layers, inside an artifact and in a checkpoint folder. */
    @Test
    void anAbsurdConfigIsRefusedBeforeAnythingIsBuilt() throws IOException {
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(
                Fixtures.root().resolve("blip2-tiny-opt/config.json").toFile());
        ((ObjectNode) config.get("vision_config")).put("num_hidden_layers", 1_000_000_000);
        byte[] json = new ObjectMapper().writeValueAsBytes(config);
        Path inArtifact = copy("layers.b2z", UnaryOperator.identity(), json);
        assertDamaged(CliRun.of("inspect", inArtifact.toString()), "num_hidden_layers = 1000000000 is far beyond");
        assertDamaged(CliRun.of("caption", "--model", inArtifact.toString(), MERLION), "is far beyond any BLIP-2");

        Path folder = Files.createDirectories(dir.resolve("checkpoint"));
        Files.copy(Fixtures.root().resolve("blip2-tiny-opt/model.safetensors"), folder.resolve("model.safetensors"));
        Files.write(folder.resolve("config.json"), json);
        CliRun run = CliRun.of("convert", folder.toString(), "-o", dir.resolve("x.b2z").toString(), "--quiet");
        assertDamaged(run, "vision_config.num_hidden_layers = 1000000000 is far beyond any BLIP-2");
        assertFalse(Files.exists(dir.resolve("x.b2z")));
    }

    /** A fine-tuning checkpoint holds part of a model by design: inspect checks its bytes, not a layout. */
    @Test
    void aFineTuningCheckpointIsInspectedWithoutTheModelLayout() {
        Path checkpoint = dir.resolve("run.ckpt");
        Blip2Config config = Blip2Config.knownLavisType("pretrain_opt2.7b");
        Map<String, INDArray> parameters = Map.of("query_tokens", Nd4j.ones(1, 2, 3));
        AdamW.State moments = AdamW.State.of(1, Map.of("query_tokens.exp_avg", Nd4j.zeros(1, 2, 3),
                "query_tokens.exp_avg_sq", Nd4j.zeros(1, 2, 3)));
        TrainingCheckpoint.write(OutputFile.check(checkpoint, List.of(), false), config, parameters, moments,
                new TrainingCheckpoint.State(
                "blip2-dl4j-finetune-checkpoint", 1, 0, 1, 0, 1, Map.of(), Map.of(), "base"));
        CliRun run = CliRun.of("inspect", checkpoint.toString());
        assertEquals(0, run.exitCode(), run.toString());
        assertTrue(run.out().contains("query_tokens.exp_avg_sq"), run.out());
    }

    private CliRun caption() {
        return CliRun.of("caption", "--model", artifact.toString(), MERLION, "--max-new-tokens", "3");
    }

    private Path copy(String name, UnaryOperator<Manifest.Tensor> edit) throws IOException {
        return copy(name, edit, null);
    }

    /**
     * The converted artifact written again with each manifest entry edited (null leaves the tensor out), and
     * another config.json where one is given.
     */
    private Path copy(String name, UnaryOperator<Manifest.Tensor> edit, byte[] config) throws IOException {
        Path out = dir.resolve(name);
        try (Artifact source = Artifact.open(artifact); ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            for (String file : source.fileNames()) {
                if (!file.equals(ArtifactWriter.MANIFEST)) {
                    writer.addFile(file, config != null && file.equals("config.json") ? config
                            : source.file(file).orElseThrow());
                }
            }
            for (Manifest.Tensor t : source.manifest().tensors()) {
                Manifest.Tensor edited = edit.apply(t);
                if (edited == null) {
                    continue;
                }
                ByteBuffer bytes = source.map(t.name());
                byte[] data = new byte[bytes.remaining()];
                bytes.get(data);
                // the writer takes the dtype and shape as given: an edited pair of the same byte count
                ArtifactWriter.TensorOutput output = writer.beginTensor(edited.name(),
                        DType.valueOf(edited.dtype()), edited.shape());
                output.write(data, 0, data.length);
                String hex = Sha256.of(data);
                output.finish(() -> hex);
            }
            Manifest m = source.manifest();
            writer.commit(new Manifest(m.format(), m.formatVersion(), m.modelClass(), m.languageModel(), m.converter(),
                    m.source(), m.dtype(), List.of(), m.notes()));
        }
        return out;
    }

    private static void assertDamaged(CliRun run, String... expected) {
        assertEquals(3, run.exitCode(), run.toString());
        for (String part : expected) {
            assertTrue(run.err().contains(part), "expected '" + part + "' in: " + run.err());
        }
        assertFalse(run.err().contains("\tat "), "no stack trace: " + run.err());
        assertFalse(run.out().contains(MERLION), "no caption: " + run.out());
    }
}
