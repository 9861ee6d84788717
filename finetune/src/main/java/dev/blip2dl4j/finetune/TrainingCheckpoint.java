package dev.blip2dl4j.finetune;

import dev.blip2dl4j.Version;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.OutputFile;
import dev.blip2dl4j.artifact.Sha256;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.ArtifactWriter;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.arrays.ArtifactWeights;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Where a run stands, in one file that {@code --resume} continues from exactly: the trained parameters,
 * AdamW's moments and step count, the run's position (optimizer step, epoch, micro-batch within it), the
 * state of its random numbers, and what it was started with (settings, data and base model, which resume
 * requires unchanged). It is written as our artifact format (a zip of float32 tensors, with config.json and
 * {@code trainer_state.json}, whose SHA-256 the manifest lists as its source) to a partial file renamed into
 * place only when complete; the checkpoint it replaces is kept beside it ({@link #previous}). A run killed at
 * any moment so leaves a complete checkpoint, and resuming checks every SHA-256 of the latest one, falling
 * back to the previous one when the latest is damaged, truncated or missing.
 */
public final class TrainingCheckpoint {
    public static final String STATE_FILE = "trainer_state.json";
    private static final String FORMAT = "blip2-dl4j-finetune-checkpoint";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    /**
     * @param format      always {@code blip2-dl4j-finetune-checkpoint}
     * @param step        optimizer steps done
     * @param epoch       the epoch the next micro-batch belongs to
     * @param microBatch  the next micro-batch's index within its epoch
     * @param randomState the augmentation generator's state ({@link dev.blip2dl4j.finetune.data.SplitMix64})
     * @param adamwStep   AdamW's step count
     * @param settings    {@link FinetuneSettings#training()}
     * @param data        SHA-256 of the data files by name
     * @param baseModel   the SHA-256 of the base artifact's manifest
     */
    public record State(String format, int step, int epoch, int microBatch, long randomState, long adamwStep,
                        Map<String, Object> settings, Map<String, String> data, String baseModel) {
    }

    /**
     * A checkpoint read back: parameters and moments are copies, independent of the file.
     *
     * @param file    the checkpoint it came from: the latest, or the previous one
     * @param skipped why the latest one was not used, when it was not
     */
    public record Loaded(State state, Map<String, INDArray> parameters, AdamW.State optimizer, Path file,
                         String skipped) {
    }

    private TrainingCheckpoint() {
    }

    static State state(int step, int epoch, int microBatch, long randomState, long adamwStep, Map<String, Object> settings,
                       Map<String, String> data, String baseModel) {
        return new State(FORMAT, step, epoch, microBatch, randomState, adamwStep, settings, data, baseModel);
    }

    /**
     * The checkpoint {@code file} as an output, the checkpoint it replaces kept as {@link #previous}: both are
     * checked as outputs of a command reading {@code inputs}, replaced only where {@code replace} says.
     */
    public static OutputFile output(Path file, Collection<Path> inputs, boolean replace, String toReplace) {
        OutputFile latest = OutputFile.check(file, inputs, replace, toReplace);
        return latest.keepingPrevious(OutputFile.check(previous(file), inputs, replace, toReplace));
    }

    /** Where the checkpoint before {@code file}'s current one is kept. */
    public static Path previous(Path file) {
        return file.resolveSibling(file.getFileName() + ".previous");
    }

    public static void write(OutputFile file, Blip2Config config, Map<String, INDArray> parameters,
                             AdamW.State optimizer, State state) {
        try (ArtifactWriter writer = ArtifactWriter.create(file)) {
            byte[] stateJson = JSON.writeValueAsBytes(state);
            writer.addFile("config.json", config.json().getBytes(StandardCharsets.UTF_8));
            writer.addFile(STATE_FILE, stateJson);
            parameters.forEach((name, p) -> Float32Tensors.write(writer, name, p));
            optimizer.arrays().forEach((name, m) -> Float32Tensors.write(writer, name, m));
            writer.commit(new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, config.kind().architecture(), null,
                    Version.TEXT + " finetune", new Manifest.Source(FORMAT, List.of(new Manifest.SourceFile(STATE_FILE,
                    stateJson.length, Sha256.of(stateJson)))), "F32", List.of(),
                    List.of("a fine-tuning checkpoint (blip2 finetune --resume), not a model: "
                            + parameters.size() + " trained parameters and their AdamW moments at step " + state.step())));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The latest checkpoint at {@code file}, every SHA-256 checked; when it is damaged, truncated or missing, the
     * previous one, with why the latest was passed over. Fails, naming both, when neither can be used.
     *
     * @param trained the names of the parameters being trained, which the checkpoint must hold
     */
    public static Loaded readLatest(Path file, List<String> trained) {
        Path previous = previous(file);
        String latestProblem;
        try {
            return read(file, trained, null);
        } catch (BadInputException e) {
            if (!Files.exists(previous)) {
                throw e;
            }
            latestProblem = e.getMessage();
        }
        try {
            return read(previous, trained, latestProblem);
        } catch (BadInputException e) {
            throw new BadInputException(file, "no checkpoint can be resumed from: " + latestProblem + "; and the "
                    + "previous one, " + e.getMessage() + ". Start afresh (--overwrite)");
        }
    }

    private static Loaded read(Path file, List<String> trained, String skipped) {
        if (!Files.isRegularFile(file)) {
            throw new BadInputException(file, "no checkpoint to resume from");
        }
        try (ArtifactWeights weights = ArtifactWeights.openPart(file)) {
            Artifact artifact = weights.artifact();
            byte[] stateJson = artifact.file(STATE_FILE).orElseThrow(() -> new BadInputException(file,
                    "has no " + STATE_FILE + ": not a blip2 finetune checkpoint"));
            verify(file, artifact, stateJson);
            State state = JSON.readValue(stateJson, State.class);
            if (!FORMAT.equals(state.format())) {
                throw new BadInputException(file, "is not a blip2 finetune checkpoint (format " + state.format() + ")");
            }
            Map<String, INDArray> parameters = new LinkedHashMap<>();
            Map<String, INDArray> moments = new LinkedHashMap<>();
            for (Manifest.Tensor t : artifact.manifest().tensors()) {
                (trained.contains(t.name()) ? parameters : moments).put(t.name(), weights.get(t.name()).dup());
            }
            if (!parameters.keySet().equals(new LinkedHashSet<>(trained))) {
                throw new BadInputException(file, "holds other parameters than this model trains: a checkpoint of "
                        + "another model");
            }
            return new Loaded(state, parameters, AdamW.State.of(state.adamwStep(), moments), file, skipped);
        } catch (IOException | UncheckedIOException e) {
            throw new BadInputException(file, "cannot read the checkpoint (" + e.getMessage() + ")", e);
        }
    }

    /**
     * The trainer state against the SHA-256 the manifest lists for it. The tensors were checked against theirs as
     * the file was opened ({@link ArtifactWeights#openPart}, hashed once per file): a damaged one fails there.
     */
    private static void verify(Path file, Artifact artifact, byte[] stateJson) {
        Manifest.Source source = artifact.manifest().source();
        // checkpoints of builds before this one list no source: their tensors are still checked
        String stateSha = source == null ? null : source.files().stream().filter(f -> f.name().equals(STATE_FILE))
                .map(Manifest.SourceFile::sha256).findFirst().orElse("");
        if (stateSha != null && !stateSha.equals(Sha256.of(stateJson))) {
            throw new BadInputException(file, STATE_FILE + " does not match its SHA-256 in the manifest: the "
                    + "checkpoint is damaged");
        }
    }
}
