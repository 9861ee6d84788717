package dev.blip2dl4j.arrays;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.arrays.Weights;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.Closeable;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A model's weights straight from a {@code .b2z} artifact: each float32 tensor is memory-mapped and
 * wrapped as an INDArray without a copy, so loading a 15 GB model takes milliseconds and the operating
 * system pages the weights in as they are used.
 */
public final class ArtifactWeights implements Weights, Closeable {
    private final Artifact artifact;
    private final Blip2Config config;
    private final Map<String, INDArray> bound = new ConcurrentHashMap<>();

    private ArtifactWeights(Artifact artifact, Blip2Config config) {
        this.artifact = artifact;
        this.config = config;
    }

    public static ArtifactWeights open(Path path) {
        Artifact artifact = Artifact.open(path);
        String json = new String(artifact.file("config.json").orElseThrow(() -> new BadInputException(path,
                "has no config.json: the artifact is damaged")), StandardCharsets.UTF_8);
        return new ArtifactWeights(artifact, Blip2Config.parse(json, path.resolve("config.json")));
    }

    public Blip2Config config() {
        return config;
    }

    public Artifact artifact() {
        return artifact;
    }

    @Override
    public INDArray get(String name) {
        return bound.computeIfAbsent(name, n -> {
            Manifest.Tensor t = artifact.tensor(n).orElseThrow(() -> new IllegalArgumentException(
                    artifact.path() + " has no tensor '" + n + "'"));
            return NdArrays.float32(artifact.map(n), artifact.dtype(n), t.shape());
        });
    }

    /** Read from the file into process memory, never mapped (F32 tensors; others are converted from a mapping). */
    @Override
    public INDArray copy(String name) {
        Manifest.Tensor t = artifact.tensor(name).orElseThrow(() -> new IllegalArgumentException(
                artifact.path() + " has no tensor '" + name + "'"));
        if (artifact.dtype(name) != DType.F32) {
            return NdArrays.float32(artifact.map(name), artifact.dtype(name), t.shape());
        }
        INDArray copy = Nd4j.createUninitialized(DataType.FLOAT, t.shape(), 'c');
        artifact.read(name, copy.data().asNio().order(ByteOrder.LITTLE_ENDIAN));
        return copy;
    }

    @Override
    public boolean contains(String name) {
        return artifact.tensor(name).isPresent();
    }

    @Override
    public void close() {
        bound.clear();
        artifact.close();
    }
}
