package dev.blip2dl4j.zoo.image;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.blip2dl4j.BadInputException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The settings of transformers' {@code BlipImageProcessor} from a {@code preprocessor_config.json},
 * with its defaults for absent keys: resize to 384 x 384 with BICUBIC, rescale by 1/255, normalise
 * with OpenAI CLIP's mean and std, convert to RGB. Keys of other processors or of the processor
 * wrapper ({@code processor_class}, {@code image_processor_type}) are ignored.
 */
public record ImageProcessorConfig(
        boolean doResize,
        int height,
        int width,
        ResampleFilter resample,
        boolean doRescale,
        double rescaleFactor,
        boolean doNormalize,
        double[] imageMean,
        double[] imageStd,
        boolean doConvertRgb) {

    /** transformers' OPENAI_CLIP_MEAN and OPENAI_CLIP_STD. */
    public static final double[] OPENAI_CLIP_MEAN = {0.48145466, 0.4578275, 0.40821073};
    public static final double[] OPENAI_CLIP_STD = {0.26862954, 0.26130258, 0.27577711};

    private static final ObjectMapper MAPPER = new ObjectMapper();

    public ImageProcessorConfig {
        imageMean = imageMean.clone();
        imageStd = imageStd.clone();
    }

    /** BlipImageProcessor() with no arguments. */
    public static ImageProcessorConfig defaults() {
        return new ImageProcessorConfig(true, 384, 384, ResampleFilter.BICUBIC, true, 1 / 255.0, true,
                OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, true);
    }

    public static ImageProcessorConfig read(Path file) {
        try {
            return parse(Files.readString(file), file);
        } catch (IOException e) {
            throw new BadInputException(file, "cannot read the preprocessor config: " + e.getMessage(), e);
        }
    }

    /** @param file named in error messages only; may be null */
    public static ImageProcessorConfig parse(String json, Path file) {
        JsonNode root;
        try {
            root = MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new BadInputException(file, "is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) throw new BadInputException(file, "must hold one JSON object");
        ImageProcessorConfig d = defaults();
        int[] size = size(root.get("size"), file, d);
        JsonNode resampleNode = root.get("resample");
        ResampleFilter resample = d.resample;
        if (resampleNode != null && !resampleNode.isNull()) {
            resample = resampleNode.canConvertToExactIntegral() ? ResampleFilter.ofPillowCode(resampleNode.asInt()) : null;
            if (resample == null) {
                throw new BadInputException(file, "resample must be a Pillow filter number 0..5, found " + resampleNode);
            }
        }
        double rescaleFactor = number(root, "rescale_factor", d.rescaleFactor, file);
        double[] mean = perChannel(root, "image_mean", d.imageMean, file);
        double[] std = perChannel(root, "image_std", d.imageStd, file);
        for (double s : std) {
            if (s == 0) throw new BadInputException(file, "image_std must not contain 0");
        }
        return new ImageProcessorConfig(bool(root, "do_resize", d.doResize, file), size[0], size[1], resample,
                bool(root, "do_rescale", d.doRescale, file), rescaleFactor, bool(root, "do_normalize", d.doNormalize, file),
                mean, std, bool(root, "do_convert_rgb", d.doConvertRgb, file));
    }

    /**
     * {height, width}, or one integer for a square (get_size_dict with default_to_square). BLIP's
     * processor resizes to an exact size only: {shortest_edge} / {longest_edge} fail in transformers
     * too, and would also leave images of different shapes that cannot form one batch.
     */
    private static int[] size(JsonNode node, Path file, ImageProcessorConfig d) {
        if (node == null || node.isNull()) return new int[] {d.height, d.width};
        if (node.canConvertToExactIntegral() && node.asInt() > 0) return new int[] {node.asInt(), node.asInt()};
        if (node.isObject() && node.has("height") && node.has("width")) {
            JsonNode h = node.get("height"), w = node.get("width");
            if (h.canConvertToExactIntegral() && w.canConvertToExactIntegral() && h.asInt() > 0 && w.asInt() > 0) {
                return new int[] {h.asInt(), w.asInt()};
            }
        }
        if (node.isObject() && (node.has("shortest_edge") || node.has("longest_edge"))) {
            throw new BadInputException(file, "size " + node + ": BlipImageProcessor resizes to an exact"
                    + " {\"height\", \"width\"} only (transformers raises on this size too)");
        }
        throw new BadInputException(file, "size must be {\"height\": H, \"width\": W} with positive integers, found " + node);
    }

    /** A list of 3 numbers, or one number for all three channels (as transformers broadcasts it). */
    private static double[] perChannel(JsonNode root, String key, double[] defaultValue, Path file) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) return defaultValue;
        if (node.isNumber()) return new double[] {node.asDouble(), node.asDouble(), node.asDouble()};
        if (node.isArray() && node.size() == 3) {
            double[] values = new double[3];
            for (int c = 0; c < 3; c++) {
                if (!node.get(c).isNumber()) break;
                values[c] = node.get(c).asDouble();
                if (c == 2) return values;
            }
        }
        throw new BadInputException(file, key + " must be 3 numbers (one per RGB channel), found " + node);
    }

    private static double number(JsonNode root, String key, double defaultValue, Path file) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) return defaultValue;
        if (!node.isNumber() || !Double.isFinite(node.asDouble())) {
            throw new BadInputException(file, key + " must be a finite number, found " + node);
        }
        return node.asDouble();
    }

    private static boolean bool(JsonNode root, String key, boolean defaultValue, Path file) {
        JsonNode node = root.get(key);
        if (node == null || node.isNull()) return defaultValue;
        if (!node.isBoolean()) throw new BadInputException(file, key + " must be true or false, found " + node);
        return node.booleanValue();
    }

    @Override
    public double[] imageMean() {
        return imageMean.clone();
    }

    @Override
    public double[] imageStd() {
        return imageStd.clone();
    }
}
