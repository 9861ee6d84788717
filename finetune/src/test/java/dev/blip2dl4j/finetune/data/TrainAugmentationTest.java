package dev.blip2dl4j.finetune.data;

import dev.blip2dl4j.zoo.image.DecodedImage;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** LAVIS's random resized crop and flip: the same seed, the same images; crops within torchvision's ranges. */
class TrainAugmentationTest {
    private static DecodedImage gradient(int width, int height) {
        byte[] rgb = new byte[width * height * 3];
        for (int i = 0; i < width * height; i++) {
            rgb[3 * i] = (byte) (i % width);
            rgb[3 * i + 1] = (byte) (i / width);
            rgb[3 * i + 2] = (byte) (i * 7);
        }
        return new DecodedImage(width, height, rgb, "RGB");
    }

    @Test
    void theSameSeedGivesTheSameImagesAndAnotherSeedOthers() {
        TrainAugmentation augmentation = TrainAugmentation.lavis(32, 32);
        DecodedImage image = gradient(120, 90);
        SplitMix64 a = new SplitMix64(42);
        SplitMix64 b = new SplitMix64(42);
        SplitMix64 c = new SplitMix64(43);
        boolean differs = false;
        for (int i = 0; i < 5; i++) {
            DecodedImage x = augmentation.apply(image, a);
            DecodedImage y = augmentation.apply(image, b);
            assertEquals(32, x.width());
            assertEquals(32, x.height());
            assertArrayEquals(x.rgb(), y.rgb(), "draw " + i);
            differs |= !java.util.Arrays.equals(x.rgb(), augmentation.apply(image, c).rgb());
        }
        assertEquals(a.state(), b.state(), "a restored generator state continues the same sequence");
        assertTrue(differs, "another seed crops otherwise");
    }

    @Test
    void cropsCoverHalfToAllOfTheAreaWithinTheRatioRange() {
        TrainAugmentation augmentation = TrainAugmentation.lavis(224, 224);
        SplitMix64 random = new SplitMix64(1);
        boolean notWhole = false;
        for (int i = 0; i < 200; i++) {
            int[] box = augmentation.cropBox(640, 480, random);
            double area = (double) box[2] * box[3] / (640 * 480);
            double ratio = (double) box[2] / box[3];
            assertTrue(area > 0.49 && area <= 1.0, "area " + area);
            assertTrue(ratio > 0.74 && ratio < 1.34, "ratio " + ratio);
            assertTrue(box[0] >= 0 && box[1] >= 0 && box[0] + box[2] <= 640 && box[1] + box[3] <= 480);
            notWhole |= area < 0.9;
        }
        assertTrue(notWhole);
        // a very wide image, where no draw fits: the centre crop of the largest ratio allowed
        assertArrayEquals(new int[]{(1000 - 13) / 2, 0, 13, 10}, augmentation.cropBox(1000, 10, new SplitMix64(3)));
    }

    @Test
    void aFlipMirrorsTheRows() {
        // cropped whole (scale 1) and kept at its size, so only the flip can change the image
        TrainAugmentation whole = new TrainAugmentation(4, 4, 1.0, 1.0);
        DecodedImage image = gradient(4, 4);
        boolean flipped = false;
        boolean kept = false;
        SplitMix64 random = new SplitMix64(5);
        for (int i = 0; i < 20; i++) {
            DecodedImage out = whole.apply(image, random);
            if (java.util.Arrays.equals(out.rgb(), image.rgb())) {
                kept = true;
            } else {
                flipped = true;
                assertEquals(image.rgb()[0], out.rgb()[3 * 3], "the first pixel moves to the row's end");
            }
        }
        assertTrue(flipped && kept, "half the time each");
    }
}
