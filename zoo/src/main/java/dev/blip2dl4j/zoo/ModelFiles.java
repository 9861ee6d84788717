package dev.blip2dl4j.zoo;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.ArtifactFiles;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.arrays.ArtifactWeights;
import dev.blip2dl4j.convert.plan.StoragePolicy;
import dev.blip2dl4j.arrays.CheckpointWeights;
import dev.blip2dl4j.arrays.Weights;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model as the tasks use it: config, weights and the small files (tokenizer, processor and
 * generation configs) under their artifact entry names; from an artifact (memory-mapped) or an original
 * checkpoint (read in memory).
 */
record ModelFiles(Blip2Config config, Weights weights, Map<String, byte[]> files, AutoCloseable resource)
        implements AutoCloseable {

    static ModelFiles open(List<Path> paths, Converter.Options options) {
        if (paths.size() == 1 && paths.get(0).toString().endsWith(".b2z")) {
            ArtifactWeights weights = ArtifactWeights.open(paths.get(0));
            Artifact artifact = weights.artifact();
            Map<String, byte[]> files = new HashMap<>();
            artifact.fileNames().forEach(name -> files.put(name, artifact.file(name).orElseThrow()));
            return new ModelFiles(weights.config(), weights, files, weights);
        }
        CheckpointWeights weights = CheckpointWeights.open(paths, options);
        return new ModelFiles(weights.config(), weights, weights.files(), () -> { });
    }

    /** The bytes the weights take in memory: an artifact's as stored, a checkpoint's read as float32. */
    long weightBytes() {
        return weights instanceof ArtifactWeights artifact ? artifact.artifact().tensorBytes()
                : StoragePolicy.FLOAT32.bytes(config);
    }

    Optional<String> text(String entry) {
        return Optional.ofNullable(files.get(entry)).map(b -> new String(b, StandardCharsets.UTF_8));
    }

    byte[] tokenizerJson() {
        byte[] json = files.get(ArtifactFiles.TOKENIZER_DIR + "tokenizer.json");
        if (json == null) {
            throw new BadInputException("the model has no tokenizer (tokenizer/tokenizer.json): convert it from a "
                    + "folder that has the tokenizer files, or add them beside the checkpoint");
        }
        return json;
    }

    /** Releases the artifact's mappings (nothing, for a checkpoint read in memory). */
    @Override
    public void close() {
        try {
            resource.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + e.getMessage(), e);
        }
    }
}
