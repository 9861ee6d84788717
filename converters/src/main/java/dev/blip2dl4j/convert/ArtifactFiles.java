package dev.blip2dl4j.convert;

import dev.blip2dl4j.artifact.Sha256;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.blip2dl4j.config.Blip2Config;
import dev.blip2dl4j.artifact.Manifest;
import dev.blip2dl4j.convert.plan.SourceRole;
import dev.blip2dl4j.convert.tokenizer.TokenizerJson;
import dev.blip2dl4j.convert.tokenizer.TokenizerJsonBuilder;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The small files an artifact carries beside its tensors: config.json, the generation and processor
 * configs, and the tokenizer (with a tokenizer.json built from the slow-tokenizer files where the
 * checkpoint has only those). Taken from the Hugging Face BLIP-2 folder, or for a LAVIS import from the
 * language model's folder, with the image processor config written from the LAVIS config.
 */
public record ArtifactFiles(Map<String, byte[]> contents, List<Manifest.SourceFile> sourceFiles, List<String> notes) {
    public static final String TOKENIZER_DIR = "tokenizer/";
    private static final List<String> MODEL_FILES = List.of(
            "generation_config.json", "preprocessor_config.json", "processor_config.json");
    private static final List<String> TOKENIZER_FILES = List.of("tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt", "spiece.model");
    /** OpenAI CLIP's normalisation, which LAVIS's BLIP-2 image processors use. */
    private static final double[] CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    private static final double[] CLIP_STD = {0.26862954, 0.26130258, 0.27577711};
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public static ArtifactFiles collect(List<CheckpointSources.Found> found, Blip2Config config) {
        Optional<Path> blip2Folder = folder(found, SourceRole.HUGGING_FACE);
        Optional<Path> llmFolder = folder(found, SourceRole.OPT).or(() -> folder(found, SourceRole.T5));
        return fromFolder(blip2Folder.or(() -> llmFolder), config);
    }

    /** The files for {@code config}, taken from {@code filesFolder} (a Hugging Face folder) where it has them. */
    public static ArtifactFiles fromFolder(Optional<Path> filesFolder, Blip2Config config) {
        Map<String, byte[]> contents = new LinkedHashMap<>();
        List<Manifest.SourceFile> sourceFiles = new ArrayList<>();
        List<String> notes = new ArrayList<>();
        contents.put("config.json", config.json().getBytes(StandardCharsets.UTF_8));
        for (String name : MODEL_FILES) {
            filesFolder.map(f -> f.resolve(name)).filter(Files::isRegularFile)
                    .ifPresent(file -> add(contents, sourceFiles, name, file));
        }
        if (!contents.containsKey("preprocessor_config.json")) {
            contents.put("preprocessor_config.json", lavisImageProcessor(config));
            notes.add("the checkpoint has no preprocessor_config.json: wrote BLIP-2's (" + config.vision().imageSize()
                    + " px bicubic, CLIP mean and std, as LAVIS and Salesforce/blip2-* process images)");
        }
        Optional<TokenizerJson> tokenizer = filesFolder.flatMap(TokenizerJsonBuilder::build);
        if (tokenizer.isPresent()) {
            Path folder = filesFolder.get();
            for (String name : TOKENIZER_FILES) {
                Path file = folder.resolve(name);
                if (Files.isRegularFile(file)) {
                    add(contents, sourceFiles, TOKENIZER_DIR + name, file);
                }
            }
            Path existing = folder.resolve("tokenizer.json");
            if (Files.isRegularFile(existing)) {
                add(contents, sourceFiles, TOKENIZER_DIR + "tokenizer.json", existing);
            } else {
                contents.put(TOKENIZER_DIR + "tokenizer.json", tokenizer.get().json().getBytes(StandardCharsets.UTF_8));
                notes.add("tokenizer.json built from " + String.join(" + ", tokenizer.get().sources().stream()
                        .map(p -> p.getFileName().toString()).toList()));
            }
        } else {
            notes.add("no tokenizer files found beside the checkpoint: the artifact has no tokenizer");
        }
        return new ArtifactFiles(contents, sourceFiles, notes);
    }

    private static Optional<Path> folder(List<CheckpointSources.Found> found, SourceRole role) {
        return found.stream().filter(f -> f.part().role() == role).map(CheckpointSources.Found::folder).findFirst();
    }

    private static void add(Map<String, byte[]> contents, List<Manifest.SourceFile> sourceFiles, String entry, Path file) {
        try {
            byte[] bytes = Files.readAllBytes(file);
            contents.put(entry, bytes);
            sourceFiles.add(new Manifest.SourceFile(file.getFileName().toString(), bytes.length, Sha256.of(bytes)));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
    }

    /** transformers' BlipImageProcessor settings of every BLIP-2 model (LAVIS's eval transform), at the config's size. */
    private static byte[] lavisImageProcessor(Blip2Config config) {
        ObjectNode p = JSON.createObjectNode();
        p.put("do_convert_rgb", true).put("do_normalize", true).put("do_rescale", true).put("do_resize", true);
        addAll(p.putArray("image_mean"), CLIP_MEAN);
        p.put("image_processor_type", "BlipImageProcessor");
        addAll(p.putArray("image_std"), CLIP_STD);
        p.put("processor_class", "Blip2Processor");
        p.put("resample", 3);
        p.put("rescale_factor", 1.0 / 255);
        p.putObject("size").put("height", config.vision().imageSize()).put("width", config.vision().imageSize());
        try {
            return JSON.writeValueAsBytes(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void addAll(ArrayNode array, double[] values) {
        for (double v : values) {
            array.add(v);
        }
    }
}
