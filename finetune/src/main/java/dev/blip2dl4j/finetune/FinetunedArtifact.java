package dev.blip2dl4j.finetune;

import dev.blip2dl4j.Version;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.convert.ArtifactFiles;
import dev.blip2dl4j.finetune.data.VqaPrompt;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.zoo.text.Tokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A fine-tuned model as a new {@code .b2z} that every inference command loads: the base artifact with the
 * trained tensors replaced (float32), everything else (the frozen vision encoder and language model, the
 * Q-Former's untrained text branch, config, tokenizer and processor files) copied from it byte for byte,
 * streaming through a small buffer. Each copied tensor is hashed as it is written and must equal the base
 * manifest's SHA-256, so the new manifest itself shows the frozen tensors unchanged. The manifest's source
 * lists the training data files; its notes say what was trained, from which model, for how long and how.
 *
 * <p>One file changes: an OPT model's {@code generation_config.json} ends generation at the newline training
 * ends every answer with ({@link VqaPrompt#OPT_ANSWER_END}), as LAVIS generates with a fine-tuned model, so that
 * {@code blip2 vqa} and {@code caption} stop where the model learnt to, whatever end its base named.
 */
public final class FinetunedArtifact {
    private static final int CHUNK = 4 << 20;
    private static final String GENERATION_CONFIG = "generation_config.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private FinetunedArtifact() {
    }

    /** The SHA-256 of the base artifact's manifest: names the exact weights it holds, every tensor's hash included. */
    public static String baseModelId(Artifact base) {
        return Sha256.of(base.manifest().toJson());
    }

    /**
     * @param trained the trained parameters by name; each must be a tensor of the base
     * @param out     the new artifact, checked as an output ({@link OutputFile}) before training, never the base
     * @param data    the training data files
     * @param notes   what the run did, in words
     */
    public static Manifest write(Artifact base, Map<String, INDArray> trained, OutputFile out, List<Manifest.SourceFile> data,
                                 List<String> notes) {
        for (String name : trained.keySet()) {
            if (base.tensor(name).isEmpty()) {
                throw new IllegalArgumentException(base.path() + " has no tensor '" + name + "' to replace");
            }
        }
        byte[] generationConfig = base.config().useDecoderOnlyLanguageModel() ? endingAnswers(base) : null;
        try (ArtifactWriter writer = ArtifactWriter.create(out)) {
            for (String file : base.fileNames()) {
                if (!file.equals(ArtifactWriter.MANIFEST) && !(generationConfig != null && file.equals(GENERATION_CONFIG))) {
                    writer.addFile(file, base.file(file).orElseThrow());
                }
            }
            if (generationConfig != null) {
                writer.addFile(GENERATION_CONFIG, generationConfig);
            }
            for (Manifest.Tensor t : base.manifest().tensors()) {
                INDArray replaced = trained.get(t.name());
                if (replaced != null) {
                    Float32Tensors.write(writer, t.name(), replaced);
                } else {
                    copy(base, t, writer);
                }
            }
            Manifest m = base.manifest();
            List<String> allNotes = new ArrayList<>(m.notes() == null ? List.of() : m.notes());
            allNotes.add("fine-tuned from " + base.path().getFileName() + " (manifest SHA-256 " + baseModelId(base)
                    + "); " + trained.size() + " trained tensors replaced (float32), the other "
                    + (m.tensors().size() - trained.size()) + " copied byte for byte in their storage types (their "
                    + "SHA-256 equal the base's)");
            if (generationConfig != null) {
                allNotes.add("generation_config.json: answers end at the newline training ended them with (its eos_token_id)");
            }
            allNotes.addAll(notes);
            return writer.commit(new Manifest(m.format(), m.formatVersion(), m.modelClass(), m.languageModel(),
                    Version.TEXT + " finetune", new Manifest.Source("blip2-dl4j-finetune", data), m.dtype(),
                    List.of(), allNotes));
        }
    }

    /** The base's generation_config.json (or none) with the answer end as its one eos_token_id. */
    private static byte[] endingAnswers(Artifact base) {
        byte[] tokenizerJson = base.file(ArtifactFiles.TOKENIZER_DIR + "tokenizer.json").orElseThrow(() ->
                new BadInputException(base.path(), "has no tokenizer (tokenizer/tokenizer.json) to find the end of answers with"));
        try (Tokenizer tokenizer = Tokenizer.fromJson(tokenizerJson)) {
            ObjectNode config = base.file(GENERATION_CONFIG).isPresent()
                    ? (ObjectNode) JSON.readTree(base.file(GENERATION_CONFIG).get()) : JSON.createObjectNode();
            config.put("eos_token_id", VqaPrompt.optAnswerEndId(tokenizer));
            return JSON.writeValueAsBytes(config);
        } catch (IOException | ClassCastException e) {
            throw new BadInputException(base.path(), GENERATION_CONFIG + " is not a JSON object: " + e.getMessage());
        }
    }

    private static void copy(Artifact base, Manifest.Tensor t, ArtifactWriter writer) {
        DType dtype = base.dtype(t.name());
        ByteBuffer bytes = base.map(t.name());
        // an int8 tensor keeps its quantization: the same bytes and the same scales, checked as the base reads them
        ArtifactWriter.TensorOutput out = dtype == DType.I8
                ? writer.beginQuantized(t.name(), t.shape(), t.quantization().blockSize())
                : writer.beginTensor(t.name(), dtype, t.shape());
        MessageDigest digest = Sha256.newDigest();
        byte[] buffer = new byte[(int) Math.min(CHUNK, bytes.remaining())];
        while (bytes.hasRemaining()) {
            int n = Math.min(buffer.length, bytes.remaining());
            bytes.get(buffer, 0, n);
            digest.update(buffer, 0, n);
            out.write(buffer, 0, n);
        }
        String sha = Sha256.hex(digest);
        if (!sha.equals(t.sha256())) {
            throw new BadInputException(base.path(), "tensor '" + t.name() + "' does not match its SHA-256 in the "
                    + "manifest: the base artifact is damaged");
        }
        if (dtype == DType.I8) {
            FloatBuffer scales = base.scales(t.name());
            float[] values = new float[scales.remaining()];
            scales.get(values);
            out.finish(() -> sha, values);
        } else {
            out.finish(() -> sha);
        }
    }
}
