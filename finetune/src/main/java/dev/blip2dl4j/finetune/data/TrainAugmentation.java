package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.zoo.image.DecodedImage;
import dev.blip2dl4j.zoo.image.PillowResize;
import dev.blip2dl4j.zoo.image.ResampleFilter;

/**
 * LAVIS's {@code blip2_image_train} augmentation (Blip2ImageTrainProcessor) before normalisation:
 * torchvision's {@code RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(3/4, 4/3), BICUBIC)} then
 * {@code RandomHorizontalFlip(0.5)} on the 8-bit image. The crop is drawn as torchvision draws it: up to ten
 * tries of an area fraction uniform in the scale range and a log-uniform aspect ratio, the first that fits
 * placed uniformly, else a centre crop of the clamped ratio; it is then resized with Pillow's bicubic
 * filter. The draws come from our generator, so the distribution is torchvision's, not its numbers.
 * Evaluation never augments.
 */
public final class TrainAugmentation {
    private static final double MIN_RATIO = 3.0 / 4.0;
    private static final double MAX_RATIO = 4.0 / 3.0;

    private final int width;
    private final int height;
    private final double minScale;
    private final double maxScale;

    /** @param width the model's input size (its image processor's), as is {@code height} */
    public TrainAugmentation(int width, int height, double minScale, double maxScale) {
        if (!(minScale > 0 && minScale <= maxScale && maxScale <= 1)) {
            throw new IllegalArgumentException("crop scale range " + minScale + " .. " + maxScale);
        }
        this.width = width;
        this.height = height;
        this.minScale = minScale;
        this.maxScale = maxScale;
    }

    /** LAVIS's scale range, 0.5 to 1.0 of the image's area. */
    public static TrainAugmentation lavis(int width, int height) {
        return new TrainAugmentation(width, height, 0.5, 1.0);
    }

    /** A random crop of the image, resized to the model's size, flipped left to right half of the time. */
    public DecodedImage apply(DecodedImage image, SplitMix64 random) {
        int[] box = cropBox(image.width(), image.height(), random);
        DecodedImage resized = PillowResize.resize(crop(image, box[0], box[1], box[2], box[3]), width, height,
                ResampleFilter.BICUBIC);
        return random.nextDouble() < 0.5 ? flip(resized) : resized;
    }

    /** {@code {left, top, width, height}} as torchvision's RandomResizedCrop.get_params chooses it. */
    int[] cropBox(int imageWidth, int imageHeight, SplitMix64 random) {
        double area = (double) imageWidth * imageHeight;
        double logMin = Math.log(MIN_RATIO);
        double logMax = Math.log(MAX_RATIO);
        for (int attempt = 0; attempt < 10; attempt++) {
            double targetArea = area * (minScale + (maxScale - minScale) * random.nextDouble());
            double aspect = Math.exp(logMin + (logMax - logMin) * random.nextDouble());
            // Math.rint rounds half to even, as Python's round()
            int w = (int) Math.rint(Math.sqrt(targetArea * aspect));
            int h = (int) Math.rint(Math.sqrt(targetArea / aspect));
            if (w > 0 && w <= imageWidth && h > 0 && h <= imageHeight) {
                int top = random.nextInt(imageHeight - h + 1);
                int left = random.nextInt(imageWidth - w + 1);
                return new int[]{left, top, w, h};
            }
        }
        double ratio = (double) imageWidth / imageHeight;
        int w = imageWidth;
        int h = imageHeight;
        if (ratio < MIN_RATIO) {
            h = (int) Math.rint(w / MIN_RATIO);
        } else if (ratio > MAX_RATIO) {
            w = (int) Math.rint(h * MAX_RATIO);
        }
        return new int[]{(imageWidth - w) / 2, (imageHeight - h) / 2, w, h};
    }

    private static DecodedImage crop(DecodedImage image, int left, int top, int w, int h) {
        byte[] out = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            System.arraycopy(image.rgb(), ((top + y) * image.width() + left) * 3, out, y * w * 3, w * 3);
        }
        return new DecodedImage(w, h, out, image.sourceMode());
    }

    private static DecodedImage flip(DecodedImage image) {
        int w = image.width();
        byte[] in = image.rgb();
        byte[] out = new byte[in.length];
        for (int y = 0; y < image.height(); y++) {
            for (int x = 0; x < w; x++) {
                System.arraycopy(in, (y * w + x) * 3, out, (y * w + (w - 1 - x)) * 3, 3);
            }
        }
        return new DecodedImage(w, image.height(), out, image.sourceMode());
    }
}
