package dev.blip2dl4j.zoo.image;

import dev.blip2dl4j.testing.Fixtures;
import dev.blip2dl4j.BadInputException;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The whole processor against pixel_values that transformers' BlipImageProcessor computed. */
class ImageProcessorTest {
    private static final Path MERLION = ImageFixtures.common().resolve("merlion.png");

    /** fixtures/common/preprocessing: merlion.png (RGBA 1192x874) at 224, the Salesforce BLIP-2 settings. */
    @Test
    void merlionAt224IsExactlyTransformersPixelValues() {
        ImageProcessor processor = ImageProcessor.fromJson("""
                {"do_resize": true, "size": {"height": 224, "width": 224}, "resample": 3, "do_rescale": true,
                 "rescale_factor": 0.00392156862745098, "do_normalize": true,
                 "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                 "do_convert_rgb": true, "image_processor_type": "BlipImageProcessor"}""");
        INDArray expected = Nd4j.createFromNpyFile(
                ImageFixtures.common().resolve("preprocessing/merlion_224_pixel_values.npy").toFile());
        INDArray actual = processor.preprocess(List.of(ImageLoader.load(MERLION)));
        assertArrayEquals(expected.shape(), actual.shape());
        assertArrayEquals(expected.data().asFloat(), actual.data().asFloat());
    }

    /** The tiny fixture model's own preprocessor_config.json (32 x 32) and its reference pixel_values. */
    @Test
    void merlionAtTheTinyModelsSizeIsExactlyItsReference() {
        Path model = Fixtures.root().resolve("blip2-tiny-opt");
        ImageProcessor processor = new ImageProcessor(ImageProcessorConfig.read(model.resolve("preprocessor_config.json")));
        assertEquals(32, processor.config().height());
        INDArray expected = Nd4j.createFromNpyFile(model.resolve("reference/pixel_values.npy").toFile());
        INDArray actual = processor.preprocess(List.of(ImageLoader.load(MERLION)));
        assertArrayEquals(new long[] {1, 3, 32, 32}, actual.shape());
        assertArrayEquals(expected.data().asFloat(), actual.data().asFloat());
    }

    @Test
    void aBatchStacksImagesInOrder() {
        ImageProcessor processor = ImageProcessor.fromJson("{\"size\": {\"height\": 24, \"width\": 20}}");
        DecodedImage a = ImageLoader.load(ImageFixtures.imagesPil().resolve("images/rgb_100x80.png"));
        DecodedImage b = ImageLoader.load(ImageFixtures.imagesPil().resolve("images/gray.jpg"));
        INDArray batch = processor.preprocess(List.of(a, b));
        assertArrayEquals(new long[] {2, 3, 24, 20}, batch.shape());
        assertEquals(processor.preprocess(b), batch.get(org.nd4j.linalg.indexing.NDArrayIndex.interval(1, 2)));
    }

    @Test
    void defaultsAreBlipImageProcessors() {
        ImageProcessorConfig c = ImageProcessorConfig.parse("{}", null);
        assertTrue(c.doResize() && c.doRescale() && c.doNormalize() && c.doConvertRgb());
        assertEquals(384, c.height());
        assertEquals(384, c.width());
        assertEquals(ResampleFilter.BICUBIC, c.resample());
        assertEquals(1 / 255.0, c.rescaleFactor());
        assertArrayEquals(ImageProcessorConfig.OPENAI_CLIP_MEAN, c.imageMean());
        assertArrayEquals(ImageProcessorConfig.OPENAI_CLIP_STD, c.imageStd());
    }

    @Test
    void configVariants() {
        ImageProcessorConfig square = ImageProcessorConfig.parse("{\"size\": 224, \"resample\": 2, \"image_mean\": 0.5}", null);
        assertEquals(224, square.height());
        assertEquals(224, square.width());
        assertEquals(ResampleFilter.BILINEAR, square.resample());
        assertArrayEquals(new double[] {0.5, 0.5, 0.5}, square.imageMean());
        assertFalse(ImageProcessorConfig.parse("{\"do_resize\": false}", null).doResize());
    }

    @Test
    void badConfigsAreExplained() {
        assertMessage("resizes to an exact", "{\"size\": {\"shortest_edge\": 224}}");
        assertMessage("size must be", "{\"size\": {\"height\": 224}}");
        assertMessage("resample must be a Pillow filter number", "{\"resample\": 7}");
        assertMessage("image_std must not contain 0", "{\"image_std\": [0.5, 0, 0.5]}");
        assertMessage("image_mean must be 3 numbers", "{\"image_mean\": [0.5, 0.5]}");
        assertMessage("do_rescale must be true or false", "{\"do_rescale\": \"yes\"}");
        assertMessage("not valid JSON", "{\"size\": ");
    }

    @Test
    void withoutConvertRgbOnlyRgbImagesPass() {
        ImageProcessor processor = ImageProcessor.fromJson("{\"do_convert_rgb\": false, \"size\": 8}");
        processor.preprocess(ImageLoader.load(ImageFixtures.imagesPil().resolve("images/rgb_100x80.png")));
        BadInputException e = assertThrows(BadInputException.class, () -> processor.preprocess(
                ImageLoader.load(ImageFixtures.imagesPil().resolve("images/rgba_640x480.png"))));
        assertTrue(e.getMessage().contains("RGBA"), e.getMessage());
    }

    @Test
    void withoutResizeImagesMustShareASize() {
        ImageProcessor processor = ImageProcessor.fromJson("{\"do_resize\": false}");
        DecodedImage a = ImageLoader.load(ImageFixtures.imagesPil().resolve("images/rgb_100x80.png"));
        DecodedImage b = ImageLoader.load(ImageFixtures.imagesPil().resolve("images/rgb_224x224.png"));
        assertArrayEquals(new long[] {1, 3, 80, 100}, processor.preprocess(a).shape());
        assertThrows(BadInputException.class, () -> processor.preprocess(List.of(a, b)));
    }

    private static void assertMessage(String expected, String json) {
        BadInputException e = assertThrows(BadInputException.class, () -> ImageProcessorConfig.parse(json, Path.of("p.json")));
        assertTrue(e.getMessage().contains(expected), e.getMessage());
        assertTrue(e.getMessage().startsWith("p.json"), e.getMessage());
    }
}
