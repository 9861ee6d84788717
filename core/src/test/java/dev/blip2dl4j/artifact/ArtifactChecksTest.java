package dev.blip2dl4j.artifact;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.config.ParamSpec;
import dev.blip2dl4j.config.ParameterLayout;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.testing.Fixtures;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveOutputStream;
import org.apache.commons.compress.archivers.zip.ZipFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.Consumer;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What loading checks of an artifact: the manifest's own entries, the manifest against the model its
 * config.json describes, the small files against their CRC-32 and the tensors against their SHA-256.
 */
class ArtifactChecksTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String VISION_TENSOR = "vision_model.embeddings.patch_embedding.weight";

    @TempDir
    Path dir;

    @Test
    void aWholeArtifactPassesEveryCheck() throws IOException {
        Path file = tinyOpt();
        try (Artifact a = Artifact.open(file)) {
            assertEquals(8, a.modelConfig().numQueryTokens());
            a.checkFiles();
            a.checkTensors();
            assertEquals(a.manifest().tensors().size(), a.hashes().size());
        }
    }

    // ---- the manifest against the model its config describes ----

    @Test
    void aMissingTensorIsNamed() throws IOException {
        Path file = withManifest(tinyOpt(), tensors -> tensors.remove(5));
        assertModelRefused(file, "does not hold the model its config.json describes", "is missing");
    }

    @Test
    void aTransposedShapeIsNamed() throws IOException {
        Path file = withManifest(tinyOpt(), tensors -> {
            ObjectNode t = tensor(tensors, "language_projection.weight");
            ArrayNode shape = (ArrayNode) t.get("shape");
            long out = shape.get(0).asLong();
            shape.set(0, shape.get(1));
            shape.set(1, out);
        });
        assertModelRefused(file, "'language_projection.weight' is [32, 12], not [12, 32]");
    }

    @Test
    void aWrongDtypeIsNamed() throws IOException {
        // I32 has the bytes of F32: only the type is wrong
        Path file = withManifest(tinyOpt(), tensors -> tensor(tensors, VISION_TENSOR).put("dtype", "I32"));
        assertModelRefused(file, "'" + VISION_TENSOR + "' is I32, not one of [F32, F16, BF16, I8]");
    }

    @Test
    void anExtraTensorIsNamed() throws IOException {
        Path file = withManifest(tinyOpt(), tensors -> tensor(tensors, "query_tokens").put("name", "surplus"));
        assertModelRefused(file, "'query_tokens' [1, 8, 32] is missing", "'surplus' is not a parameter of this model");
    }

    @Test
    void aConfigOfAnotherModelIsRefused() throws IOException {
        Path other = rewrite(tinyOpt(), "config.json", Files.readAllBytes(Fixtures.model("t5").resolve("config.json")));
        assertModelRefused(other, "or its config.json belongs to another model");
    }

    @Test
    void anAbsurdConfigInsideAnArtifactIsRefusedBeforeAnythingIsBuilt() throws IOException {
        ObjectNode config = (ObjectNode) JSON.readTree(Fixtures.model("opt").resolve("config.json").toFile());
        ((ObjectNode) config.get("vision_config")).put("num_hidden_layers", 1_000_000_000);
        Path file = rewrite(tinyOpt(), "config.json", JSON.writeValueAsBytes(config));
        assertModelRefused(file, "config.json: vision_config.num_hidden_layers = 1000000000 is far beyond any BLIP-2");
    }

    // ---- the manifest's own entries ----

    @Test
    void negativeAndUncountableShapesAreRefusedOnOpen() throws IOException {
        Path negative = withManifest(tinyOpt(), tensors -> {
            ArrayNode shape = (ArrayNode) tensor(tensors, "language_projection.bias").get("shape");
            shape.removeAll().add(-3).add(-4); // the product is the stored size
        });
        assertOpenRefused(negative, "'language_projection.bias' has shape [-3, -4], with a negative size");
        Path huge = withManifest(tinyOpt(), tensors -> ((ArrayNode) tensor(tensors, "query_tokens").get("shape"))
                .removeAll().add(1L << 40).add(1L << 40));
        assertOpenRefused(huge, "'query_tokens' has shape [1099511627776, 1099511627776], more bytes than 64 bits");
    }

    @Test
    void malformedEntriesAreRefusedOnOpen() throws IOException {
        assertOpenRefused(withManifest(tinyOpt(), tensors -> tensors.add(tensors.get(0).deepCopy())),
                "lists tensor 'query_tokens' twice");
        assertOpenRefused(withManifest(tinyOpt(), tensors -> tensor(tensors, "query_tokens").remove("shape")),
                "'query_tokens' lacks its name, dtype, shape, entry or sha256");
        assertOpenRefused(withManifest(tinyOpt(), tensors -> tensor(tensors, "query_tokens").put("sha256", "x")),
                "'query_tokens' has sha256 'x', not 64 hex digits");
        assertOpenRefused(withManifest(tinyOpt(), tensors -> tensors.addNull()), "lacks its name");
        assertOpenRefused(withManifest(tinyOpt(), tensors -> tensor(tensors, "query_tokens").put("dtype", "F8")),
                "'query_tokens' has unknown dtype F8");
    }

    // ---- bytes ----

    /** The reported file: config.json's CRC-32 changed, then captioning failed with an internal error. */
    @Test
    void aSmallFileThatDoesNotMatchItsCrcIsDamaged() throws IOException {
        Path file = tinyOpt();
        patchCentralCrc(file, "config.json");
        try (Artifact a = Artifact.open(file)) {
            BadInputException e = assertThrows(BadInputException.class, a::checkFiles);
            assertTrue(e.getMessage().startsWith(file + ": entry config.json is damaged"), e.getMessage());
            assertThrows(BadInputException.class, a::modelConfig);
        }
        Path tokenizer = tinyOpt();
        patchCentralCrc(tokenizer, "tokenizer/tokenizer.json");
        try (Artifact a = Artifact.open(tokenizer)) {
            assertDoesNotThrow(a::modelConfig);
            BadInputException e = assertThrows(BadInputException.class, a::checkFiles);
            assertTrue(e.getMessage().contains("entry tokenizer/tokenizer.json is damaged"), e.getMessage());
        }
        Path manifest = tinyOpt();
        patchCentralCrc(manifest, ArtifactWriter.MANIFEST);
        assertOpenRefused(manifest, "entry manifest.json is damaged");
    }

    /** The reported file: NaNs written into a vision tensor, then captions of "<s><s>..." with exit code 0. */
    @Test
    void damagedTensorBytesAreNamed() throws IOException {
        Path file = tinyOpt();
        overwrite(file, VISION_TENSOR, 0, floats(Float.NaN, Float.NaN, Float.NaN));
        try (Artifact a = Artifact.open(file)) {
            BadInputException e = assertThrows(BadInputException.class, a::checkTensors);
            assertTrue(e.getMessage().contains("1 tensors do not match the SHA-256 in the manifest, so the artifact"
                    + " is damaged: " + VISION_TENSOR), e.getMessage());
        }
    }

    /**
     * Hashing is remembered on the file for as long as it keeps the size and modification time it had: a file
     * changed since is hashed again. Where the file system keeps no user attributes, every check hashes.
     */
    @Test
    void aCheckedFileIsNotHashedAgainUntilItChanges() throws IOException {
        Path file = tinyOpt();
        try (Artifact a = Artifact.open(file)) {
            a.checkTensors();
        }
        FileTime checked = Files.getLastModifiedTime(file);
        overwrite(file, VISION_TENSOR, 4, floats(Float.NaN));
        Files.setLastModifiedTime(file, checked);
        boolean stamped = keepsUserAttributes(file);
        try (Artifact a = Artifact.open(file)) {
            if (stamped) {
                assertDoesNotThrow(a::checkTensors, "unchanged by size and time: trusted, as the README says");
            } else {
                assertThrows(BadInputException.class, a::checkTensors, "no stamp: hashed again");
            }
        }
        Files.setLastModifiedTime(file, FileTime.fromMillis(checked.toMillis() + 1000));
        try (Artifact a = Artifact.open(file)) {
            assertThrows(BadInputException.class, a::checkTensors, "changed: hashed again");
        }
        Path copy = Files.copy(file, dir.resolve("copy.b2z"));
        try (Artifact a = Artifact.open(copy)) {
            assertThrows(BadInputException.class, a::checkTensors, "a copy starts unchecked");
        }
    }

    // ---- helpers ----

    /** The tiny OPT model's artifact, every tensor of its layout filled with small distinct values. */
    private Path tinyOpt() throws IOException {
        Path out = dir.resolve("opt" + System.nanoTime() + ".b2z");
        byte[] config = Files.readAllBytes(Fixtures.model("opt").resolve("config.json"));
        ParameterLayout layout = ParameterLayout.of(Blip2Config.parse(new String(config, StandardCharsets.UTF_8),
                null));
        try (ArtifactWriter writer = ArtifactWriter.create(OutputFile.check(out, List.of(), false))) {
            writer.addFile("config.json", config);
            writer.addFile("tokenizer/tokenizer.json", "{\"model\": {}}".getBytes(StandardCharsets.UTF_8));
            int seed = 0;
            for (ParamSpec p : layout.parameters()) {
                float[] values = new float[Math.toIntExact(p.numel())];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (seed++ % 97) / 97f;
                }
                byte[] bytes = floats(values);
                ArtifactWriter.TensorOutput t = writer.beginTensor(p.name(), DType.F32, p.shape());
                t.write(bytes, 0, bytes.length);
                String hex = Sha256.of(bytes);
                t.finish(() -> hex);
            }
            writer.commit(new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, "Blip2ForConditionalGeneration",
                    "opt", "test", new Manifest.Source("test", List.of()), "F32", List.of(), List.of()));
        }
        return out;
    }

    /** The same artifact with its manifest's tensor list edited. */
    private Path withManifest(Path artifact, Consumer<ArrayNode> edit) throws IOException {
        byte[] manifest;
        try (ZipFile zip = ZipFile.builder().setPath(artifact).get();
             InputStream in = zip.getInputStream(zip.getEntry(ArtifactWriter.MANIFEST))) {
            manifest = in.readAllBytes();
        }
        ObjectNode root = (ObjectNode) JSON.readTree(manifest);
        edit.accept((ArrayNode) root.get("tensors"));
        return rewrite(artifact, ArtifactWriter.MANIFEST, JSON.writeValueAsBytes(root));
    }

    /** A copy of the artifact with one small file's content replaced, every other entry as it was. */
    private Path rewrite(Path artifact, String entryName, byte[] content) throws IOException {
        Path out = dir.resolve("edited" + System.nanoTime() + ".b2z");
        try (ZipFile zip = ZipFile.builder().setPath(artifact).get();
             ZipArchiveOutputStream writer = new ZipArchiveOutputStream(out)) {
            for (ZipArchiveEntry e : Collections.list(zip.getEntries())) {
                ZipArchiveEntry copy = new ZipArchiveEntry(e.getName());
                byte[] bytes;
                try (InputStream in = zip.getInputStream(e)) {
                    bytes = e.getName().equals(entryName) ? content : in.readAllBytes();
                }
                if (e.getMethod() == ZipEntry.STORED) {
                    copy.setMethod(ZipEntry.STORED);
                    copy.setSize(bytes.length);
                    CRC32 crc = new CRC32();
                    crc.update(bytes);
                    copy.setCrc(crc.getValue());
                    copy.setAlignment(ArtifactWriter.ALIGNMENT);
                }
                writer.putArchiveEntry(copy);
                writer.write(bytes);
                writer.closeArchiveEntry();
            }
        }
        return out;
    }

    /** Changes the CRC-32 that the central directory records for an entry, leaving its bytes as they are. */
    private static void patchCentralCrc(Path file, String entryName) throws IOException {
        byte[] zip = Files.readAllBytes(file);
        byte[] name = entryName.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buffer = ByteBuffer.wrap(zip).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < zip.length - 46 - name.length; at++) {
            if (buffer.getInt(at) == 0x02014b50 && buffer.getShort(at + 28) == name.length
                    && Arrays.equals(Arrays.copyOfRange(zip, at + 46, at + 46 + name.length), name)) {
                buffer.putInt(at + 16, buffer.getInt(at + 16) ^ 1);
                Files.write(file, zip);
                return;
            }
        }
        throw new IllegalStateException(entryName + " not found in " + file);
    }

    private static void overwrite(Path file, String tensor, long at, byte[] bytes) throws IOException {
        long offset;
        try (ZipFile zip = ZipFile.builder().setPath(file).get()) {
            offset = zip.getEntry(ArtifactWriter.TENSOR_PREFIX + tensor).getDataOffset() + at;
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(offset);
            raf.write(bytes);
        }
    }

    private static boolean keepsUserAttributes(Path file) {
        UserDefinedFileAttributeView view = Files.getFileAttributeView(file, UserDefinedFileAttributeView.class);
        try {
            return view != null && view.list().contains("blip2-dl4j.checked");
        } catch (IOException e) {
            return false;
        }
    }

    private static ObjectNode tensor(ArrayNode tensors, String name) {
        for (var t : tensors) {
            if (t.path("name").asText().equals(name)) {
                return (ObjectNode) t;
            }
        }
        throw new IllegalArgumentException(name);
    }

    private static byte[] floats(float... values) {
        ByteBuffer buffer = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            buffer.putFloat(v);
        }
        return buffer.array();
    }

    private static void assertOpenRefused(Path file, String expected) {
        BadInputException e = assertThrows(BadInputException.class, () -> Artifact.open(file).close());
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(expected), e.getMessage());
    }

    private static void assertModelRefused(Path file, String... expected) {
        try (Artifact a = Artifact.open(file)) {
            BadInputException e = assertThrows(BadInputException.class, a::modelConfig);
            assertTrue(e.getMessage().startsWith(file + ""), e.getMessage());
            for (String part : expected) {
                assertTrue(e.getMessage().contains(part), "expected '" + part + "' in: " + e.getMessage());
            }
        }
    }
}
