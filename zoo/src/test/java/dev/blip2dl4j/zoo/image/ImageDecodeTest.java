package dev.blip2dl4j.zoo.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Decoding of every case gen_extra.py made, against Pillow 9.4's {@code Image.open(f).convert("RGB")}:
 * JPEG colour spaces as libjpeg guesses them (JFIF, Adobe transform, component ids, CMYK, YCCK),
 * chroma subsamplings, PNG bit depths, tRNS and 16-bit alpha, palettes, GIF screens, BMP.
 */
class ImageDecodeTest {
    static List<String> cases() throws IOException {
        JsonNode cases = new ObjectMapper().readTree(ImageFixtures.extra().resolve("cases.json").toFile()).get("cases");
        List<String> names = new ArrayList<>();
        cases.fieldNames().forEachRemaining(names::add);
        return names;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void decodesAsPillowDoes(String name) throws IOException {
        JsonNode expected = new ObjectMapper().readTree(ImageFixtures.extra().resolve("cases.json").toFile())
                .get("cases").get(name);
        DecodedImage image = ImageLoader.load(ImageFixtures.extra().resolve("img").resolve(name), false,
                ImageLoader.DEFAULT_MAX_PIXELS);
        assertEquals(expected.get("size").get(0).asInt() + "x" + expected.get("size").get(1).asInt(),
                image.width() + "x" + image.height(), name + " size");
        assertEquals(expected.get("mode").asText(), image.sourceMode(), name + " mode");
        Path ref = ImageFixtures.extra().resolve("ref").resolve(name + ".dec.u8");
        assertEquals("", ImageFixtures.compare(ImageFixtures.bytes(ref), image), name);
    }

    /** Pillow (9.4, checked) grows the screen to the first frame where the frame overhangs it. */
    @Test
    void aFrameLargerThanTheGifScreenGrowsIt() {
        byte[] gif = ImageFixtures.bytes(ImageFixtures.extra().resolve("img/gif_pal.gif"));
        DecodedImage whole = ImageLoader.load(gif, false, ImageLoader.DEFAULT_MAX_PIXELS);
        byte[] smallScreen = gif.clone();
        smallScreen[6] = 50; // logical screen 50 x 40 under a 61 x 45 frame
        smallScreen[8] = 40;
        DecodedImage grown = ImageLoader.load(smallScreen, false, ImageLoader.DEFAULT_MAX_PIXELS);
        assertEquals("61x45", grown.width() + "x" + grown.height());
        assertEquals("", ImageFixtures.compare(whole.rgb(), grown));
    }
}
