package dev.blip2dl4j.zoo.image;

import dev.blip2dl4j.testing.Fixtures;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Paths into fixtures/images-pil and fixtures/common, and the raw-byte references there. */
final class ImageFixtures {
    private ImageFixtures() {
    }

    /** The 15 synthetic images and their Pillow 9.4 224x224 BICUBIC references. */
    static Path imagesPil() {
        return Fixtures.root().resolve("images-pil");
    }

    /** gen_extra.py's decoding, orientation and filter cases. */
    static Path extra() {
        return imagesPil().resolve("extra");
    }

    static Path common() {
        return Fixtures.root().resolve("common");
    }

    static byte[] bytes(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String list(Path dir) {
        try (var files = Files.list(dir)) {
            return String.join(",", files.map(p -> p.getFileName().toString()).sorted().toList());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** "" when equal, else how many samples differ, by how much at most, and where the first is. */
    static String compare(byte[] expected, DecodedImage actual) {
        if (expected.length != actual.rgb().length) {
            return "expected " + expected.length + " bytes, got " + actual.rgb().length + " (" + actual.width() + " x "
                    + actual.height() + ")";
        }
        int differ = 0, max = 0, first = -1;
        for (int i = 0; i < expected.length; i++) {
            int d = Math.abs((expected[i] & 0xFF) - (actual.rgb()[i] & 0xFF));
            if (d > 0) {
                differ++;
                max = Math.max(max, d);
                if (first < 0) first = i;
            }
        }
        if (differ == 0) return "";
        int pixel = first / 3;
        return differ + " of " + expected.length + " samples differ, by up to " + max + "; first at x=" + pixel % actual.width()
                + " y=" + pixel / actual.width() + " channel " + first % 3;
    }
}
