package dev.blip2dl4j.zoo.image;

import dev.blip2dl4j.BadInputException;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;

/**
 * transformers' {@code BlipImageProcessor} (the slow, Pillow-based one that produced the reference
 * pixel values): resize the 8-bit RGB image with Pillow's filter, then per sample
 * {@code x = float32(float64(p) * rescale_factor)} and {@code (x - float32(mean[c])) / float32(std[c])}
 * in float32, laid out channels first. The result is bit for bit what the Python processor returns,
 * so any difference downstream is the model's, not the input's.
 */
public final class ImageProcessor {
    private final ImageProcessorConfig config;

    public ImageProcessor(ImageProcessorConfig config) {
        this.config = config;
    }

    /** From the text of a {@code preprocessor_config.json}. */
    public static ImageProcessor fromJson(String json) {
        return new ImageProcessor(ImageProcessorConfig.parse(json, null));
    }

    public ImageProcessorConfig config() {
        return config;
    }

    /** The resize step alone: the 8-bit image the model's pixel values are computed from. */
    public DecodedImage resize(DecodedImage image) {
        if (!config.doResize()) return image;
        return PillowResize.resize(image, config.width(), config.height(), config.resample());
    }

    /** pixel_values, float32 [batch, 3, height, width]. */
    public INDArray preprocess(List<DecodedImage> images) {
        if (images.isEmpty()) throw new IllegalArgumentException("no images to preprocess");
        List<DecodedImage> resized = new ArrayList<>(images.size());
        for (DecodedImage image : images) {
            if (!config.doConvertRgb() && !"RGB".equals(image.sourceMode())) {
                throw new BadInputException("do_convert_rgb is false, but an image is " + image.sourceMode()
                        + ", not RGB; transformers cannot process it either: set do_convert_rgb to true");
            }
            resized.add(resize(image));
        }
        int h = resized.get(0).height(), w = resized.get(0).width();
        for (DecodedImage image : resized) {
            if (image.height() != h || image.width() != w) {
                throw new BadInputException("images of " + w + " x " + h + " and " + image.width() + " x " + image.height()
                        + " pixels cannot form one batch without do_resize");
            }
        }
        float[] mean = new float[3], std = new float[3];
        for (int c = 0; c < 3; c++) {
            mean[c] = (float) config.imageMean()[c];
            std[c] = (float) config.imageStd()[c];
        }
        int plane = h * w;
        float[] out = new float[resized.size() * 3 * plane];
        for (int b = 0; b < resized.size(); b++) {
            byte[] rgb = resized.get(b).rgb();
            for (int c = 0; c < 3; c++) {
                int base = (b * 3 + c) * plane;
                for (int i = 0; i < plane; i++) {
                    int p = rgb[i * 3 + c] & 0xFF;
                    float x = config.doRescale() ? (float) (p * config.rescaleFactor()) : p;
                    out[base + i] = config.doNormalize() ? (x - mean[c]) / std[c] : x;
                }
            }
        }
        return Nd4j.create(out, new long[] {resized.size(), 3, h, w}, 'c');
    }

    public INDArray preprocess(DecodedImage image) {
        return preprocess(List.of(image));
    }
}
