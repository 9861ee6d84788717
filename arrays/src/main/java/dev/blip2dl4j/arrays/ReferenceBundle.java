package dev.blip2dl4j.arrays;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * A reference bundle: {@code reference.json} listing named outputs ({@code outputs.NAME.file}, shape,
 * dtype, description) computed by the original implementation, and the {@code .npy} files it names.
 * The layout of the fixtures in {@code fixtures/blip2-tiny-*}; the README says how to dump one from
 * PyTorch for any checkpoint.
 */
public final class ReferenceBundle {
    private final Path dir;
    private final JsonNode json;
    private final Map<String, Path> outputs;

    private ReferenceBundle(Path dir, JsonNode json, Map<String, Path> outputs) {
        this.dir = dir;
        this.json = json;
        this.outputs = outputs;
    }

    public static ReferenceBundle open(Path dir) {
        Path file = dir.resolve("reference.json");
        if (!Files.isRegularFile(file)) {
            throw new BadInputException(dir, "is not a reference bundle: it has no reference.json");
        }
        JsonNode json;
        try {
            json = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new BadInputException(file, "is not valid JSON (" + e.getMessage() + ")", e);
        }
        Map<String, Path> outputs = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = json.path("outputs").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> output = it.next();
            String name = output.getValue().path("file").asText(null);
            if (name != null) {
                outputs.put(output.getKey(), dir.resolve(name));
            }
        }
        if (outputs.isEmpty()) {
            throw new BadInputException(file, "lists no outputs (expected \"outputs\": {name: {\"file\": ...}})");
        }
        return new ReferenceBundle(dir, json, outputs);
    }

    public Path dir() {
        return dir;
    }

    /** The whole of reference.json: prompts, ids, generation settings, notes. */
    public JsonNode json() {
        return json;
    }

    /** Output names, in the order reference.json lists them. */
    public Iterable<String> names() {
        return outputs.keySet();
    }

    public boolean has(String name) {
        return outputs.containsKey(name);
    }

    /** The file an output is stored in, relative to the bundle (for dumping under the same name). */
    public String fileName(String name) {
        return dir.relativize(outputs.get(name)).toString();
    }

    /** An output as an array (float32, or int64 for ids), or empty when the bundle lacks it. */
    public Optional<INDArray> array(String name) {
        Path file = outputs.get(name);
        if (file == null) {
            return Optional.empty();
        }
        if (!Files.isRegularFile(file)) {
            throw new BadInputException(file, "is listed in reference.json but missing");
        }
        return Optional.of(Nd4j.createFromNpyFile(file.toFile()));
    }

    /** An output that must be there (the inputs: pixel values, ids). */
    public INDArray require(String name) {
        return array(name).orElseThrow(() -> new BadInputException(dir.resolve("reference.json"),
                "has no output '" + name + "', which verification needs as input"));
    }
}
