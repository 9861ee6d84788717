package dev.blip2dl4j.finetune;

import dev.blip2dl4j.Version;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.blip2dl4j.BadInputException;
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
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Where a run stands, in one file that {@code --resume} continues from exactly: the trained parameters,
 * AdamW's moments and step count, the run's position (optimizer step, epoch, micro-batch within it), the
 * state of its random numbers, and what it was started with (settings, data and base model, which resume
 * requires unchanged). It is written as our artifact format (a zip of float32 tensors, with config.json and
 * {@code trainer_state.json}) to a temporary file renamed over the previous checkpoint only when complete,
 * so a run killed at any moment leaves the last complete checkpoint.
 */
public final class TrainingCheckpoint {
    static final String STATE_FILE = "trainer_state.json";
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

    /** A checkpoint read back: parameters and moments are copies, independent of the file. */
    public record Loaded(State state, Map<String, INDArray> parameters, AdamW.State optimizer) {
    }

    private TrainingCheckpoint() {
    }

    static State state(int step, int epoch, int microBatch, long randomState, long adamwStep, Map<String, Object> settings,
                       Map<String, String> data, String baseModel) {
        return new State(FORMAT, step, epoch, microBatch, randomState, adamwStep, settings, data, baseModel);
    }

    public static void write(Path file, Blip2Config config, Map<String, INDArray> parameters, AdamW.State optimizer,
                             State state) {
        try (ArtifactWriter writer = ArtifactWriter.create(file)) {
            writer.addFile("config.json", config.json().getBytes(StandardCharsets.UTF_8));
            writer.addFile(STATE_FILE, JSON.writeValueAsBytes(state));
            parameters.forEach((name, p) -> Float32Tensors.write(writer, name, p));
            optimizer.arrays().forEach((name, m) -> Float32Tensors.write(writer, name, m));
            writer.commit(new Manifest(Manifest.FORMAT, Manifest.FORMAT_VERSION, config.kind().architecture(), null,
                    Version.TEXT + " finetune", null, "F32", List.of(),
                    List.of("a fine-tuning checkpoint (blip2 finetune --resume), not a model: "
                            + parameters.size() + " trained parameters and their AdamW moments at step " + state.step())));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Deletes what a run killed while writing a checkpoint left beside it: the writer's temporary files
     * ({@code .checkpoint.ckpt.<random>.partial}), which the rename never reached.
     */
    public static void deleteUnfinished(Path file) {
        Path dir = file.toAbsolutePath().getParent();
        String prefix = "." + file.getFileName() + ".";
        if (!Files.isDirectory(dir)) {
            return;
        }
        try (Stream<Path> siblings = Files.list(dir)) {
            for (Path p : siblings.filter(p -> p.getFileName().toString().startsWith(prefix)
                    && p.getFileName().toString().endsWith(".partial")).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot clean up " + dir, e);
        }
    }

    /** @param trained the names of the parameters being trained, which the checkpoint must hold */
    public static Loaded read(Path file, List<String> trained) {
        try (ArtifactWeights weights = ArtifactWeights.open(file)) {
            Artifact artifact = weights.artifact();
            State state = JSON.readValue(artifact.file(STATE_FILE).orElseThrow(() -> new BadInputException(file,
                    "has no " + STATE_FILE + ": not a blip2 finetune checkpoint")), State.class);
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
            return new Loaded(state, parameters, AdamW.State.of(state.adamwStep(), moments));
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the checkpoint (" + e.getMessage() + ")", e);
        }
    }
}
