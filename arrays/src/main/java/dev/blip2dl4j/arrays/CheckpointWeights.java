package dev.blip2dl4j.arrays;

import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.convert.ArtifactFiles;
import dev.blip2dl4j.convert.Converter;
import dev.blip2dl4j.convert.plan.PlannedTensor;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A model's weights read straight from an original checkpoint, converted in memory: what lets a user
 * verify a checkpoint before converting it. Names, shapes and the config are checked exactly as a
 * conversion checks them; each tensor is read when first asked for.
 */
public final class CheckpointWeights implements Weights {
    private final Blip2Config config;
    private final Map<String, byte[]> files;
    private final Map<String, PlannedTensor> planned = new LinkedHashMap<>();
    private final Map<String, INDArray> bound = new ConcurrentHashMap<>();

    private CheckpointWeights(Converter.Planned plan) {
        this.config = plan.config();
        this.files = ArtifactFiles.collect(plan.found(), plan.config()).contents();
        plan.plan().tensors().forEach(t -> planned.put(t.name(), t));
    }

    /** Opens a checkpoint as {@code blip2 convert} would (float32). */
    public static CheckpointWeights open(List<Path> sources, Converter.Options options) {
        return new CheckpointWeights(Converter.plan(sources, options.withDtype(DType.F32)));
    }

    public Blip2Config config() {
        return config;
    }

    /**
     * The small files an artifact of this checkpoint would carry, by artifact entry name (config.json,
     * preprocessor_config.json, tokenizer/tokenizer.json, ...).
     */
    public Map<String, byte[]> files() {
        return files;
    }

    @Override
    public INDArray get(String name) {
        return bound.computeIfAbsent(name, n -> {
            PlannedTensor t = planned.get(n);
            if (t == null) {
                throw new IllegalArgumentException("the checkpoint has no tensor '" + n + "'");
            }
            return NdArrays.float32(ByteBuffer.wrap(t.readAll()), t.dtype(), t.shape());
        });
    }

    @Override
    public boolean contains(String name) {
        return planned.containsKey(name);
    }
}
