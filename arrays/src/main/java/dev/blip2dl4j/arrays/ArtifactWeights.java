package dev.blip2dl4j.arrays;

import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.artifact.Artifact;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.tensor.DType;
import dev.blip2dl4j.tensor.StoredTensor;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.Closeable;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A model's weights straight from a {@code .b2z} artifact: each float32 tensor is memory-mapped and
 * wrapped as an INDArray without a copy, so loading a 15 GB model takes milliseconds (once its contents
 * have been checked) and the operating system pages the weights in as they are used. {@link #stored} maps a
 * tensor of any storage type, with its int8 scales, without a copy either.
 */
public final class ArtifactWeights implements Weights, Closeable {
    private final Artifact artifact;
    private final Blip2Config config;
    private final Map<String, INDArray> bound = new ConcurrentHashMap<>();
    private final Map<String, StoredTensor> stored = new ConcurrentHashMap<>();

    private ArtifactWeights(Artifact artifact, Blip2Config config) {
        this.artifact = artifact;
        this.config = config;
    }

    /**
     * A model's artifact, checked before any weight is used: its manifest against the layout its config.json
     * describes, its tensors against their SHA-256 ({@link Artifact#checkTensors}: hashed on a file's first
     * load). Its small files are checked against their CRC-32 as they are read ({@link Artifact#file}).
     */
    public static ArtifactWeights open(Path path) {
        return open(path, true);
    }

    /**
     * An artifact that holds some of a model's tensors and others beside them (a fine-tuning checkpoint: the
     * trained parameters and their optimizer moments), checked as {@link #open} checks, but for the layout.
     */
    public static ArtifactWeights openPart(Path path) {
        return open(path, false);
    }

    private static ArtifactWeights open(Path path, boolean wholeModel) {
        Artifact artifact = Artifact.open(path);
        try {
            Blip2Config config = wholeModel ? artifact.modelConfig() : artifact.config();
            artifact.checkTensors();
            return new ArtifactWeights(artifact, config);
        } catch (RuntimeException e) {
            artifact.close();
            throw e;
        }
    }

    public Blip2Config config() {
        return config;
    }

    public Artifact artifact() {
        return artifact;
    }

    @Override
    public INDArray get(String name) {
        return bound.computeIfAbsent(name, n -> NdArrays.float32(artifact.map(n), floatType(n), tensor(n).shape()));
    }

    /** Mapped in its stored type; an int8 tensor's scales are checked against the manifest on the first call. */
    @Override
    public StoredTensor stored(String name) {
        return stored.computeIfAbsent(name, n -> {
            Manifest.Tensor t = tensor(n);
            DType dtype = artifact.dtype(n);
            if (dtype != DType.I8) {
                return new StoredTensor(n, dtype, t.shape(), artifact.map(n), null, 0);
            }
            return new StoredTensor(n, dtype, t.shape(), artifact.map(n), artifact.scales(n),
                    t.quantization().blockSize());
        });
    }

    /** Read from the file into process memory, never mapped (F32 tensors; others are converted from a mapping). */
    @Override
    public INDArray copy(String name) {
        Manifest.Tensor t = tensor(name);
        if (floatType(name) != DType.F32) {
            return NdArrays.float32(artifact.map(name), artifact.dtype(name), t.shape());
        }
        INDArray copy = Nd4j.createUninitialized(DataType.FLOAT, t.shape(), 'c');
        artifact.read(name, copy.data().asNio().order(ByteOrder.LITTLE_ENDIAN));
        return copy;
    }

    private Manifest.Tensor tensor(String name) {
        return artifact.tensor(name).orElseThrow(() -> new IllegalArgumentException(
                artifact.path() + " has no tensor '" + name + "'"));
    }

    /**
     * The tensor's type, which must be floating point: an int8 matrix is never widened whole. The eager runtime reads
     * int8 through {@link #stored}; what asks here for one is a path on the SameDiff graphs (image-text matching,
     * image features, Flan-T5 training), which the user can reach with an int8 model.
     */
    private DType floatType(String name) {
        DType dtype = artifact.dtype(name);
        if (dtype == DType.I8) {
            throw new BadInputException(artifact.path(), "tensor '" + name + "' is stored as int8, and this task runs "
                    + "on the SameDiff graphs, which read float32, bfloat16 or float16 weights (image-text matching, "
                    + "image features, Flan-T5 training): convert the model with --dtype bfloat16 (or float32) for it");
        }
        return dtype;
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
