package dev.blip2dl4j.convert;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;
import dev.blip2dl4j.convert.plan.RoledSource;
import dev.blip2dl4j.convert.plan.SourceRole;
import dev.blip2dl4j.convert.safetensors.SafetensorsFile;
import dev.blip2dl4j.convert.tensor.ShardIndex;
import dev.blip2dl4j.convert.tensor.SourceTensor;
import dev.blip2dl4j.convert.tensor.TensorSource;
import dev.blip2dl4j.convert.torch.TorchZipCheckpoint;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds the checkpoint in what the user named (folders or files) and opens it: which files hold the
 * weights, in which format, and what each is to the model (a whole Hugging Face BLIP-2, a LAVIS
 * checkpoint, LAVIS's EVA ViT, or the language model's own Hugging Face folder).
 */
public final class CheckpointSources {
    private static final ObjectMapper JSON = new ObjectMapper();

    private CheckpointSources() {
    }

    /**
     * One opened source.
     *
     * @param folder     the folder it came from: config, tokenizer and processor files are looked up there
     * @param modelType  model_type of the folder's config.json, if it has one ("blip-2", "opt", "t5")
     */
    public record Found(RoledSource part, Path folder, Optional<String> modelType) {
    }

    public static List<Found> open(List<Path> paths, SourceFormat format) {
        if (paths.isEmpty()) {
            throw new BadInputException("no checkpoint given: name a folder or checkpoint files");
        }
        List<Found> found = new ArrayList<>();
        for (Path path : paths) {
            if (Files.isDirectory(path)) {
                Optional<String> modelType = modelType(path.resolve("config.json"));
                for (Path weights : weightFiles(path)) {
                    found.add(openFile(weights, path, modelType, format));
                }
            } else if (Files.isRegularFile(path)) {
                Path folder = path.toAbsolutePath().getParent();
                found.add(openFile(path, folder, modelType(folder.resolve("config.json")), format));
            } else {
                throw new BadInputException(path, "no such file or folder");
            }
        }
        return found;
    }

    /**
     * The weight files of a folder. One format is read: safetensors first (sharded, then single), then
     * PyTorch's .bin, then LAVIS .pth files (each one a part: a LAVIS checkpoint, eva_vit_g.pth).
     */
    static List<Path> weightFiles(Path folder) {
        for (String name : List.of("model.safetensors.index.json", "model.safetensors",
                "pytorch_model.bin.index.json", "pytorch_model.bin")) {
            if (Files.isRegularFile(folder.resolve(name))) {
                return List.of(folder.resolve(name));
            }
        }
        List<Path> safetensors = list(folder, ".safetensors");
        if (safetensors.size() == 1) {
            return safetensors;
        }
        List<Path> pth = list(folder, ".pth");
        if (!pth.isEmpty()) {
            return pth;
        }
        throw new BadInputException(folder, "holds no checkpoint: looked for model.safetensors, "
                + "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json and *.pth"
                + (safetensors.size() > 1 ? " (it has several .safetensors files but no model.safetensors.index.json)" : ""));
    }

    private static List<Path> list(Path folder, String suffix) {
        try (Stream<Path> files = Files.list(folder)) {
            return files.filter(f -> f.getFileName().toString().endsWith(suffix) && Files.isRegularFile(f))
                    .sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list " + folder, e);
        }
    }

    private static Found openFile(Path file, Path folder, Optional<String> modelType, SourceFormat format) {
        TensorSource source = openWeights(file);
        return new Found(new RoledSource(role(file, source, modelType, format), source), folder, modelType);
    }

    static TensorSource openWeights(Path file) {
        String name = file.getFileName().toString();
        if (name.endsWith(".safetensors.index.json")) {
            return ShardIndex.open(file, SafetensorsFile::open);
        }
        if (name.endsWith(".bin.index.json")) {
            return TorchZipCheckpoint.openSharded(file);
        }
        if (name.endsWith(".safetensors")) {
            return SafetensorsFile.open(file);
        }
        if (name.endsWith(".bin") || name.endsWith(".pth") || name.endsWith(".pt")) {
            return TorchZipCheckpoint.open(file);
        }
        throw new BadInputException(file, "is not a checkpoint file this converter reads (.safetensors, "
                + ".bin, .pth, .pt or a *.index.json shard index)");
    }

    /**
     * What a file is to the model. A folder whose config.json says opt or t5 is a language model; LAVIS's
     * EVA ViT is recognised by its bare {@code blocks.N} names; otherwise the format decides, and
     * {@link SourceFormat#AUTO} goes by the names LAVIS uses ({@code visual_encoder.}, {@code Qformer.}).
     */
    private static SourceRole role(Path file, TensorSource source, Optional<String> modelType, SourceFormat format) {
        if (modelType.equals(Optional.of("opt"))) {
            return SourceRole.OPT;
        }
        if (modelType.equals(Optional.of("t5"))) {
            return SourceRole.T5;
        }
        List<String> names = source.tensors().stream().map(SourceTensor::name).toList();
        if (names.contains("cls_token") && names.stream().anyMatch(n -> n.startsWith("blocks."))) {
            return SourceRole.EVA_VIT;
        }
        return switch (format) {
            case HF -> SourceRole.HUGGING_FACE;
            case LAVIS -> SourceRole.LAVIS;
            case AUTO -> names.stream().anyMatch(n -> n.startsWith("visual_encoder.") || n.startsWith("Qformer.")
                    || n.startsWith("ln_vision.") || n.startsWith("opt_proj.") || n.startsWith("t5_proj."))
                    ? SourceRole.LAVIS : SourceRole.HUGGING_FACE;
        };
    }

    /** model_type of a config.json, if the file exists. */
    static Optional<String> modelType(Path config) {
        if (!Files.isRegularFile(config)) {
            return Optional.empty();
        }
        try {
            JsonNode root = JSON.readTree(config.toFile());
            return Optional.ofNullable(root.get("model_type")).map(JsonNode::asText);
        } catch (IOException e) {
            throw new BadInputException(config, "is not valid JSON (" + e.getMessage() + ")", e);
        }
    }
}
