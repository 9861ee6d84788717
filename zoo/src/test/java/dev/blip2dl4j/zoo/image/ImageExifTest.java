package dev.blip2dl4j.zoo.image;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * EXIF orientation: on by default (transformers' load_image calls ImageOps.exif_transpose), off
 * gives the stored raster (what {@code Image.open(f)} alone gives, and what images-pil's refs hold).
 */
class ImageExifTest {
    private static final Path ORIENT6 = ImageFixtures.imagesPil().resolve("images/exif_orient6.jpg");

    @Test
    void offGivesTheStoredRasterAsInTheReferences() {
        DecodedImage stored = ImageLoader.load(ORIENT6, false, ImageLoader.DEFAULT_MAX_PIXELS);
        assertEquals("640x480", stored.width() + "x" + stored.height());
        byte[] ref = ImageFixtures.bytes(ImageFixtures.imagesPil().resolve("ref/exif_orient6.jpg.r224.u8"));
        assertEquals("", ImageFixtures.compare(ref, PillowResize.resize(stored, 224, 224, ResampleFilter.BICUBIC)));
    }

    /** Orientation 6 means "rotate 90 degrees clockwise to view": the stored left column becomes the top row. */
    @Test
    void onByDefaultTurnsOrientationSixClockwise() {
        DecodedImage stored = ImageLoader.load(ORIENT6, false, ImageLoader.DEFAULT_MAX_PIXELS);
        DecodedImage upright = ImageLoader.load(ORIENT6);
        assertEquals("480x640", upright.width() + "x" + upright.height()); // info.json: transposed_size [480, 640]
        int h = stored.height();
        for (int[] p : new int[][] {{0, 0}, {479, 0}, {0, 639}, {479, 639}, {100, 37}, {241, 500}}) {
            int x = p[0], y = p[1];
            // upright (x, y) shows stored column y, counted from the top, at row h - 1 - x
            for (int c = 0; c < 3; c++) {
                assertEquals(stored.sample(y, h - 1 - x, c), upright.sample(x, y, c), "pixel " + x + "," + y);
            }
        }
        // the stored image's bottom-left corner is the upright image's top-left one
        assertEquals(stored.sample(0, 479, 0), upright.sample(0, 0, 0));
        assertEquals(stored.sample(0, 0, 1), upright.sample(479, 0, 1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"exif_o1.jpg", "exif_o2.jpg", "exif_o3.jpg", "exif_o4.jpg", "exif_o5.jpg", "exif_o6.jpg",
            "exif_o7.jpg", "exif_o8.jpg", "exif_o6.png"})
    void everyOrientationAsPillowTransposesIt(String name) {
        DecodedImage upright = ImageLoader.load(ImageFixtures.extra().resolve("img").resolve(name));
        byte[] ref = ImageFixtures.bytes(ImageFixtures.extra().resolve("ref").resolve(name + ".exif.u8"));
        assertEquals("", ImageFixtures.compare(ref, upright), name);
        DecodedImage stored = ImageLoader.load(ImageFixtures.extra().resolve("img").resolve(name), false,
                ImageLoader.DEFAULT_MAX_PIXELS);
        byte[] dec = ImageFixtures.bytes(ImageFixtures.extra().resolve("ref").resolve(name + ".dec.u8"));
        assertEquals("", ImageFixtures.compare(dec, stored), name);
    }

    @Test
    void imagesWithoutExifAreUnchanged() {
        Path png = ImageFixtures.imagesPil().resolve("images/rgb_100x80.png");
        assertEquals("", ImageFixtures.compare(ImageLoader.load(png, false, ImageLoader.DEFAULT_MAX_PIXELS).rgb(),
                ImageLoader.load(png)));
    }

    @Test
    void damagedExifIsIgnoredAsPillowDoes() {
        assertEquals(ExifOrientation.NORMAL, ExifOrientation.read(new byte[] {'M', 'M', 0, 42, 0, 0, 0, 99}));
        assertEquals(ExifOrientation.NORMAL, ExifOrientation.read(new byte[] {'E', 'x', 'i', 'f', 0, 0, 'I', 'I'}));
        assertEquals(ExifOrientation.NORMAL, ExifOrientation.read(null));
    }

    @Test
    void bigEndianShortAndLittleEndianLongTags() {
        byte[] motorola = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 8, 0, 0};
        assertEquals(8, ExifOrientation.read(motorola));
        byte[] intel = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 4, 0, 1, 0, 0, 0, 3, 0, 0, 0};
        assertEquals(3, ExifOrientation.read(intel));
    }
}
