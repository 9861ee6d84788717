package dev.blip2dl4j.zoo.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every Pillow filter, shrinking and enlarging each axis, against Pillow 9.4's {@code resize}. */
class ImageResizeTest {
    static List<String> resized() throws IOException {
        JsonNode list = new ObjectMapper().readTree(ImageFixtures.extra().resolve("cases.json").toFile()).get("resized");
        List<String> names = new ArrayList<>();
        list.forEach(n -> names.add(n.asText()));
        return names;
    }

    @ParameterizedTest
    @MethodSource("resized")
    void resizesAsPillowDoes(String name) {
        Matcher m = Pattern.compile("(\\w+)\\.(\\d+)x(\\d+)").matcher(name);
        assertTrue(m.matches(), name);
        ResampleFilter filter = ResampleFilter.valueOf(m.group(1).toUpperCase(Locale.ROOT));
        int w = Integer.parseInt(m.group(2)), h = Integer.parseInt(m.group(3));
        DecodedImage source = ImageLoader.load(ImageFixtures.extra().resolve("img/png_rgb.png"), false,
                ImageLoader.DEFAULT_MAX_PIXELS);
        byte[] expected = ImageFixtures.bytes(ImageFixtures.extra().resolve("ref/png_rgb.png." + name + ".u8"));
        assertEquals("", ImageFixtures.compare(expected, PillowResize.resize(source, w, h, filter)), name);
    }

    @Test
    void sameSizeIsTheImageItself() {
        DecodedImage image = new DecodedImage(2, 1, new byte[] {1, 2, 3, 4, 5, 6}, "RGB");
        assertSame(image, PillowResize.resize(image, 2, 1, ResampleFilter.BICUBIC));
    }

    @Test
    void pillowCodesAreTransformersResamplingNumbers() {
        assertEquals(ResampleFilter.NEAREST, ResampleFilter.ofPillowCode(0));
        assertEquals(ResampleFilter.LANCZOS, ResampleFilter.ofPillowCode(1));
        assertEquals(ResampleFilter.BILINEAR, ResampleFilter.ofPillowCode(2));
        assertEquals(ResampleFilter.BICUBIC, ResampleFilter.ofPillowCode(3));
        assertEquals(ResampleFilter.BOX, ResampleFilter.ofPillowCode(4));
        assertEquals(ResampleFilter.HAMMING, ResampleFilter.ofPillowCode(5));
        assertEquals(null, ResampleFilter.ofPillowCode(6));
    }
}
