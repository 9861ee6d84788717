package dev.blip2dl4j.zoo.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Every image of fixtures/images-pil against Pillow 9.4: {@code Image.open(f).convert("RGB")
 * .resize((224, 224), BICUBIC, reducing_gap=None)} byte for byte, and the pixel values that
 * BlipImageProcessor computes from those bytes float for float. The references were made without
 * EXIF transposing, so orientation is switched off here (ImageExifTest covers it).
 */
class ImagePillowReferenceTest {
    private static final ImageProcessor PROCESSOR = new ImageProcessor(new ImageProcessorConfig(true, 224, 224,
            ResampleFilter.BICUBIC, true, 0.00392156862745098, true, ImageProcessorConfig.OPENAI_CLIP_MEAN,
            ImageProcessorConfig.OPENAI_CLIP_STD, true));

    static Stream<String> images() throws IOException {
        try (Stream<Path> files = Files.list(ImageFixtures.imagesPil().resolve("images"))) {
            return files.map(p -> p.getFileName().toString()).sorted().toList().stream();
        }
    }

    @Test
    void allFifteenImagesArePresent() throws IOException {
        assertEquals(15, images().count(), ImageFixtures.list(ImageFixtures.imagesPil().resolve("images")));
    }

    @ParameterizedTest
    @MethodSource("images")
    void resizedBytesEqualPillow(String name) {
        DecodedImage decoded = ImageLoader.load(ImageFixtures.imagesPil().resolve("images").resolve(name), false,
                ImageLoader.DEFAULT_MAX_PIXELS);
        DecodedImage resized = PROCESSOR.resize(decoded);
        byte[] expected = ImageFixtures.bytes(ImageFixtures.imagesPil().resolve("ref").resolve(name + ".r224.u8"));
        assertEquals("", ImageFixtures.compare(expected, resized), name);
    }

    @ParameterizedTest
    @MethodSource("images")
    void pixelValuesFollowFromPillowBytes(String name) {
        byte[] ref = ImageFixtures.bytes(ImageFixtures.imagesPil().resolve("ref").resolve(name + ".r224.u8"));
        INDArray actual = PROCESSOR.preprocess(List.of(ImageLoader.load(
                ImageFixtures.imagesPil().resolve("images").resolve(name), false, ImageLoader.DEFAULT_MAX_PIXELS)));
        assertArrayEquals(new long[] {1, 3, 224, 224}, actual.shape());
        assertEquals(DataType.FLOAT, actual.dataType());
        assertArrayEquals(numpyPixelValues(ref, 224, 224), actual.data().asFloat(), name);
    }

    /**
     * ref.py's numpy arithmetic written out: float64 multiply, cast to float32, float32 subtract and
     * divide, HWC to CHW. Kept apart from ImageProcessor on purpose, as the reference's own recipe.
     */
    static float[] numpyPixelValues(byte[] hwc, int h, int w) {
        float[] mean = {0.48145466f, 0.4578275f, 0.40821073f};
        float[] std = {0.26862954f, 0.26130258f, 0.27577711f};
        float[] chw = new float[3 * h * w];
        for (int c = 0; c < 3; c++) {
            for (int i = 0; i < h * w; i++) {
                float x = (float) ((double) (hwc[i * 3 + c] & 0xFF) * 0.00392156862745098);
                chw[c * h * w + i] = (x - mean[c]) / std[c];
            }
        }
        return chw;
    }
}
