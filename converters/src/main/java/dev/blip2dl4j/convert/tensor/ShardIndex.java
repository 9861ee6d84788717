package dev.blip2dl4j.convert.tensor;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * The index of a checkpoint that {@code save_pretrained} split into shards ({@code
 * model.safetensors.index.json}, {@code pytorch_model.bin.index.json}): which shard file holds each
 * tensor. The same for every shard format; the format's reader opens the shards.
 *
 * @param file      the index file; shard files lie beside it
 * @param weightMap tensor name to shard file name, in the index's order
 */
public record ShardIndex(Path file, Map<String, String> weightMap) {

    public ShardIndex {
        weightMap = Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
    }

    /** Reads an index: {@code {"metadata": {...}, "weight_map": {tensor: shard file}}}. */
    public static ShardIndex read(Path indexFile) {
        JsonNode root;
        try (InputStream in = Files.newInputStream(indexFile)) {
            root = new ObjectMapper().readTree(in);
        } catch (NoSuchFileException e) {
            throw new BadInputException(indexFile, "no such file");
        } catch (JacksonException e) {
            throw new BadInputException(indexFile, "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + indexFile, e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new BadInputException(indexFile, "is not a shard index: it has no \"weight_map\" object"
                    + " naming the shard file of each tensor");
        }
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> entry : map.properties()) {
            String shard = entry.getValue().isTextual() ? entry.getValue().asText() : "";
            // Shards lie beside the index: a name with a folder in it could reach any file on the disk.
            if (shard.isEmpty() || shard.equals("..") || shard.equals(".") || shard.contains("/")
                    || shard.contains("\\")) {
                throw new BadInputException(indexFile, "tensor '" + entry.getKey() + "' has shard "
                        + entry.getValue() + ", which is not the name of a file beside the index");
            }
            weightMap.put(entry.getKey(), shard);
        }
        return new ShardIndex(indexFile, weightMap);
    }

    /**
     * Reads the index, opens every shard with {@code opener} and joins them into one source, checked
     * against the index (see {@link #merge}).
     */
    public static TensorSource open(Path indexFile, Function<Path, ? extends TensorSource> opener) {
        ShardIndex index = read(indexFile);
        List<TensorSource> shards = new ArrayList<>();
        for (Path shard : index.shardFiles()) {
            shards.add(opener.apply(shard));
        }
        return merge(index, shards);
    }

    /** The shard files in order: their names number them ({@code model-00001-of-00002...}), so sorted. */
    public List<Path> shardFiles() {
        Path folder = file.toAbsolutePath().getParent();
        return new TreeSet<>(weightMap.values()).stream().map(folder::resolve).toList();
    }

    /**
     * Joins opened shards, given in the order of {@link #shardFiles()}, into one source whose tensors
     * come shard by shard. Every tensor the index lists must be in the shard it names, and no tensor
     * may be in two shards. A shard may hold tensors that the index does not list; they are kept, as
     * transformers loads every tensor of each shard.
     */
    public static TensorSource merge(ShardIndex index, List<? extends TensorSource> shards) {
        List<Path> files = index.shardFiles();
        if (shards.size() != files.size()) {
            throw new IllegalArgumentException(files.size() + " shards expected, " + shards.size() + " given");
        }
        Map<String, String> shardOf = new HashMap<>();
        List<SourceTensor> tensors = new ArrayList<>();
        List<Path> sourceFiles = new ArrayList<>();
        for (int i = 0; i < shards.size(); i++) {
            String shard = files.get(i).getFileName().toString();
            for (SourceTensor tensor : shards.get(i).tensors()) {
                String earlier = shardOf.putIfAbsent(tensor.name(), shard);
                if (earlier != null) {
                    throw new BadInputException(index.file(), "tensor '" + tensor.name() + "' is in two shards, "
                            + earlier + " and " + shard);
                }
                tensors.add(tensor);
            }
            sourceFiles.addAll(shards.get(i).files());
        }
        for (Map.Entry<String, String> listed : index.weightMap().entrySet()) {
            String actual = shardOf.get(listed.getKey());
            if (!listed.getValue().equals(actual)) {
                throw new BadInputException(index.file(), "lists tensor '" + listed.getKey() + "' in shard "
                        + listed.getValue() + ", but that shard has no such tensor"
                        + (actual == null ? "" : " (it is in " + actual + ")"));
            }
        }
        String description = "sharded checkpoint " + index.file().getFileName() + " (" + shards.size() + " shards)";
        return new Merged(description, List.copyOf(sourceFiles), Collections.unmodifiableList(tensors));
    }

    private record Merged(String description, List<Path> files, List<SourceTensor> tensors)
            implements TensorSource {
    }
}
